"""A lean HTTP session for Locust users, on geventhttpclient's pooled ``HTTPClient``.

Locust's ``FastHttpUser`` goes through geventhttpclient's ``UserAgent``: a cookie jar, compat
request and response objects, URL re-parsing, redirect bookkeeping and charset detection on
every request. The portal's journeys need none of that, so this session talks to
``HTTPClient`` directly and keeps only what the journeys use:

- a keep-alive connection pool per host (``HTTPClient``; one per scheme, host and port);
- a bearer token (``session.bearer_token = "..."``), JSON bodies (orjson) and form bodies;
- connect and network timeouts; transport errors become failed responses with status 0;
- redirects are returned as they are unless ``allow_redirects=True`` (the login reads
  ``Location`` itself);
- ``catch_response=True`` context-manager semantics and ``name=`` grouping, as in Locust.

Every request fires Locust's ``request`` event with the standard arguments, so Locust's
statistics, web UI, CSV files and master aggregation see it like any other request::

    class Citizen(PortalUser):
        @task
        def catalog(self):
            with self.client.get("/api/v1/services", catch_response=True) as resp:
                if not resp.json()["items"]:
                    resp.failure("empty catalog")
"""

from __future__ import annotations

import re
import socket
import time
from contextlib import contextmanager
from ssl import SSLError
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import gevent
import geventhttpclient
import orjson
from geventhttpclient._parser import HTTPParseError
from geventhttpclient.client import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed, HTTPSocketPoolResponse
from locust import User
from locust.exception import CatchResponseError, LocustError, ResponseError, StopTest

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from locust.event import EventHook

__all__ = [
    "CORRECTED_SUFFIX",
    "HTTPStatusError",
    "PortalResponse",
    "PortalSession",
    "PortalUser",
    "RequestTimeout",
]

CORRECTED_SUFFIX = "+CO"
"""Suffix of the request type of the twin event that an open-model journey fires for each
request, with the journey's start lag and the request's wait for a connection added: latency
corrected for coordinated omission."""


# What the transport may raise; each becomes a failed response (status 0), never an exception
# in the user's task.
class RequestTimeout(TimeoutError):
    """A request took longer than its ``timeout=``; the connection it used is closed."""


TRANSPORT_ERRORS = (
    ConnectionError,
    socket.error,  # includes socket timeouts and RequestTimeout
    SSLError,
    HTTPParseError,
    HTTPConnectionClosed,
)

# Browsers and requests follow at most 30 redirects; the portal never chains more than one.
MAX_REDIRECTS = 30
_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))

_JSON_FIELDS = "Content-Type: application/json\r\nAccept: application/json\r\n"
_FORM_FIELDS = "Content-Type: application/x-www-form-urlencoded\r\n"
_USER_AGENT = f"portal-load/{geventhttpclient.__version__}"
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE"))
# RFC 9110 §5.1, §5.5 and RFC 9112 §3.2: what a field name, a field value and an origin-form
# target may hold; checked once per header set and per request target (no CR/LF smuggling).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(r"/[^\x00-\x20\x7f]*")


def _header_block(headers: Mapping[str, str]) -> str:
    """``Name: value\\r\\n`` lines, refusing names and values that would break the message."""
    lines = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header field name {name!r}")
        value = str(value)
        if not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"invalid value for header field {name!r}: {value!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines)


