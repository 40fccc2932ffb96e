"""Live fault and latency injection (``GET/PUT /admin/faults``) and the ledger's invariants
(``GET /admin/ledger``), behind the admin token and, unless configured otherwise, loopback.

A ``PUT`` replaces the whole fault document; it is stored in the shared database, so every
worker applies it within half a second.
"""

from __future__ import annotations

import hmac
import ipaddress

import orjson
from aiohttp import web

from ..config import ConfigError, Faults
from ..problems import Problem
from ..state import PORTAL
from ..wire import json_response, read_json
from .payments import ledger_report


def _authorize(request: web.Request) -> None:
    portal = request.app[PORTAL]
    if not portal.config.admin_remote:
        remote = request.remote or ""
        try:
            address = ipaddress.ip_address(remote.split("%")[0])
        except ValueError:
            loopback = False
        else:
            # A dual-stack socket shows IPv4 clients as ::ffff:127.0.0.1.
            mapped = getattr(address, "ipv4_mapped", None)
            loopback = address.is_loopback or (mapped is not None and mapped.is_loopback)
        if not loopback:
            raise Problem(403, "forbidden", "the admin API answers loopback clients only")
    header = request.headers.get("Authorization", "")
    expected = f"Bearer {portal.config.admin_token}".encode()
    if not hmac.compare_digest(header.encode("utf-8", "surrogatepass"), expected):
        raise Problem(
            401,
            "unauthorized",
            "the admin token is required: Authorization: Bearer <admin token>",
            headers={"WWW-Authenticate": 'Bearer realm="portal-admin"'},
        )


async def get_faults(request: web.Request) -> web.Response:
    _authorize(request)
    engine = request.app[PORTAL].faults
    return json_response({"version": engine.version, **engine.faults.to_json()})


async def put_faults(request: web.Request) -> web.Response:
    _authorize(request)
    portal = request.app[PORTAL]
    body = await read_json(request)
    body.pop("version", None)
    try:
        faults = Faults.parse(body)
    except ConfigError as exc:
        raise Problem(422, "invalid-faults", str(exc)) from None
    version = await portal.put_faults(faults)
    return json_response({"version": version, **faults.to_json()})


async def get_ledger(request: web.Request) -> web.Response:
    _authorize(request)
    report = ledger_report(request.app[PORTAL].store.reader)
    return web.Response(body=orjson.dumps(report), content_type="application/json")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/faults", get_faults)
    app.router.add_put("/admin/faults", put_faults)
    app.router.add_get("/admin/ledger", get_ledger)
