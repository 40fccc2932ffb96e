"""The wire under :class:`~scenarios.client.session.PortalSession`: HTTP/1.1 framed by hand on
gevent sockets.

A general client parses every header field of every response into objects; a load generator
needs the status, the body and, now and then, one field. :class:`HostPool` keeps the
keep-alive connections of one ``(scheme, host, port)`` and makes one exchange per call:

- the request goes out in one ``sendall``; its head (request line, ``Host``, the session's
  fields) is validated and encoded once per ``(method, target, fields)`` and cached;
- the response is read with a buffer: the status line, then only the fields that frame the
  body (``Content-Length``, ``Transfer-Encoding: chunked``, ``Connection``), found by a search
  of the lower-cased head; every other field stays in the head's bytes until asked for
  (:class:`ResponseHeaders`);
- a connection the server closed while idle is retried once for idempotent methods
  (RFC 9110 §9.2.2); a connection in an unknown state (an error, a timeout, a body framed by
  the close) is closed, never reused.

Header names, values and targets are checked against RFC 9110/9112 (no CR/LF smuggling). What
the wire may raise is :data:`TRANSPORT_ERRORS`; the session turns each into a failed response.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

import gevent
import gevent.socket
import gevent.ssl
from gevent.lock import BoundedSemaphore
from gevent.monkey import get_original

if TYPE_CHECKING:
    from collections.abc import Mapping
    from urllib.parse import SplitResult

__all__ = [
    "FORM_FIELDS",
    "JSON_FIELDS",
    "TRANSPORT_ERRORS",
    "HostPool",
    "NetworkTimeout",
    "ProtocolError",
    "RequestTimeout",
    "ResponseHeaders",
    "client_key",
    "header_block",
]


class RequestTimeout(TimeoutError):
    """A request took longer than its ``timeout=``; the connection it used is closed."""


class ProtocolError(ConnectionError):
    """The server's answer is not an HTTP/1.x response this client can frame."""


