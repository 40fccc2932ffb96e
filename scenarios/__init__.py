"""The Locust side of the harness: journeys and load shapes that drive the portal.

One concept per module:

- :mod:`.client` - the lean pooled HTTP session and the ``PortalUser`` base class;
- :mod:`.journeys` - the user journeys (SSO login, catalog, applications, payments, account);
- :mod:`.funnel` - journey timings and funnels recorded as Locust request events;
- :mod:`.users` - closed-model users (weights from the workload model);
- :mod:`.open_model` and :mod:`.arrivals` - the open-model executor and its arrival schedules;
- :mod:`.shapes` and :mod:`.profiles` - load shapes selectable with ``--shape``;
- :mod:`.workload` - the workload model derived from the seed figures;
- :mod:`.citizens` and :mod:`.settings` - the test-citizen pool and the journeys' options;
- :mod:`.routes` - the API route template each request name calls.

``workload``, ``profiles``, ``arrivals``, ``citizens`` and ``routes`` are pure and import
neither gevent nor Locust; everything else runs inside a Locust process. Nothing here imports
the mock or the harness (gevent and asyncio never share a process).
"""
