"""A lean HTTP/1.1 client for Locust users, framed by hand on gevent sockets.

Locust's ``FastHttpUser`` goes through geventhttpclient's ``UserAgent``: a cookie jar, compat
request and response objects, URL re-parsing, redirect bookkeeping, charset detection, and a
parser that calls back into Python for every header field of every response. The portal's
journeys need none of that, so this client speaks HTTP/1.1 itself and keeps only what the
journeys use:

- a keep-alive connection pool per host (one per scheme, host and port), requests sent in
  one write with a head encoded once per method, target and header set;
- responses framed by ``Content-Length``, chunked coding or the connection's close; other
  header fields parsed only when asked for;
- a bearer token (``session.bearer_token = "..."``), JSON bodies (orjson) and form bodies;
- connect, network and per-request timeouts; transport errors and unreadable answers become
  failed responses with status 0;
- redirects are returned as they are unless ``allow_redirects=True`` (the login reads
  ``Location`` itself);
- ``catch_response=True`` context-manager semantics and ``name=`` grouping, as in Locust.

One concept per module:

- :mod:`.session`: :class:`PortalSession`, its request options and its events;
- :mod:`.response`: :class:`PortalResponse` and ``catch_response``;
- :mod:`.transport`: the keep-alive pool, the framing of requests and responses;
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
from scenarios.client.transport import NetworkTimeout, ProtocolError, RequestTimeout
from scenarios.client.user import PortalUser

__all__ = [
    "CORRECTED_SUFFIX",
    "HTTPStatusError",
    "NetworkTimeout",
    "PortalResponse",
    "PortalSession",
    "PortalUser",
    "ProtocolError",
    "RequestOptions",
    "RequestTimeout",
]
