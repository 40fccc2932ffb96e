"""A lean HTTP client for Locust users, on geventhttpclient's pooled ``HTTPClient``.

Locust's ``FastHttpUser`` goes through geventhttpclient's ``UserAgent``: a cookie jar, compat
request and response objects, URL re-parsing, redirect bookkeeping and charset detection on
every request. The portal's journeys need none of that, so this client talks to ``HTTPClient``
directly and keeps only what the journeys use:

- a keep-alive connection pool per host (one per scheme, host and port);
- a bearer token (``session.bearer_token = "..."``), JSON bodies (orjson) and form bodies;
- connect and network timeouts; transport errors become failed responses with status 0;
- redirects are returned as they are unless ``allow_redirects=True`` (the login reads
  ``Location`` itself);
- ``catch_response=True`` context-manager semantics and ``name=`` grouping, as in Locust.

One concept per module:

- :mod:`.session`: :class:`PortalSession`, its request options and its events;
- :mod:`.response`: :class:`PortalResponse` and ``catch_response``;
- :mod:`.transport`: the keep-alive pool, request heads and response headers;
- :mod:`.user`: :class:`PortalUser`, the Locust user class.

::

    class Citizen(PortalUser):
        @task
        def catalog(self):
            with self.client.get("/api/v1/services", catch_response=True) as resp:
                if not resp.json()["items"]:
                    resp.failure("empty catalog")
"""

from scenarios.client.response import HTTPStatusError, PortalResponse
from scenarios.client.session import CORRECTED_SUFFIX, PortalSession, RequestOptions
from scenarios.client.transport import RequestTimeout
from scenarios.client.user import PortalUser

__all__ = [
    "CORRECTED_SUFFIX",
    "HTTPStatusError",
    "PortalResponse",
    "PortalSession",
    "PortalUser",
    "RequestOptions",
    "RequestTimeout",
]
