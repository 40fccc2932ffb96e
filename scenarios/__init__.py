"""The Locust side of the harness: journeys and load shapes that drive the portal.

One concept per module:

- :mod:`.client` - the lean pooled HTTP client (session, response, transport) and the
  ``PortalUser`` base class;
- :mod:`.journeys` - the user journeys (SSO login, catalog, applications, payments, account);
- :mod:`.funnel` - journey timings and funnels recorded as Locust request events;
- :mod:`.users` - closed-model users (weights from the workload model);
- :mod:`.open_model` and :mod:`.arrivals` - the open-model executor and its arrival schedules;
- :mod:`.shapes`, :mod:`.profiles` and :mod:`.shape_specs` - load shapes selectable with
  ``--shape``, their arithmetic, and the table of shapes and arrival profiles with their
  parameters;
- :mod:`.workload` - the workload model derived from the seed figures;
- :mod:`.citizens` and :mod:`.accounts` - the derived test-citizen pool and test accounts
  from a file (with TOTP second factors);
- :mod:`.seeding` - the seeded random streams of every user and visit;
- :mod:`.settings` and :mod:`.runtime` - the journeys' options, and what one process's users
  share during a test (seed, worker index, account leases);
- :mod:`.routes` - the API route template each request name calls;
- :mod:`.probes` - the capacity probe of ``portal-load capacity``;
- :mod:`.telemetry` - results folder, HDR histograms and the ``/metrics`` exporter
  (``telemetry.plugin.install()`` enables it in a locustfile).

``workload``, ``profiles``, ``arrivals``, ``shape_specs``, ``seeding``, ``citizens``,
``accounts``, ``routes`` and ``telemetry`` (but its ``plugin``) are pure and import neither
gevent nor Locust; everything else runs inside a Locust process. Nothing here imports the
mock or the harness (gevent and asyncio never share a process).
"""
