"""The HTTP session of one virtual user: requests, their events, and the coordinated-omission
twin of an open-model request.

Every request fires Locust's ``request`` event with the standard arguments, so Locust's
statistics, web UI, CSV files and master aggregation see it like any other request.
:meth:`PortalSession.request` takes the keyword options of :class:`RequestOptions` (those of
Locust's own clients that the journeys use); a body, the redirects and the event are each one
small method.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypedDict, Unpack
from urllib.parse import quote_plus, urlencode, urlsplit

import gevent
import orjson

from scenarios.client.response import HTTPStatusError, PortalResponse
from scenarios.client.transport import (
    FORM_FIELDS,
    JSON_FIELDS,
    TRANSPORT_ERRORS,
    HostPool,
    RequestTimeout,
    client_key,
    header_block,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from locust import User
    from locust.event import EventHook

__all__ = [
    "CORRECTED_SUFFIX",
    "MAX_REDIRECTS",
    "RESULTS_ONLY_EVENT",
    "PortalSession",
    "RequestOptions",
]

CORRECTED_SUFFIX = "+CO"
#: Name of the event, on a Locust environment's ``events``, that the telemetry listens to for
#: timings counted in the run's results but not in Locust's own statistics (funnel steps: see
#: :meth:`PortalSession.report`). Absent without the telemetry.
RESULTS_ONLY_EVENT = "portal_results_only"
"""Suffix of the request type of the twin event that an open-model journey fires for each
request, with the journey's start lag and the request's wait for a connection added: latency
corrected for coordinated omission."""

# Browsers and requests follow at most 30 redirects; the portal never chains more than one.
MAX_REDIRECTS = 30
_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_TO_GET_CODES = frozenset((301, 302, 303))
# What quote_plus leaves as it is: most form values (codes, tokens, numbers) need no quoting.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def form_encode(data: Any) -> str:
    """``urlencode(data)``, without quoting the keys and values that need none.

    >>> form_encode({"page": 2, "q": "a b", "redirect_uri": "https://x/cb"})
    'page=2&q=a+b&redirect_uri=https%3A%2F%2Fx%2Fcb'
    """
    if not hasattr(data, "items"):
        return urlencode(data)
    parts = []
    for key, value in data.items():
        key = key if isinstance(key, str) else str(key)
        if isinstance(value, bytes):
            value = quote_plus(value)
        else:
            value = value if isinstance(value, str) else str(value)
            if not _UNRESERVED.fullmatch(value):
                value = quote_plus(value)
        if not _UNRESERVED.fullmatch(key):
            key = quote_plus(key)
        parts.append(f"{key}={value}")
    return "&".join(parts)


class RequestOptions(TypedDict, total=False):
    """Keyword options of :meth:`PortalSession.request` (all optional)."""

    name: str | None
    """Statistics row of the request (default: the session's ``rename_request`` or the URL
    without its query parameters)."""
    params: Mapping[str, Any] | None
    """Query parameters, URL-encoded and appended after the name is taken."""
    json: Any
    """A body sent as JSON (orjson)."""
    data: Mapping[str, Any] | str | bytes | None
    """A mapping is form-encoded; ``str`` and ``bytes`` are sent as they are."""
    headers: Mapping[str, str] | None
    """Fields of this request on top of the session's."""
    catch_response: bool
    """Decide success or failure in a ``with`` block (Locust's semantics)."""
    allow_redirects: bool
    """Follow redirects (default: return them; the login reads ``Location`` itself)."""
    context: dict[str, Any] | None
    """Merged into the user's ``context()`` for the request event."""
    timeout: float | None
    """Seconds for the whole exchange; when it expires the response has status 0 and a
    :class:`~scenarios.client.transport.RequestTimeout`."""


_OPTION_NAMES = frozenset(RequestOptions.__annotations__)


