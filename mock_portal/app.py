"""The app factory and the one middleware every request passes through.

The middleware keeps the hot path short: it names the route by its template (bounded metric
labels), counts and times the request, turns every error into problem details, and only when a
fault is configured walks the slow path of shedding, injected latency, errors, resets, simulated
capacity and slow bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry

from . import admin, applications, auth, catalog, ops, payments
from .config import PortalConfig
from .faults import reset_connection, sample
from .metrics import PortalMetrics
from .problems import Problem, problem_response
from .state import PORTAL, Portal, background_tasks
from .store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Request limits: a citizen's form is a few KB; anything near this is abuse, answered 413.
CLIENT_MAX_SIZE = 256 * 1024
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 100
SLOW_BODY_CHUNKS = 10

# Route template prefix -> the simulated backend service that serves it.
_SERVICE_OF = (
    ("/oauth2/", "auth"),
    ("/.well-known/", "auth"),
    ("/api/v1/me", "auth"),
    ("/api/v1/services", "catalog"),
    ("/api/v1/applications", "applications"),
    ("/api/v1/payments", "payments"),
)
UNMATCHED = "unmatched"
# Never faulted nor shed: the operator must be able to observe the mock and undo a fault
# (a "*" fault of status 500 would otherwise also refuse the PUT that removes it).
OPERATIONS_ROUTES = frozenset(
    ("/metrics", "/healthz", "/readyz", "/openapi.json", "/admin/faults", "/admin/ledger")
)


def service_of(route: str) -> str | None:
    for prefix, service in _SERVICE_OF:
        if route.startswith(prefix):
            return service
    return None


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def _http_exception_response(exc: web.HTTPException) -> web.Response:
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


def _make_middleware(portal: Portal) -> Middleware:
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
            return _http_exception_response(exc)

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

    @web.middleware
    async def portal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        start = time.perf_counter()
        resource = request.match_info.route.resource
        route = UNMATCHED if resource is None else resource.canonical
        in_flight += 1
        in_flight_add(1)
        try:
            if engine.active and route not in OPERATIONS_ROUTES:
                response = await faulty(request, handler, route)
            else:  # the common path, inlined: one coroutine less per request
                response = await handler(request)
        except Problem as exc:
            response = exc.response()
        except web.HTTPException as exc:
            response = _http_exception_response(exc)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, route)
            response = problem_response(500, "internal-error", "the mock failed unexpectedly")
        finally:
            in_flight -= 1
            in_flight_add(-1)
        metrics.observe(route, request.method, response.status, time.perf_counter() - start)
        return response

    return portal_middleware


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


def create_app(
    config: PortalConfig | None = None, *, registry: CollectorRegistry | None = None
) -> web.Application:
    """A mock portal app: ``web.run_app(create_app(load_config("portal.toml")))``.

    Each app has its own metrics registry (pass one in to read it from a test) and its own
    database under ``config.data_dir`` (a temporary folder, removed at cleanup, when None).
    """
    config = config or PortalConfig()
    if config.secret is None:
        config = config.with_overrides(secret=secrets.token_bytes(32))
    metrics = PortalMetrics(registry or CollectorRegistry(auto_describe=True))
    portal = Portal(config, metrics)

    app = web.Application(
        client_max_size=CLIENT_MAX_SIZE,
        handler_args={
            "max_line_size": MAX_LINE_SIZE,
            "max_field_size": MAX_FIELD_SIZE,
            "max_headers": MAX_HEADERS,
        },
    )

    @contextlib.asynccontextmanager
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        tmp = None
        data_dir = config.data_dir
        if data_dir is None:
            tmp = tempfile.mkdtemp(prefix="mock-portal-")
            data_dir = Path(tmp)
        store = Store(data_dir, config, metrics)
        portal.open(store)
        try:
            async with background_tasks(portal):
                portal.ready = True
                yield
                portal.ready = False
        finally:
            store.close()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    app[PORTAL] = portal
    app.middlewares.append(_make_middleware(portal))
    app.cleanup_ctx.append(lifecycle)
    auth.setup(app)
    catalog.setup(app)
    applications.setup(app)
    payments.setup(app)
    admin.setup(app)
    ops.setup(app)
    return app