class ResponseHeaders(dict[str, str]):
    """Response header fields by lower-case name, for the response parser.

    geventhttpclient's ``Headers`` keeps order and case for every field at some cost per
    field; a load generator only looks fields up. A repeated field is joined with ", "
    (RFC 9110 §5.3).
    """

    __slots__ = ()

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        old = dict.get(self, key)
        self[key] = value if old is None else f"{old}, {value}"

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class _PooledClient(HTTPClient):
    """geventhttpclient's ``HTTPClient`` (its keep-alive pool and response parser) with a lean
    send path: the request head arrives pre-built from the session, so nothing is merged,
    re-validated or re-encoded per request beyond the target and the request's own fields.
    """

    def __init__(self, host: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        host_port = f"[{self.host}]" if ":" in self.host else self.host
        if self.port not in (80, 443):
            host_port = f"{host_port}:{self.port}"
        self.head_start = f"Host: {host_port}\r\nUser-Agent: {_USER_AGENT}\r\n"

    def send(self, method: str, target: str, fields: str, body: bytes) -> tuple[Any, float]:
        """Send one request; a connection the server closed while idle is retried once for
        idempotent methods (RFC 9110 §9.2.2), as ``HTTPClient.request`` does.

        Returns the response and the seconds the request queued for a connection because
        every connection of the pool was busy: time spent at the client, not in the service.
        (When the connection that frees up was closed, its reconnect counts as queueing too.)
        """
        if not _TARGET.fullmatch(target):
            raise ValueError(f"invalid request target {target!r}")
        if not _TOKEN.fullmatch(method):
            raise ValueError(f"invalid HTTP method {method!r}")
        if body or method in _BODY_METHODS:
            fields = f"{fields}Content-Length: {len(body)}\r\n"
        message = f"{method} {target} HTTP/1.1\r\n{self.head_start}{fields}\r\n".encode("latin-1")
        if body:
            message += body
        pool = self._connection_pool
        retries = 1 if method in _IDEMPOTENT_METHODS else 0
        queued_s = 0.0
        while True:
            if pool._semaphore.locked():
                start = time.perf_counter()
                sock = pool.get_socket()
                queued_s += time.perf_counter() - start
            else:
                sock = pool.get_socket()
            try:
                sock.sendall(message)
            except OSError:
                pool.release_socket(sock)
                if retries:
                    retries -= 1
                    continue
                raise
            except BaseException:
                # a timeout or a kill while sending: the connection is in an unknown state
                pool.release_socket(sock)
                raise
            try:
                response = HTTPSocketPoolResponse(
                    sock,
                    pool,
                    block_size=self.block_size,
                    method=method,
                    headers_type=ResponseHeaders,
                )
                return response, queued_s
            except HTTPConnectionClosed:
                # the response released the socket; the server closed a kept-alive connection
                if retries:
                    retries -= 1
                    continue
                raise


class HTTPStatusError(Exception):
    """The failure of a response whose status is 400 or above.

    Its message is only the status, so Locust groups failures per status and request name
    instead of per URL. (A request that got no response fails with its transport error.)
    """

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class PortalResponse:
    """A fully read response; also the ``catch_response=True`` context manager.

    ``content`` is the body as bytes, ``json()`` parses it with orjson, ``headers`` is a
    :class:`ResponseHeaders` (case-insensitive ``get``; empty when the transport failed, in
    which case ``status_code`` is 0 and ``error`` holds the exception).
    """

    __slots__ = (
        "_catch",
        "_entered",
        "_result",
        "_session",
        "content",
        "error",
        "headers",
        "meta",
        "queued_ms",
        "status_code",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        content: bytes,
        headers: Any,
        url: str,
        error: BaseException | None,
    ) -> None:
        self.status_code = status_code
        self.content = content
        self.headers = headers
        self.url = url
        self.error = error
        self.meta: dict[str, Any] = {}
        self.queued_ms = 0.0
        """Milliseconds the request waited for a free connection of its pool (see
        :meth:`PortalSession.request`)."""
        self._session: PortalSession | None = None
        self._catch = False
        self._entered = False
        self._result: bool | BaseException | None = None

    # -- reading ---------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return 0 < self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``orjson.JSONDecodeError``, a ``ValueError``)."""
        return orjson.loads(self.content)

    def header(self, name: str, default: str | None = None) -> str | None:
        """One header's value (repeated fields joined with ", "), or ``default``."""
        return self.headers.get(name, default) if self.headers else default

    def raise_for_status(self) -> None:
        """Raise what made this response a failure: a transport error or a bad status."""
        if isinstance(self._result, BaseException):
            raise self._result
        if self._result is True:
            return
        if self.error is not None:
            raise self.error
        if self.status_code >= 400:
            raise HTTPStatusError(self.status_code)

    # -- catch_response ---------------------------------------------------------------------
    def __enter__(self) -> PortalResponse:
        if not self._catch:
            raise LocustError("use catch_response=True to use a response as a context manager")
        self._entered = True
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self._result is None and exc is not None:
            if not isinstance(exc, ResponseError):
                return False
            self._result = exc
        self._fire()
        return exc is None or (isinstance(exc, ResponseError) and self._result is exc)

    def success(self) -> None:
        """Count this request as a success whatever its status."""
        self._check_entered()
        self._result = True

    def failure(self, reason: str | BaseException) -> None:
        """Count this request as a failure with ``reason`` (a string or an exception)."""
        self._check_entered()
        self._result = reason if isinstance(reason, BaseException) else CatchResponseError(reason)

    def _check_entered(self) -> None:
        if not self._entered:
            raise LocustError(
                "success()/failure() need catch_response=True and a with-block: "
                "with self.client.get(url, catch_response=True) as resp: resp.failure('why')"
            )

    def _fire(self) -> None:
        meta = self.meta
        result = self._result
        if result is True:
            meta["exception"] = None
        elif result is not None:
            meta["exception"] = result
        assert self._session is not None
        self._session._fire(meta, queued_ms=self.queued_ms)

    def __repr__(self) -> str:
        return f"<PortalResponse {self.status_code} {self.url}>"


class PortalSession:
    """HTTP session of one virtual user (or one open-model journey).

    ``clients`` may be shared between sessions (``{(scheme, host, port): HTTPClient}``) so
    that many journeys of an open-model executor reuse one keep-alive pool; the session's
    own state is only its headers and token.
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
        clients: dict[tuple[str, str, int], _PooledClient] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.request_event = request_event
        self.user = user
        self.request_name: str | None = None
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self.concurrency = concurrency
        self._clients = {} if clients is None else clients
        self._base_path = parts.path.rstrip("/")
        self._base_key = _client_key(parts)
        self._base_client = self._client_for(self._base_key)
        self._default_fields = _header_block(default_headers or {})
        self._fields = self._default_fields
        self._bearer_token: str | None = None
        self.start_lag_ms: float | None = None
        """Set by the open-model executor: how late this session's journey started. Every event
        then gets a twin whose type ends in ``CORRECTED_SUFFIX`` and whose time includes it."""

    # -- state ---------------------------------------------------------------------------
    @property
    def bearer_token(self) -> str | None:
        return self._bearer_token

    @bearer_token.setter
    def bearer_token(self, token: str | None) -> None:
        self._fields = self._default_fields
        if token is not None:
            self._fields += _header_block({"Authorization": f"Bearer {token}"})
        self._bearer_token = token

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
    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        catch_response: bool = False,
        allow_redirects: bool = False,
        context: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> PortalResponse:
        """Send one request, report it to Locust, and return the response.

        ``json`` is sent with orjson; a mapping in ``data`` is form-encoded; ``str``/``bytes``
        ``data`` is sent as is. A status of 400 or more, or a transport error, is reported as a
        failure unless ``catch_response=True`` and the block says otherwise. ``timeout`` bounds
        this request (connect, send, whole response) in seconds, on top of the session's socket
        timeouts; when it expires the response has status 0 and a :class:`RequestTimeout`.
        """
        fields = self._fields
        if json is not None:
            body = orjson.dumps(json)
            fields += _JSON_FIELDS
        elif data is None:
            body = b""
        elif isinstance(data, bytes):
            body = data
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = urlencode(data).encode()
            fields += _FORM_FIELDS
        if headers:
            fields += _header_block(headers)
        # Name before the query parameters go on: one statistics row per path, not per query.
        name = name or self.request_name or url
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"

        start_time = time.time()
        start = time.perf_counter()
        resp = self._send(method, url, fields, body, timeout)
        queued_ms = resp.queued_ms
        redirects = 0
        while allow_redirects and resp.status_code in _REDIRECT_CODES and redirects < MAX_REDIRECTS:
            location = resp.header("Location")
            if not location:
                break
            redirects += 1
            if resp.status_code in (301, 302, 303):
                method, fields, body = "GET", self._fields, b""
            resp = self._send(method, location, fields, body, timeout)
            queued_ms += resp.queued_ms
        # Service time: from the moment the request has a connection (connecting included) to
        # the end of its response. Waiting for one of a shared pool's busy connections is the
        # client's queue; it goes only into the corrected twin of an open-model request.
        response_time_ms = (time.perf_counter() - start) * 1000.0 - queued_ms
        resp.queued_ms = queued_ms

        if context is None:
            context = self.user.context() if self.user is not None else {}
        elif self.user is not None:
            context = {**self.user.context(), **context}
        if resp.error is not None:
            exception: BaseException | None = resp.error
        elif resp.status_code >= 400:
            exception = HTTPStatusError(resp.status_code)
        else:
            exception = None
        resp.meta = {
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
        resp._session = self
        if catch_response:
            resp._catch = True
        else:
            self._fire(resp.meta, queued_ms=queued_ms)
        return resp

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
    ) -> None:
        """Fire a request event that is not an HTTP request (journey timings, funnel steps).

        ``corrected=False`` leaves out the coordinated-omission twin (a funnel step's count
        matters, not its time).
        """
        self._fire(
            {
                "request_type": request_type,
                "name": name,
                "response_time": response_time_ms,
                "response_length": response_length,
                "response": None,
                "context": self.user.context() if self.user is not None else {},
                "exception": exception,
                "start_time": time.time() if start_time is None else start_time,
                "url": None,
            },
            corrected,
        )

    def _fire(self, meta: dict[str, Any], corrected: bool = True, queued_ms: float = 0.0) -> None:
        self.request_event.fire(**meta)
        lag_ms = self.start_lag_ms
        if lag_ms is not None and corrected:
            # As wrk2 measures: from when the request was due (its visit's intended start, or
            # the moment the journey asked for it), not from when a connection was free to send.
            twin = dict(meta)
            twin["request_type"] = meta["request_type"] + CORRECTED_SUFFIX
            twin["response_time"] = meta["response_time"] + queued_ms + lag_ms
            self.request_event.fire(**twin)

    def get(self, url: str, **kwargs: Any) -> PortalResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> PortalResponse:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> PortalResponse:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> PortalResponse:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> PortalResponse:
        return self.request("DELETE", url, **kwargs)

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
            client = self._client_for(_client_key(parts))
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            full_url = url
        try:
            if timeout is None:
                raw, queued_s = client.send(method, target, fields, body)
                content = raw.read()
            else:
                # the response closes its connection when interrupted before its end
                with gevent.Timeout(timeout, RequestTimeout(f"no response within {timeout} s")):
                    raw, queued_s = client.send(method, target, fields, body)
                    content = raw.read()
        except TRANSPORT_ERRORS as error:
            return PortalResponse(0, b"", {}, full_url, error)
        resp = PortalResponse(raw.status_code, content, raw.info(), full_url, None)
        resp.queued_ms = queued_s * 1000.0
        return resp

    def _client_for(self, key: tuple[str, str, int]) -> _PooledClient:
        client = self._clients.get(key)
        if client is None:
            scheme, host, port = key
            client = _PooledClient(
                host,
                port=port,
                ssl=scheme == "https",
                insecure=True,
                concurrency=self.concurrency,
                connection_timeout=self.connection_timeout,
                network_timeout=self.network_timeout,
            )
            self._clients[key] = client
        return client


def _client_key(parts: Any) -> tuple[str, str, int]:
    scheme = parts.scheme or "http"
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, parts.hostname, port


class PortalUser(User):
    """A Locust user whose ``self.client`` is a :class:`PortalSession`; used like FastHttpUser.

    Tune the class attributes in a subclass; they are read when the user starts.
    """

    abstract = True

    network_timeout: float = 60.0
    """Seconds a socket may wait for the server before the request fails (status 0)."""

    connection_timeout: float = 60.0
    """Seconds a TCP (and TLS) connect may take."""

    concurrency: int = 1
    """Connections per host; a user runs one greenlet, so one keep-alive connection is enough."""

    default_headers: dict[str, str] | None = None
    """Headers added to every request."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.host is None:
            raise StopTest(
                "no host: set the host attribute of the User class or pass --host on the "
                "command line"
            )
        self.client = PortalSession(
            self.host,
            environment.events.request,
            self,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            concurrency=self.concurrency,
            default_headers=self.default_headers,
        )

    def on_stop(self) -> None:
        self.client.close()