class PortalSession:
    """HTTP session of one virtual user (or one open-model journey).

    ``clients`` may be shared between sessions (``{(scheme, host, port): HostPool}``) so
    that many journeys of an open-model executor reuse one keep-alive pool (see
    :meth:`sibling`); the session's own state is only its headers and token.
    """

    def __init__(
        self,
        base_url: str,
        request_event: EventHook,
        user: User | None = None,
        *,
        connection_timeout: float = 60.0,
        network_timeout: float = 60.0,
        concurrency: int = 1,
        default_headers: Mapping[str, str] | None = None,
        clients: dict[tuple[str, str, int], HostPool] | None = None,
        results_event: EventHook | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.request_event = request_event
        self.results_event = results_event
        self.user = user
        self.request_name: str | None = None
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self.concurrency = concurrency
        self.default_headers = dict(default_headers or {})
        self._clients = {} if clients is None else clients
        self._base_path = parts.path.rstrip("/")
        self._base_client = self._client_for(client_key(parts))
        self._default_fields = header_block(self.default_headers)
        self._set_fields(self._default_fields)
        self._bearer_token: str | None = None
        self.start_lag_ms: float | None = None
        """Set by the open-model executor: how late this session's journey started. Every event
        then gets a twin whose type ends in ``CORRECTED_SUFFIX`` and whose time includes it."""

    def sibling(self) -> PortalSession:
        """A new session (no token, no start lag) on this one's connection pools."""
        return PortalSession(
            self.base_url,
            self.request_event,
            self.user,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            concurrency=self.concurrency,
            default_headers=self.default_headers,
            clients=self._clients,
            results_event=self.results_event,
        )

    # -- state ---------------------------------------------------------------------------
    @property
    def bearer_token(self) -> str | None:
        return self._bearer_token

    @bearer_token.setter
    def bearer_token(self, token: str | None) -> None:
        fields = self._default_fields
        if token is not None:
            fields += header_block({"Authorization": f"Bearer {token}"})
        self._set_fields(fields)
        self._bearer_token = token

    def _set_fields(self, fields: str) -> None:
        # One string per body type, made when the token changes: the pools' caches of request
        # heads then hash and compare the same objects on every request.
        self._fields = fields
        self._json_fields = fields + JSON_FIELDS
        self._form_fields = fields + FORM_FIELDS

    @contextmanager
    def rename_request(self, name: str) -> Iterator[None]:
        """Group every request made inside the block under ``name``."""
        self.request_name = name
        try:
            yield
        finally:
            self.request_name = None

    def close(self) -> None:
        """Close every connection of this session's pools."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- requests -------------------------------------------------------------------------
    def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> PortalResponse:
        """Send one request, report it to Locust, and return the response.

        A status of 400 or more, or a transport error, is reported as a failure unless
        ``catch_response=True`` and the block says otherwise.
        """
        if not _OPTION_NAMES.issuperset(options):
            unknown = ", ".join(sorted(set(options) - _OPTION_NAMES))
            raise TypeError(f"unknown request option(s): {unknown}")
        fields, body = self._head_and_body(options)
        # Name before the query parameters go on: one statistics row per path, not per query.
        name = options.get("name") or self.request_name or url
        params = options.get("params")
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{form_encode(params)}"
        timeout = options.get("timeout")
        start_time = time.time()
        start = time.perf_counter()
        resp = self._send(method, url, fields, body, timeout)
        if options.get("allow_redirects"):
            resp = self._follow_redirects(resp, method, fields, body, timeout)
        # Service time: from the moment the request has a connection (connecting included) to
        # the end of its response. Waiting for one of a shared pool's busy connections is the
        # client's queue; it goes only into the corrected twin of an open-model request.
        response_time_ms = (time.perf_counter() - start) * 1000.0 - resp.queued_ms
        resp.meta = self._event(method, name, resp, response_time_ms, start_time, options)
        if options.get("catch_response"):
            resp.defer_report(self.fire)
        else:
            self.fire(resp.meta, resp.queued_ms)
        return resp

    def get(self, url: str, **options: Unpack[RequestOptions]) -> PortalResponse:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Unpack[RequestOptions]) -> PortalResponse:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Unpack[RequestOptions]) -> PortalResponse:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Unpack[RequestOptions]) -> PortalResponse:
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Unpack[RequestOptions]) -> PortalResponse:
        return self.request("DELETE", url, **options)

    def _head_and_body(self, options: RequestOptions) -> tuple[str, bytes]:
        """The request's header fields (the session's, the body's, its own) and its body."""
        fields = self._fields
        json = options.get("json")
        data = options.get("data")
        if json is not None:
            body = orjson.dumps(json)
            fields = self._json_fields
        elif data is None:
            body = b""
        elif isinstance(data, bytes):
            body = data
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = form_encode(data).encode()
            fields = self._form_fields
        headers = options.get("headers")
        if headers:
            fields += header_block(headers)
        return fields, body

    def _follow_redirects(
        self, resp: PortalResponse, method: str, fields: str, body: bytes, timeout: float | None
    ) -> PortalResponse:
        """Follow ``Location`` (301-303 become a ``GET`` without a body), summing the waits
        for a connection of every hop."""
        queued_ms = resp.queued_ms
        redirects = 0
        while resp.status_code in _REDIRECT_CODES and redirects < MAX_REDIRECTS:
            location = resp.header("Location")
            if not location:
                break
            redirects += 1
            if resp.status_code in _TO_GET_CODES:
                method, fields, body = "GET", self._fields, b""
            resp = self._send(method, location, fields, body, timeout)
            queued_ms += resp.queued_ms
        resp.queued_ms = queued_ms
        return resp

    def _event(
        self,
        method: str,
        name: str,
        resp: PortalResponse,
        response_time_ms: float,
        start_time: float,
        options: RequestOptions,
    ) -> dict[str, Any]:
        """The arguments of the request's Locust event."""
        context = options.get("context")
        if self.user is not None:
            context = {**self.user.context(), **context} if context else self.user.context()
        elif context is None:
            context = {}
        if resp.error is not None:
            exception: BaseException | None = resp.error
        elif resp.status_code >= 400:
            exception = HTTPStatusError(resp.status_code)
        else:
            exception = None
        return {
            "request_type": method,
            "name": name,
            "response_time": response_time_ms,
            "response_length": len(resp.content),
            "response": resp,
            "context": context,
            "exception": exception,
            "start_time": start_time,
            "url": resp.url,
        }

    # -- events ---------------------------------------------------------------------------
    def report(
        self,
        request_type: str,
        name: str,
        response_time_ms: float,
        *,
        exception: BaseException | None = None,
        start_time: float | None = None,
        response_length: int = 0,
        corrected: bool = True,
        locust_stats: bool = True,
    ) -> None:
        """Fire a request event that is not an HTTP request (journey timings, funnel steps).

        ``corrected=False`` leaves out the coordinated-omission twin (a funnel step's count
        matters, not its time). ``locust_stats=False`` counts the event in the run's results
        (``summary.json``, ``loadgen_*``, the report) but not in Locust's own statistics, when
        the telemetry listens (:data:`RESULTS_ONLY_EVENT`): a funnel step is a count, and
        Locust's statistics of it cost more than the request it follows.
        """
        if not locust_stats and self.results_event is not None:
            self.results_event.fire(
                request_type=request_type,
                name=name,
                response_time=response_time_ms,
                exception=exception,
            )
            return
        user = self.user
        if start_time is None:
            start_time = time.time()
        context = user.context() if user is not None else {}
        if self.start_lag_ms is None or not corrected:
            self.request_event.fire(
                request_type=request_type,
                name=name,
                response_time=response_time_ms,
                response_length=response_length,
                response=None,
                context=context,
                exception=exception,
                start_time=start_time,
                url=None,
            )
            return
        self.fire(
            {
                "request_type": request_type,
                "name": name,
                "response_time": response_time_ms,
                "response_length": response_length,
                "response": None,
                "context": context,
                "exception": exception,
                "start_time": start_time,
                "url": None,
            }
        )

    def fire(self, meta: dict[str, Any], queued_ms: float = 0.0, *, corrected: bool = True) -> None:
        """Fire the event ``meta`` and, in an open-model journey, its corrected twin."""
        self.request_event.fire(**meta)
        lag_ms = self.start_lag_ms
        if lag_ms is not None and corrected:
            # As wrk2 measures: from when the request was due (its visit's intended start, or
            # the moment the journey asked for it), not from when a connection was free to send.
            twin = dict(meta)
            twin["request_type"] = meta["request_type"] + CORRECTED_SUFFIX
            twin["response_time"] = meta["response_time"] + queued_ms + lag_ms
            self.request_event.fire(**twin)

    # -- transport ------------------------------------------------------------------------
    def _send(
        self, method: str, url: str, fields: str, body: bytes, timeout: float | None
    ) -> PortalResponse:
        if url.startswith("/"):
            client = self._base_client
            target = self._base_path + url
            full_url = self.base_url + url
        else:
            parts = urlsplit(url)
            client = self._client_for(client_key(parts))
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            full_url = url
        try:
            if timeout is None:
                status, head, content, queued_s = client.exchange(method, target, fields, body)
            else:
                # the exchange closes its connection when interrupted before its end
                with gevent.Timeout(timeout, RequestTimeout(f"no response within {timeout} s")):
                    status, head, content, queued_s = client.exchange(method, target, fields, body)
        except TRANSPORT_ERRORS as error:
            return PortalResponse(0, b"", b"", full_url, error)
        resp = PortalResponse(status, content, head, full_url, None)
        resp.queued_ms = queued_s * 1000.0
        return resp

    def _client_for(self, key: tuple[str, str, int]) -> HostPool:
        client = self._clients.get(key)
        if client is None:
            scheme, host, port = key
            client = HostPool(
                host,
                port,
                tls=scheme == "https",
                concurrency=self.concurrency,
                connection_timeout=self.connection_timeout,
                network_timeout=self.network_timeout,
            )
            self._clients[key] = client
        return client
