"""The wire under :class:`~scenarios.client.session.PortalSession`: request heads, response
headers, and a keep-alive pool that sends a pre-built head.

geventhttpclient's ``HTTPClient`` keeps one pool of keep-alive connections per host and parses
responses; :class:`PooledClient` keeps both and replaces its send path, so nothing is merged,
re-validated or re-encoded per request beyond the target and the request's own fields. Header
names, values and targets are checked against RFC 9110/9112 once per header set and request
(no CR/LF smuggling).
"""

from __future__ import annotations

import re
import socket
import time
from ssl import SSLError
from typing import TYPE_CHECKING, Any

import geventhttpclient
from geventhttpclient._parser import HTTPParseError
from geventhttpclient.client import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed, HTTPSocketPoolResponse

if TYPE_CHECKING:
    from collections.abc import Mapping
    from urllib.parse import SplitResult

__all__ = [
    "FORM_FIELDS",
    "JSON_FIELDS",
    "TRANSPORT_ERRORS",
    "PooledClient",
    "RequestTimeout",
    "ResponseHeaders",
    "client_key",
    "header_block",
]


class RequestTimeout(TimeoutError):
    """A request took longer than its ``timeout=``; the connection it used is closed."""


# What the transport may raise; each becomes a failed response (status 0), never an exception
# in the user's task.
TRANSPORT_ERRORS = (
    ConnectionError,
    socket.error,  # includes socket timeouts and RequestTimeout
    SSLError,
    HTTPParseError,
    HTTPConnectionClosed,
)

JSON_FIELDS = "Content-Type: application/json\r\nAccept: application/json\r\n"
FORM_FIELDS = "Content-Type: application/x-www-form-urlencoded\r\n"
_USER_AGENT = f"portal-load/{geventhttpclient.__version__}"
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE"))
# RFC 9110 §5.1, §5.5 and RFC 9112 §3.2: what a field name, a field value and an origin-form
# target may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(r"/[^\x00-\x20\x7f]*")


def header_block(headers: Mapping[str, str]) -> str:
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


def client_key(parts: SplitResult) -> tuple[str, str, int]:
    """``(scheme, host, port)``: the pool a URL's requests share."""
    scheme = parts.scheme or "http"
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, parts.hostname or "", port


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


class PooledClient(HTTPClient):
    """geventhttpclient's ``HTTPClient`` (its keep-alive pool and response parser) with a lean
    send path: the request head arrives pre-built from the session."""

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