class NetworkTimeout(TimeoutError):
    """The server sent nothing for the pool's ``network_timeout``; the connection is closed."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("no data from the server within the network timeout",)))


class _StaleConnection(ConnectionError):
    """A kept-alive connection was closed by the server before any byte of the response."""


# What the transport may raise; each becomes a failed response (status 0), never an exception
# in the user's task. (OSError covers socket timeouts, RequestTimeout, SSL errors, refusals.)
TRANSPORT_ERRORS = (OSError, ssl.SSLError)

JSON_FIELDS = "Content-Type: application/json\r\nAccept: application/json\r\n"
FORM_FIELDS = "Content-Type: application/x-www-form-urlencoded\r\n"
try:
    _USER_AGENT = f"portal-load/{metadata.version('portal-load')}"
except metadata.PackageNotFoundError:  # run from a source tree that is not installed
    _USER_AGENT = "portal-load"
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE"))
_NO_BODY_STATUSES = frozenset((204, 304))
# RFC 9110 §5.1, §5.5 and RFC 9112 §3.2: what a field name, a field value and an origin-form
# target may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(r"/[^\x00-\x20\x7f]*")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# One recv takes a whole portal response (a catalog page is ~2 KiB); larger bodies are read
# into a buffer of their announced length.
RECV_SIZE = 65536
# A head longer than this is no portal response (aiohttp itself refuses 8 KiB lines).
MAX_HEAD_BYTES = 65536
# Request heads cached per pool: a user's token and the journeys' paths make a few hundred;
# paths with ids miss, and the cache is emptied when full rather than tracked per entry.
HEAD_CACHE_SIZE = 4096
# A POST goes on a kept-alive connection idle this long only once a peek finds it open: no
# server drops a connection sooner (aiohttp after 75 s, nginx 75 s, uvicorn 5 s), and the peek
# would cost a system call per request of a busy journey.
IDLE_PROBE_S = 0.1

_READ = 1  # libev/libuv event masks
_WRITE = 2
# The standard library's blocking socket class, even once Locust has patched the module: the
# plain connections below do their own waiting on gevent's hub.
_SystemSocket = get_original("socket", "socket")

CRLF = b"\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_TRANSFER_ENCODING = b"\r\ntransfer-encoding:"
_CONNECTION = b"\r\nconnection:"


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


class ResponseHeaders:
    """A response's header fields, parsed from its head on first use.

    ``get`` and ``in`` ignore case; a repeated field is joined with ", " (RFC 9110 §5.3).
    Most responses are never asked for a field, so most heads are never parsed.
    """

    __slots__ = ("_fields", "_head")

    def __init__(self, head: bytes = b"") -> None:
        self._head = head
        self._fields: dict[str, str] | None = None

    def _parsed(self) -> dict[str, str]:
        fields = self._fields
        if fields is None:
            fields = self._fields = {}
            for line in self._head.decode("latin-1").split("\r\n")[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    continue
                key = name.strip().lower()
                value = value.strip()
                old = fields.get(key)
                fields[key] = value if old is None else f"{old}, {value}"
        return fields

    def get(self, name: str, default: Any = None) -> Any:
        return self._parsed().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._parsed()[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._parsed()

    def __bool__(self) -> bool:
        return bool(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def items(self) -> Any:
        return self._parsed().items()

    def __repr__(self) -> str:
        return f"ResponseHeaders({self._parsed()!r})"


class HostPool:
    """The keep-alive connections to one host, and the exchange of one request on them.

    At most ``concurrency`` requests are in flight; a request that finds every connection busy
    waits, and :meth:`exchange` says for how long.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        concurrency: int = 1,
        connection_timeout: float = 60.0,
        network_timeout: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.host = host
        self.port = port
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self._idle: list[_Connection] = []
        self._semaphore = BoundedSemaphore(concurrency)
        self._heads: dict[tuple[str, str, str], bytes] = {}
        self._tls: ssl.SSLContext | None = None
        if tls:
            # As FastHttpUser's insecure default: a load test's target often has a test cert.
            self._tls = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        host_port = f"[{host}]" if ":" in host else host
        if port != (443 if tls else 80):
            host_port = f"{host_port}:{port}"
        self._head_start = f"Host: {host_port}\r\nUser-Agent: {_USER_AGENT}\r\n"

    def close(self) -> None:
        """Close the idle connections (those in use close when their exchange ends)."""
        idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def head(self, method: str, target: str, fields: str) -> bytes:
        """The request line and header fields, up to the body's ``Content-Length``."""
        key = (method, target, fields)
        head = self._heads.get(key)
        if head is None:
            if not _TARGET.fullmatch(target):
                raise ValueError(f"invalid request target {target!r}")
            if not _TOKEN.fullmatch(method):
                raise ValueError(f"invalid HTTP method {method!r}")
            head = f"{method} {target} HTTP/1.1\r\n{self._head_start}{fields}".encode("latin-1")
            if len(self._heads) >= HEAD_CACHE_SIZE:
                self._heads.clear()
            self._heads[key] = head
        return head

    def exchange(
        self, method: str, target: str, fields: str, body: bytes
    ) -> tuple[int, bytes, bytes, float]:
        """Send one request and read its response: ``(status, head, body, queued_s)``.

        ``queued_s`` is how long the request waited for a connection because every one of the
        pool was busy: time spent at the client, not in the service.
        """
        head = self.head(method, target, fields)
        if body:
            message = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        elif method in _BODY_METHODS:
            message = head + b"Content-Length: 0\r\n\r\n"
        else:
            message = head + b"\r\n"
        semaphore = self._semaphore
        queued_s = 0.0
        if semaphore.locked():
            start = time.perf_counter()
            semaphore.acquire()
            queued_s = time.perf_counter() - start
        else:
            semaphore.acquire()
        try:
            retry = method in _IDEMPOTENT_METHODS
            while True:
                idle = self._idle
                fresh = not idle
                sock = self._connect() if fresh else idle.pop()
                if not (fresh or retry) and not sock.open_after_idle():
                    # a request that must not be sent twice goes on a connection known open
                    sock.close()
                    continue
                try:
                    status, response_head, content, keep = sock.exchange(message, method)
                except _StaleConnection:
                    sock.close()
                    if retry and not fresh:
                        retry = False
                        continue
                    raise
                except BaseException:
                    sock.close()
                    raise
                if keep:
                    sock.idle_since_s = time.monotonic()
                    self._idle.append(sock)
                else:
                    sock.close()
                return status, response_head, content, queued_s
        finally:
            semaphore.release()

    def _connect(self) -> _PlainConnection | _TLSConnection:
        sock = gevent.socket.create_connection(
            (self.host, self.port), timeout=self.connection_timeout
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
                sock.settimeout(self.network_timeout)
                return _TLSConnection(sock)
            raw = _SystemSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        except BaseException:
            sock.close()
            raise
        return _PlainConnection(raw, self.network_timeout)


class _PlainConnection:
    """A TCP connection read and written without gevent's socket wrapper: a non-blocking
    system socket whose waits go straight to the hub (one watcher per direction, made once),
    with one timer per exchange for the network timeout instead of one per wait."""

    __slots__ = ("_hub", "_read_watcher", "_sock", "_timer", "_write_watcher", "idle_since_s")

    def __init__(self, sock: Any, network_timeout: float) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._hub = gevent.get_hub()
        self._read_watcher = self._hub.loop.io(sock.fileno(), _READ)
        self._write_watcher: Any = None
        self._timer = self._hub.loop.timer(network_timeout)
        self.idle_since_s = 0.0

    def exchange(self, message: bytes, method: str) -> tuple[int, bytes, bytes, bool]:
        timer = self._timer
        timer.start(gevent.getcurrent().throw, NetworkTimeout)
        try:
            return _exchange(self, message, method)
        finally:
            timer.stop()

    def sendall(self, data: bytes) -> None:
        sock = self._sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            view = memoryview(data)
            if self._write_watcher is None:
                self._write_watcher = self._hub.loop.io(sock.fileno(), _WRITE)
            while sent < len(data):
                self._hub.wait(self._write_watcher)
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(view[sent:])

    def open_after_idle(self) -> bool:
        """Whether the server has neither closed this idle connection nor sent on it (asked
        of the socket only after :data:`IDLE_PROBE_S`: a server closes no connection sooner)."""
        if time.monotonic() - self.idle_since_s < IDLE_PROBE_S:
            return True
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    def recv_first(self) -> bytes:
        """The first bytes of a response: wait, then read (a response is never there as
        soon as its request is sent, so reading first would only fail)."""
        self._hub.wait(self._read_watcher)
        return self.recv()

    def recv(self) -> bytes:
        while True:
            try:
                return self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                self._hub.wait(self._read_watcher)

    def recv_into(self, view: memoryview) -> int:
        while True:
            try:
                return self._sock.recv_into(view)
            except BlockingIOError:
                self._hub.wait(self._read_watcher)

    def close(self) -> None:
        self._timer.close()
        self._read_watcher.close()
        if self._write_watcher is not None:
            self._write_watcher.close()
        self._sock.close()


class _TLSConnection:
    """A TLS connection on gevent's SSL socket, whose own timeout is the network timeout."""

    __slots__ = ("_sock", "idle_since_s")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.idle_since_s = 0.0

    def exchange(self, message: bytes, method: str) -> tuple[int, bytes, bytes, bool]:
        return _exchange(self, message, method)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def open_after_idle(self) -> bool:
        return True  # an SSL socket cannot peek; a closed one fails the request

    def recv_first(self) -> bytes:
        return self.recv()

    def recv(self) -> bytes:
        return self._sock.recv(RECV_SIZE)

    def recv_into(self, view: memoryview) -> int:
        return self._sock.recv_into(view)

    def close(self) -> None:
        self._sock.close()


_Connection = _PlainConnection | _TLSConnection


def _exchange(sock: _Connection, message: bytes, method: str) -> tuple[int, bytes, bytes, bool]:
    """Send ``message`` and read its response: ``(status, head, body, keep_alive)``."""
    try:
        sock.sendall(message)
        data = sock.recv_first()
    except (BrokenPipeError, ConnectionResetError) as error:
        raise _StaleConnection(f"connection closed by the server: {error}") from error
    if not data:
        raise _StaleConnection("connection closed by the server before a response")
    while True:
        end = data.find(b"\r\n\r\n")
        while end < 0:
            if len(data) > MAX_HEAD_BYTES:
                raise ProtocolError(f"response head longer than {MAX_HEAD_BYTES} bytes")
            more = sock.recv()
            if not more:
                raise ProtocolError("connection closed in the response head")
            searched = len(data) - 3
            data += more
            end = data.find(b"\r\n\r\n", searched)
        head = data[:end]
        # "HTTP/1.1 200 OK": the version, a space, three digits, then a space or the line's end
        code = head[9:12]
        if head[:7] != b"HTTP/1." or head[8:9] != b" " or not code.isdigit():
            raise _bad_status(head)
        if head[12:13] not in (b" ", b"\r", b""):
            raise _bad_status(head)
        status = int(code)
        if status < 100:
            raise _bad_status(head)
        if 100 <= status < 200 and status != 101:
            # an interim response (103 Early Hints): its final one follows
            data = data[end + 4 :]
            if not data:
                data = sock.recv()
                if not data:
                    raise ProtocolError("connection closed after an interim response")
            continue
        break
    rest = data[end + 4 :]
    lower = head.lower()
    keep = head[7:8] == b"1"  # HTTP/1.1 keeps the connection unless told otherwise
    connection = _field(lower, _CONNECTION)
    if connection is not None:
        if b"close" in connection:
            keep = False
        elif b"keep-alive" in connection:
            keep = True
    if method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
        return status, head, b"", keep and not rest
    coding = _field(lower, _TRANSFER_ENCODING)
    if coding is not None:
        if coding.rsplit(b",", 1)[-1].strip() == b"chunked":
            body, rest = _read_chunked(sock, rest)
            return status, head, body, keep and not rest
        return status, head, _read_to_close(sock, rest), False
    length = _field(lower, _CONTENT_LENGTH)
    if length is None:
        return status, head, _read_to_close(sock, rest), False
    if not length.isdigit():
        values = {v.strip() for v in length.split(b",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise ProtocolError(f"invalid Content-Length {length!r}")
        length = values.pop()
    size = int(length)
    have = len(rest)
    if have == size:
        return status, head, rest, keep
    if have > size:
        return status, head, rest[:size], False  # bytes past the body: not ours to read
    return status, head, _read_exactly(sock, rest, size), keep


def _bad_status(head: bytes) -> ProtocolError:
    return ProtocolError(f"malformed status line {head.split(CRLF, 1)[0][:60]!r}")


def _field(lower_head: bytes, marker: bytes) -> bytes | None:
    """The value of the field that ``marker`` (``b"\\r\\nname:"``) starts, repeated fields
    joined with ``,``; ``None`` when the head has none."""
    start = lower_head.find(marker)
    if start < 0:
        return None
    values = []
    while start >= 0:
        start += len(marker)
        stop = lower_head.find(b"\r\n", start)
        if stop < 0:
            stop = len(lower_head)
        values.append(lower_head[start:stop].strip())
        start = lower_head.find(marker, stop)
    return values[0] if len(values) == 1 else b",".join(values)


def _read_exactly(sock: _Connection, start: bytes, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = len(start)
    view[:got] = start
    while got < size:
        n = sock.recv_into(view[got:])
        if not n:
            raise ProtocolError(f"connection closed after {got} of {size} body bytes")
        got += n
    return bytes(buffer)


def _read_to_close(sock: _Connection, start: bytes) -> bytes:
    parts = [start]
    while True:
        more = sock.recv()
        if not more:
            return b"".join(parts)
        parts.append(more)


def _read_chunked(sock: _Connection, data: bytes) -> tuple[bytes, bytes]:
    """A chunked body (RFC 9112 §7.1), its trailer fields skipped; returns it and any bytes
    read past its end."""
    buffer = bytearray(data)
    pos = 0
    parts = []
    while True:
        line_end = _find_line(sock, buffer, pos)
        size_text = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise ProtocolError(f"invalid chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        pos = line_end + 2
        if size == 0:
            while True:  # trailer fields, up to an empty line
                line_end = _find_line(sock, buffer, pos)
                empty = line_end == pos
                pos = line_end + 2
                if empty:
                    return b"".join(parts), bytes(buffer[pos:])
        while len(buffer) < pos + size + 2:
            more = sock.recv()
            if not more:
                raise ProtocolError("connection closed in a chunk")
            buffer += more
        if buffer[pos + size : pos + size + 2] != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
        parts.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


def _find_line(sock: _Connection, buffer: bytearray, pos: int) -> int:
    """The index of the CRLF ending the line at ``pos``, reading more as needed."""
    end = buffer.find(b"\r\n", pos)
    while end < 0:
        if len(buffer) - pos > MAX_HEAD_BYTES:
            raise ProtocolError("chunk line too long")
        more = sock.recv()
        if not more:
            raise ProtocolError("connection closed in a chunked body")
        searched = max(pos, len(buffer) - 1)
        buffer += more
        end = buffer.find(b"\r\n", searched)
    return end
