"""The mock's HTTP connections: what happens before a request reaches the app, and after its
client is gone.

- Malformed HTTP gets problem details too. aiohttp answers a request it cannot parse (a bad
  request line, a header without a colon, an oversized field, a bad chunk) before any
  middleware runs, as ``text/plain``; the portal's contract is that every error is
  ``application/problem+json`` (docs/api.md), so the runner's connections answer with problem
  details, the parser's reason as the detail. The connection is still closed after such an
  answer, as aiohttp does: after a framing error the next request's start cannot be trusted.
- A declared body over the limit is refused from its ``Content-Length`` alone: 413 at once,
  without reading the body and without ``100 Continue`` to an ``Expect`` (aiohttp would send
  it, then read up to the limit before refusing), and the connection is closed.
- A client that disconnects before its answer is one warning line, rate-limited (not a
  traceback), and is counted in ``portal_client_disconnects_total``.
- A request's headers must arrive within ``header_timeout_s`` of the connection opening, or of
  the request's first byte on a kept-alive connection: a client that trickles them (slowloris)
  is closed. Idle keep-alive connections close after ``keepalive_timeout_s`` (aiohttp's own
  timer). Connections per process are capped as :mod:`mock_portal.connections` says.
  ``portal_connections_closed_total{reason}`` counts the connections closed for these reasons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .connections import REFUSED, connection_cap
from .logs import RateLimitedLog
from .middleware import CLIENT_MAX_SIZE
from .problems import problem_response
from .routes import UNMATCHED
from .state import PORTAL, Portal

__all__ = ["PortalRunner"]

log = logging.getLogger(__name__)

#: The longest parser message kept in a problem's detail; it may quote the client's bytes.
MAX_DETAIL = 200


class _ProblemRequestHandler(RequestHandler):
    """One connection of the portal (see the module docstring)."""

    portal: Portal
    warnings: RateLimitedLog
    busy = False  # a request of this connection is being handled
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._arm_header_timer()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if data and not self.busy:  # a request's first bytes, or more of its headers
            self._arm_header_timer()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def request_started(self) -> None:
        self.busy = True
        self._disarm_header_timer()

    def log_access(
        self, request: BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        # aiohttp calls this once a response is written (or its client is gone): the request
        # is over, and the connection may wait for the next one.
        self.busy = False
        super().log_access(request, response, time)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            timeout_s = self.portal.config.header_timeout_s
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.busy:
            self.portal.metrics.connections_closed.labels("header_timeout").inc()
            self.force_close()

    def close_unread(self) -> None:
        """Close right after this answer instead of reading the rest of the body for up to
        aiohttp's lingering time: for a client that waits for ``100 Continue``, there is none."""
        self._lingering_time = 0.0

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            # The client went away while its request was read or handled: nobody to answer.
            self.portal.metrics.client_disconnects.inc()
            self.warnings.warning(
                "client %s disconnected before %s %s was answered (%s)",
                request.remote, request.method, request.path[:MAX_DETAIL], exc,
            )  # fmt: skip
            raise ConnectionError("the client disconnected") from exc
        if status >= 500:
            # aiohttp's own answer logs the traceback and raises ConnectionError when a
            # response has already started; only its text body is replaced.
            super().handle_error(request, status, exc, message)
            slug, detail = "internal-error", "the mock failed unexpectedly"
            if status == HTTPStatus.GATEWAY_TIMEOUT:
                slug, detail = "timeout", "the request was not handled in time"
        else:
            if request.writer.output_size > 0:
                raise ConnectionError("a response was sent already; the connection is closed")
            # The parser's message spans lines, with a caret under the offending byte.
            reason = " ".join((message or HTTPStatus(status).phrase).split())
            detail = f"the request is not valid HTTP/1.1: {reason}"
            if len(detail) > MAX_DETAIL:
                detail = detail[: MAX_DETAIL - 3] + "..."
            slug = "malformed-request"
            # One line, not aiohttp's traceback: a fuzzer or a broken client sends many.
            self.warnings.warning(
                "malformed request from %s: %s", request.remote, reason[:MAX_DETAIL]
            )
        response = problem_response(status, slug, detail)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    portal: Portal
    warnings: RateLimitedLog
    cap: int
    # Open connections, oldest first (a dict keeps insertion order).
    open: dict[_ProblemRequestHandler, None]

    def __call__(self) -> RequestHandler:
        handler = _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.portal = self.portal
        handler.warnings = self.warnings
        return handler

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if not isinstance(handler, _ProblemRequestHandler):  # pragma: no cover - ours only
            return
        self.open[handler] = None
        self.portal.metrics.connections.inc()
        if len(self.open) <= self.cap:
            return
        victim = next((h for h in self.open if not h.busy and h is not handler), None)
        closed = self.portal.metrics.connections_closed
        if victim is not None:
            closed.labels("evicted").inc()
            victim.force_close()
        else:
            closed.labels("refused").inc()
            transport.write(REFUSED)
            handler.force_close()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        if isinstance(handler, _ProblemRequestHandler) and handler in self.open:
            del self.open[handler]
            self.portal.metrics.connections.dec()
        super().connection_lost(handler, exc)


class PortalRunner(web.AppRunner):
    """``web.AppRunner`` of a portal app whose connections behave as the module docstring says."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds its web.Server itself; give it this class's connection handler.
        server.__class__ = _ProblemServer
        assert isinstance(server, _ProblemServer)
        server.portal = self.app[PORTAL]
        server.warnings = RateLimitedLog(log)
        server.cap = connection_cap(server.portal.config)
        server.open = {}
        server.portal.metrics.note_runtime(
            asyncio.get_running_loop(), access_log=self._kwargs.get("access_log", True) is not None
        )
        app_handler = server.request_handler
        router = self.app.router
        metrics = server.portal.metrics

        # Not a coroutine itself: it hands on the app's, so a request costs no extra frame.
        def handle(request: BaseRequest) -> Awaitable[web.StreamResponse]:
            connection = request.protocol
            if not isinstance(connection, _ProblemRequestHandler):  # pragma: no cover
                return app_handler(request)
            connection.request_started()
            length = request.content_length
            if length is None or length <= CLIENT_MAX_SIZE:
                return app_handler(request)
            return refuse_oversized(request, connection, length)

        async def refuse_oversized(
            request: BaseRequest, connection: _ProblemRequestHandler, length: int
        ) -> web.StreamResponse:
            start = time.perf_counter()
            resource = (await router.resolve(request)).route.resource  # type: ignore[arg-type]
            response = problem_response(
                413,
                "content-too-large",
                f"the declared body of {length} bytes exceeds the limit of {CLIENT_MAX_SIZE} "
                "bytes; it was not read",
            )
            response.force_close()  # the unread body must not be taken for the next request
            if request.headers.get("Expect"):
                connection.close_unread()
            route = UNMATCHED if resource is None else resource.canonical
            metrics.observe(route, request.method, 413, time.perf_counter() - start)
            return response

        server.request_handler = handle
        return server
