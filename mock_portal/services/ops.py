"""Operations endpoints: metrics, liveness, readiness and the OpenAPI document.

``/readyz`` is 200 only when the mock is serving and its store takes a small write now, so a
full or read-only disk makes it 503 (as every write request is then).
"""

from __future__ import annotations

import functools

import orjson
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..middleware import store_unavailable
from ..openapi import build_document
from ..problems import problem_response
from ..state import PORTAL
from ..wire import JSON, json_response


async def metrics(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    portal.store.sizes()
    return web.Response(
        body=portal.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    if not portal.ready or portal.draining:
        state = "draining" if portal.draining else "starting"
        return problem_response(
            503,
            "not-ready",
            f"the mock is {state}; send traffic to another instance",
            headers={"Retry-After": "1"},
        )
    portal.store.reader.execute("SELECT 1").fetchone()
    error = await portal.store.writable()
    if error is not None:
        return store_unavailable(error)
    return json_response({"status": "ready"})


@functools.cache
def _openapi_body() -> bytes:
    return orjson.dumps(build_document())


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_openapi_body(), content_type=JSON)


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi)
