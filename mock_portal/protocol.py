"""Answers to requests that never reach the app: malformed HTTP gets problem details too.

aiohttp answers a request it cannot parse (a bad request line, a header without a colon, an
oversized field, a bad chunk) before any middleware runs, as ``text/plain``. The portal's
contract is that every error is ``application/problem+json`` (docs/api.md), so the mock's
runner uses a request handler whose error answers are problem details, with the parser's
reason as the detail. The connection is still closed after such an answer, as aiohttp does:
after a framing error the next request's start cannot be trusted.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .problems import problem_response

__all__ = ["PortalRunner"]

log = logging.getLogger(__name__)

#: The longest parser message kept in a problem's detail; it may quote the client's bytes.
MAX_DETAIL = 200


class _ProblemRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
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
            log.warning("malformed request from %s: %s", request.remote, reason[:MAX_DETAIL])
        response = problem_response(status, slug, detail)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class PortalRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests with problem details."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds its web.Server itself; give it this class's connection handler.
        server.__class__ = _ProblemServer
        return server
