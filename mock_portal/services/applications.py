"""Service applications: submission with per-service validation, a status that moves with time,
listing with filters and pagination, and the five-criteria "Your control" quality rating.

An application is ``submitted``, then ``in_review`` after ``review_after_s``, then ``approved``
or ``rejected`` after ``decide_after_s`` (the outcome is drawn at submission). The status is
computed from the clock, in Python for one application and in SQL for a filtered listing, so
nothing has to run in the background to move it. Every application belongs to one citizen:
another citizen's id answers 404, exactly as an id that does not exist.
"""

from __future__ import annotations

import random
import sqlite3
import time
import zlib
from typing import Any

import orjson
from aiohttp import web

from .. import ids
from ..config import PortalConfig
from ..problems import Problem, validation_error
from ..state import PORTAL
from ..timestamps import iso
from ..wire import JSON, json_response, page_body, pagination, read_json
from .catalog import services_by_code

STATUSES = ("submitted", "in_review", "approved", "rejected")
CRITERIA = ("service_time", "waiting_time", "courtesy", "comfort", "information")
MAX_COMMENT = 2000
REJECTION_REASONS = (
    "the documents provided are incomplete",
    "the applicant's data does not match the registry",
    "the service is not available for the applicant's region",
)

_COLUMNS = "id, service_code, category, fields, submitted_at, outcome, rating"
APPLICATIONS_CACHE = "applications"  # application id -> (citizen, row, {status: body})


def status_at(cfg: PortalConfig, submitted_at: float, outcome: str, now: float) -> str:
    age = now - submitted_at
    if age < cfg.review_after_s:
        return "submitted"
    if age < cfg.decide_after_s:
        return "in_review"
    return outcome


def _status_sql(cfg: PortalConfig, now: float) -> tuple[str, tuple[float, float]]:
    return (
        "CASE WHEN submitted_at > ? THEN 'submitted' "
        "WHEN submitted_at > ? THEN 'in_review' ELSE outcome END",
        (now - cfg.review_after_s, now - cfg.decide_after_s),
    )


def to_json(cfg: PortalConfig, row: tuple[Any, ...], now: float) -> dict[str, Any]:
    app_id, code, category, fields, submitted_at, outcome, rating = row
    status = status_at(cfg, submitted_at, outcome, now)
    service = services_by_code().get(code)
    history = [{"status": "submitted", "at": iso(submitted_at)}]
    if status != "submitted":
        history.append({"status": "in_review", "at": iso(submitted_at + cfg.review_after_s)})
    decision = None
    if status in ("approved", "rejected"):
        history.append({"status": status, "at": iso(submitted_at + cfg.decide_after_s)})
        decision = {"outcome": status}
        if status == "rejected":
            decision["reason"] = REJECTION_REASONS[
                zlib.crc32(app_id.encode()) % len(REJECTION_REASONS)
            ]
    return {
        "id": app_id,
        "service_code": code,
        "service_title": service.title if service else code,
        "category": category,
        "status": status,
        "submitted_at": iso(submitted_at),
        "updated_at": history[-1]["at"],
        "history": history,
        "decision": decision,
        "fields": orjson.loads(fields),
        "rating": orjson.loads(rating) if rating else None,
    }


