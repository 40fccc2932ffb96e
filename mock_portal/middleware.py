"""What every request passes through, wrapped around each route's handler once, when the app
is built (not an aiohttp middleware, which costs two coroutines and a partial per request).

It keeps the hot path short: the route's template is known at registration (bounded metric
labels); the wrapper counts and times the request, turns every error into problem details,
and only when a fault is configured walks the slow path of shedding, injected latency,
errors, resets, simulated capacity and slow bodies. A request that matches no route (404,
405) gets the same wrapper, under the route label ``unmatched``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError, UrlMappingMatchInfo

from .faults import reset_connection, sample
from .problems import Problem, problem_response
from .routes import OPERATIONS_ROUTES, UNMATCHED, service_of
from .state import Portal
from .store import StoreUnwritable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Request limits: a citizen's form is a few KB; anything near this is abuse, answered 413.
CLIENT_MAX_SIZE = 256 * 1024
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
SLOW_BODY_CHUNKS = 10
# A full or read-only disk is freed by a person or a cleanup job, not within a second.
STORE_RETRY_AFTER_S = 5


def http_exception_response(exc: web.HTTPException) -> web.Response:
    """The problem details of an exception aiohttp raised (404, 405, 413, ...)."""
    status = exc.status
    if status < 400:  # a redirect raised by aiohttp itself (e.g. normalize path)
        return web.Response(status=status, headers=exc.headers)
    slug = {404: "not-found", 405: "method-not-allowed", 413: "content-too-large"}.get(
        status, "http-error"
    )
    detail = {
        404: "no such resource in the portal API",
        405: "this method is not allowed on this resource",
        413: f"the request body exceeds the limit of {CLIENT_MAX_SIZE} bytes",
    }.get(status, exc.reason)
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return problem_response(status, slug, detail, headers=headers or None)


def store_unavailable(exc: StoreUnwritable) -> web.Response:
    """503 for a request the store could not take: nothing of it happened; retry later."""
    return problem_response(
        503,
        "store-unavailable",
        f"{exc}; nothing was changed, retry later",
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


def install(app: web.Application, portal: Portal) -> None:
    """Wrap every route of ``app`` (added by now) and its unmatched requests; see the module
    docstring."""
    wrap = _wrapper(portal)
    for resource in app.router.resources():
        for route in resource:
            # The handler is fixed at registration; aiohttp keeps it in the route.
            route._handler = wrap(route.handler, resource.canonical)  # type: ignore[assignment]
    router = app.router
    resolve = router.resolve

    async def resolve_wrapped(request: web.Request) -> UrlMappingMatchInfo:
        match_info = await resolve(request)
        if isinstance(match_info, MatchInfoError):
            route = match_info.route
            route._handler = wrap(route.handler, UNMATCHED)  # type: ignore[assignment]
        return match_info

    router.resolve = resolve_wrapped  # type: ignore[method-assign]


def _wrapper(portal: Portal) -> Callable[[Handler, str], Handler]:
    """How one portal app wraps a handler of a route template."""
    metrics = portal.metrics
    engine = portal.faults
    in_flight = 0
    in_flight_add = metrics.watch_in_flight(lambda: in_flight)

    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as exc:
            return exc.response()
        except web.HTTPException as exc:
            return http_exception_response(exc)

    async def faulty(request: web.Request, handler: Handler, route: str) -> web.StreamResponse:
        faults = engine.faults
        if faults.shed_in_flight and in_flight > faults.shed_in_flight:
            metrics.load_shed.inc()
            return problem_response(
                503,
                "overloaded",
                f"more than {faults.shed_in_flight} requests in flight; retry later",
                headers={"Retry-After": str(faults.shed_retry_after_s)},
            )
        rf = engine.route_faults(route)
        if rf is not None:
            if rf.latency is not None:
                engine.count(route, "latency")
                await asyncio.sleep(sample(rf.latency, engine.rng))
            if engine.hit(rf.reset_rate):
                engine.count(route, "reset")
                reset_connection(request.transport)
                raise asyncio.CancelledError  # the connection is gone; nothing to answer
            if engine.hit(rf.error_rate):
                engine.count(route, "error")
                headers = {"Retry-After": "1"} if rf.error_status in (429, 503) else None
                return problem_response(
                    rf.error_status, "injected-fault", "fault injected by the test", headers=headers
                )
        service = service_of(route)
        pool = engine.pools.get(service) if service is not None else None
        if pool is not None:
            await pool.serve()
        response = await answer(request, handler)
        if rf is not None and engine.hit(rf.lose_response_rate):
            engine.count(route, "lost_response")
            reset_connection(request.transport)
            raise asyncio.CancelledError  # handled, but the client never hears of it
        if rf is not None and rf.slow_body_s > 0 and isinstance(response, web.Response):
            engine.count(route, "slow_body")
            return await _slow_body(request, response, rf.slow_body_s)
        return response

    def wrap(handler: Handler, route: str) -> Handler:
        operations = route in OPERATIONS_ROUTES
        observe = metrics.observe
        perf_counter = time.perf_counter

        async def wrapped(request: web.Request) -> web.StreamResponse:
            nonlocal in_flight
            start = perf_counter()
            in_flight += 1
            in_flight_add(1)
            try:
                if engine.active and not operations:
                    response = await faulty(request, handler, route)
                else:  # the common path, inlined: one coroutine less per request
                    response = await handler(request)
            except Problem as exc:
                response = exc.response()
            except web.HTTPException as exc:
                response = http_exception_response(exc)
            except StoreUnwritable as exc:
                response = store_unavailable(exc)
            except (asyncio.CancelledError, ConnectionError):
                raise
            except Exception:
                log.exception("unhandled error on %s %s", request.method, route)
                response = problem_response(500, "internal-error", "the mock failed unexpectedly")
            finally:
                in_flight -= 1
                in_flight_add(-1)
            observe(route, request.method, response.status, perf_counter() - start)
            return response

        return wrapped

    return wrap


async def _slow_body(
    request: web.Request, response: web.Response, total_s: float
) -> web.StreamResponse:
    body = response.body if isinstance(response.body, bytes) else b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    step = max(1, -(-len(body) // SLOW_BODY_CHUNKS))
    for i in range(0, max(len(body), 1), step):
        await asyncio.sleep(total_s / SLOW_BODY_CHUNKS)
        await stream.write(body[i : i + step])
    await stream.write_eof()
    return stream