def _insert(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(
        "INSERT INTO applications (id, citizen, service_code, category, fields, submitted_at, "
        "outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
        row,
    )


async def submit(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    body = await read_json(request)
    code = body.get("service_code")
    if not isinstance(code, str) or not code:
        raise validation_error([{"field": "service_code", "message": "required: a service code"}])
    service = services_by_code().get(code)
    if service is None:
        raise validation_error([{"field": "service_code", "message": "no such service"}])
    errors = service.validate(body.get("fields"))
    unknown = sorted(set(body) - {"service_code", "fields"})
    errors += [{"field": k[:64], "message": "unknown member"} for k in unknown]
    if errors:
        portal.metrics.applications.labels(service.category, "invalid").inc()
        raise validation_error(errors)
    now = time.time()
    app_id = "APP-" + ids.token_hex(8)
    outcome = "rejected" if random.random() < portal.config.rejection_rate else "approved"
    fields = orjson.dumps(body["fields"], option=orjson.OPT_SORT_KEYS)
    row = (app_id, n, code, service.category, fields, now, outcome)
    await portal.store.write(_insert, row)
    portal.metrics.applications.labels(service.category, "submitted").inc()
    return json_response(
        to_json(portal.config, (app_id, code, service.category, fields, now, outcome, None), now),
        status=201,
        headers={"Location": f"/api/v1/applications/{app_id}"},
    )


async def list_applications(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    page, per_page = pagination(request)
    status = request.query.get("status")
    now = time.time()
    where = "citizen = ?"
    params: list[Any] = [n]
    if status is not None:
        if status not in STATUSES:
            raise Problem(
                400,
                "invalid-parameter",
                f"status must be one of {', '.join(STATUSES)}",
                errors=[{"field": "status", "message": "unknown status"}],
            )
        expr, bounds = _status_sql(portal.config, now)
        where += f" AND {expr} = ?"
        params += [*bounds, status]
    db = portal.store.reader
    total = db.execute(f"SELECT count(*) FROM applications WHERE {where}", params).fetchone()[0]  # noqa: S608
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM applications WHERE {where} "  # noqa: S608
        "ORDER BY submitted_at DESC, id LIMIT ? OFFSET ?",
        [*params, per_page, (page - 1) * per_page],
    ).fetchall()
    items = [to_json(portal.config, row, now) for row in rows]
    return json_response(page_body(items, page, per_page, total))


def _find_entry(request: web.Request, n: int) -> tuple[tuple[Any, ...], dict[str, bytes]]:
    """The application row of the request's id, and its bodies by status, from the cache."""
    app_id = request.match_info["id"]
    store = request.app[PORTAL].store
    cache = store.cached(APPLICATIONS_CACHE)
    entry = cache.get(app_id)
    if entry is None:
        found = store.reader.execute(
            f"SELECT citizen, {_COLUMNS} FROM applications WHERE id = ?",  # noqa: S608
            (app_id,),
        ).fetchone()
        if found is not None:
            entry = cache[app_id] = (found[0], tuple(found[1:]), {})
    if entry is None or entry[0] != n:
        raise Problem(404, "not-found", f"no application {app_id[:40]!r} for this citizen")
    return entry[1], entry[2]


def _find(request: web.Request, n: int) -> tuple[Any, ...]:
    return _find_entry(request, n)[0]


async def get_application(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    row, bodies = _find_entry(request, n)
    now = time.time()
    # The body follows from the row and the status the clock gives it.
    status = status_at(portal.config, row[4], row[5], now)
    body = bodies.get(status)
    if body is None:
        body = bodies[status] = orjson.dumps(to_json(portal.config, row, now))
    return web.Response(body=body, content_type=JSON)


def _rate(conn: sqlite3.Connection, app_id: str, n: int, rating: bytes) -> bool:
    cur = conn.execute(
        "UPDATE applications SET rating = ? WHERE id = ? AND citizen = ? AND rating IS NULL",
        (rating, app_id, n),
    )
    return cur.rowcount == 1


async def rate(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    body = await read_json(request)
    row = _find(request, n)
    errors = []
    for name in CRITERIA:
        value = body.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
            errors.append({"field": name, "message": "required: an integer from 1 to 5"})
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        errors.append({"field": "comment", "message": f"a string of at most {MAX_COMMENT} chars"})
    for k in sorted(set(body) - {*CRITERIA, "comment"}):
        errors.append({"field": k[:64], "message": "unknown member"})
    if errors:
        raise validation_error(errors)
    now = time.time()
    scores = {name: body[name] for name in CRITERIA}
    rating = {
        "application_id": row[0],
        **scores,
        "average": round(sum(scores.values()) / len(CRITERIA), 2),
        "comment": comment,
        "status_at_rating": status_at(portal.config, row[4], row[5], now),
        "rated_at": iso(now),
    }
    rated = await portal.store.write(_rate, row[0], n, orjson.dumps(rating))
    portal.store.forget(APPLICATIONS_CACHE, row[0])
    if not rated:
        raise Problem(409, "already-rated", f"application {row[0]} has already been rated")
    portal.metrics.ratings.inc()
    return json_response(rating, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/applications", submit)
    app.router.add_get("/api/v1/applications", list_applications)
    app.router.add_get("/api/v1/applications/{id}", get_application)
    app.router.add_post("/api/v1/applications/{id}/rating", rate)
