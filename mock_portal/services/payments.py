"""Payments of fines, taxes, fees and duties, in integer kopecks, never paid twice, never lost.

``POST /api/v1/payments`` follows the IETF Idempotency-Key draft and Stripe's published
semantics: the ``Idempotency-Key`` header is required (400 without it); a replayed key returns
the original status and body (with ``Idempotent-Replayed: true``); the same key with a different
body is 422; keys live ``idempotency_ttl_s`` (24 h by default). The lookup of the key, the check
that the charge is not already paid and the insert of the payment, its ledger entries and the
stored response happen in ONE ``BEGIN IMMEDIATE`` transaction, so concurrent requests with one
key, on one worker or several, create one payment and the others replay it, and two keys for one
charge give one 201 and one 409. A unique index in the database refuses a second successful
payment of a charge even if everything above were wrong.

A payment is ``processing`` until ``settles_at``, then ``succeeded`` or ``failed`` (drawn at
creation); a background task settles due payments and books the ledger. The ledger is double
entry: creation moves the amount from the citizen to ``clearing``; success moves it on to the
payee, failure back to the citizen. Every entry set sums to zero.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .. import citizens, ids
from ..problems import Problem, problem_response, validation_error
from ..state import PORTAL, Periodic, Portal
from ..timestamps import iso
from ..wire import JSON, json_response, read_json

METHODS = ("card", "sbp", "wallet")
MAX_KEY_LEN = 255
SETTLE_BATCH = 500
SETTLE_EVERY_S = 0.1  # a payment is settled within this of its settles_at
CLEARING = "clearing"
FAILURE_REASONS = ("insufficient_funds", "issuer_declined", "card_expired")


def _payee_account(charge: citizens.Charge) -> str:
    return f"payee:{charge.payee}"


def _citizen_account(n: int) -> str:
    return f"citizen:{n}"


def effective_status(status: str, outcome: str, settles_at: float, now: float) -> str:
    if status == "processing" and now >= settles_at:
        return outcome
    return status


def _payment_json(row: tuple[Any, ...], now: float) -> dict[str, Any]:
    pid, charge_id, amount, method, created_at, settles_at, outcome, status, settled_at = row
    status = effective_status(status, outcome, settles_at, now)
    body: dict[str, Any] = {
        "id": pid,
        "charge_id": charge_id,
        "amount_kopecks": amount,
        "currency": "RUB",
        "method": method,
        "status": status,
        "created_at": iso(created_at),
        "updated_at": iso(settled_at or (settles_at if status != "processing" else created_at)),
    }
    if status == "succeeded":
        body["receipt_url"] = f"/api/v1/payments/{pid}/receipt"
    elif status == "failed":
        body["failure_reason"] = FAILURE_REASONS[int(pid[-2:], 16) % len(FAILURE_REASONS)]
    return body


_SELECT = (
    "SELECT id, charge_id, amount_kopecks, method, created_at, settles_at, outcome, status, "
    "settled_at FROM payments"
)


_SELECT_OWNED = (
    "SELECT citizen, id, charge_id, amount_kopecks, method, created_at, settles_at, outcome, "
    "status, settled_at FROM payments WHERE id = ?"
)
PAYMENTS_CACHE = "payments"  # payment id -> (citizen, row, {status: body})
CHARGES_CACHE = "charges"  # citizen -> [rows, taken charge ids, body]


class KeyReused(Exception):
    """The idempotency key was used before with a different request body."""


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One payment request as the write sees it: who pays which charge under which key, and
    what the new payment would be (its id, settlement time and outcome drawn beforehand)."""

    citizen: int
    key: str
    fingerprint: str  # of the request body, to tell a replay from a reused key
    request: dict[str, Any]
    pool: int  # citizens in the portal: where charge ids are looked up
    ttl_s: float  # an idempotency key older than this is replaced
    now: float
    payment_id: str
    settles_at: float
    outcome: str


def _pay(conn: sqlite3.Connection, attempt: _Attempt) -> tuple[int, bytes, str | None, bool]:
    """One payment request, atomically: ``(status, body, location, replayed)``."""
    n, key, request = attempt.citizen, attempt.key, attempt.request
    fingerprint, now, payment_id = attempt.fingerprint, attempt.now, attempt.payment_id
    row = conn.execute(
        "SELECT fingerprint, status, body, location FROM idempotency_keys "
        "WHERE citizen = ? AND key = ? AND created_at > ?",
        (n, key, now - attempt.ttl_s),
    ).fetchone()
    if row is not None:
        if not hmac.compare_digest(row[0], fingerprint):
            raise KeyReused
        return int(row[1]), bytes(row[2]), row[3], True

    status, location = 201, None
    charge = citizens.charge_by_id(request["charge_id"], attempt.pool)
    if charge is None or charge.citizen != n:
        status = 404
        body = _problem_body(
            404, "not-found", f"no charge {request['charge_id']!r} for this citizen"
        )
    elif request.get("amount_kopecks", charge.amount_kopecks) != charge.amount_kopecks:
        status = 422
        body = _problem_body(
            422,
            "amount-mismatch",
            f"charge {charge.id} is {charge.amount_kopecks} kopecks, "
            f"not {request['amount_kopecks']}",
        )
    else:
        active = conn.execute(
            "SELECT id FROM payments WHERE charge_id = ? AND (status = 'succeeded' OR "
            "(status = 'processing' AND (outcome = 'succeeded' OR settles_at > ?))) LIMIT 1",
            (charge.id, now),
        ).fetchone()
        if active is not None:
            status = 409
            body = _problem_body(
                409,
                "charge-already-paid",
                f"charge {charge.id} is paid or being paid by {active[0]}",
            )
        else:
            amount = charge.amount_kopecks
            conn.execute(
                "INSERT INTO payments (id, citizen, charge_id, amount_kopecks, method, created_at, "
                "settles_at, outcome, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'processing')",
                (
                    payment_id,
                    n,
                    charge.id,
                    amount,
                    request["method"],
                    now,
                    attempt.settles_at,
                    attempt.outcome,
                ),
            )
            conn.execute(
                "INSERT INTO ledger (payment_id, account, amount_kopecks, at) "
                "VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
                (payment_id, _citizen_account(n), -amount, now, payment_id, CLEARING, amount, now),
            )
            row = (payment_id, charge.id, amount, request["method"], now, attempt.settles_at,
                   attempt.outcome, "processing", None)  # fmt: skip
            body = orjson.dumps(_payment_json(row, now))
            location = f"/api/v1/payments/{payment_id}"
    # A key seen before but expired (older than the TTL, not yet evicted) is replaced.
    conn.execute(
        "INSERT OR REPLACE INTO idempotency_keys (citizen, key, fingerprint, status, body, "
        "location, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (n, key, fingerprint, status, body, location, now),
    )
    return status, body, location, False


def _problem_body(status: int, slug: str, detail: str) -> bytes:
    return bytes(problem_response(status, slug, detail).body)  # type: ignore[arg-type]


def _valid_key(key: str | None) -> str:
    if key is None:
        raise Problem(400, "idempotency-key-missing", "the Idempotency-Key header is required")
    if not 1 <= len(key) <= MAX_KEY_LEN or not key.isascii() or not key.isprintable():
        raise Problem(
            400,
            "idempotency-key-invalid",
            f"Idempotency-Key must be 1-{MAX_KEY_LEN} printable ASCII characters",
        )
    return key


def _validate(body: dict[str, Any]) -> None:
    errors = []
    charge_id = body.get("charge_id")
    if not isinstance(charge_id, str) or not 1 <= len(charge_id) <= 64:
        errors.append({"field": "charge_id", "message": "required: a charge id"})
    if body.get("method", "card") not in METHODS:
        errors.append({"field": "method", "message": f"one of {', '.join(METHODS)}"})
    if "amount_kopecks" in body:
        amount = body["amount_kopecks"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            errors.append({"field": "amount_kopecks", "message": "a positive integer of kopecks"})
    for k in sorted(set(body) - {"charge_id", "method", "amount_kopecks"}):
        errors.append({"field": k[:64], "message": "unknown member"})
    if errors:
        raise validation_error(errors)


async def create_payment(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    key = _valid_key(request.headers.get("Idempotency-Key"))
    body = await read_json(request)
    _validate(body)
    body.setdefault("method", "card")
    fingerprint = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    cfg = portal.config
    now = time.time()
    payment_id = "PAY-" + ids.token_hex(10)
    failed = random.random() < cfg.payment_failure_rate
    try:
        attempt = _Attempt(
            citizen=n,
            key=key,
            fingerprint=fingerprint,
            request=body,
            pool=cfg.citizens,
            ttl_s=float(cfg.idempotency_ttl_s),
            now=now,
            payment_id=payment_id,
            settles_at=now + cfg.payment_settle_s,
            outcome="failed" if failed else "succeeded",
        )
        status, out, location, replayed = await portal.store.write(_pay, attempt)
    except KeyReused:
        raise Problem(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request body",
        ) from None
    headers = {"Idempotency-Key": key}
    if location:
        headers["Location"] = location
    if replayed:
        headers["Idempotent-Replayed"] = "true"
        portal.metrics.idempotent_replays.inc()
    elif status == 201:
        portal.store.forget(CHARGES_CACHE, n)
        portal.metrics.payments.labels("processing").inc()
    else:
        portal.metrics.payments.labels("refused").inc()
    ctype = JSON if status < 400 else "application/problem+json"
    return web.Response(status=status, body=out, content_type=ctype, headers=headers)


async def get_charges(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    now = time.time()
    cache = portal.store.cached(CHARGES_CACHE)
    entry = cache.get(n)
    if entry is None:
        rows = portal.store.reader.execute(
            "SELECT charge_id, status, outcome, settles_at FROM payments WHERE citizen = ?", (n,)
        ).fetchall()
        entry = cache[n] = [rows, None, b""]
    taken = frozenset(
        charge_id
        for charge_id, status, outcome, settles_at in entry[0]
        if effective_status(status, outcome, settles_at, now) != "failed"
    )
    if taken != entry[1]:
        items = [c.to_json() for c in citizens.charges(n) if c.id not in taken]
        total = sum(c["amount_kopecks"] for c in items)
        body = {"items": items, "total": len(items), "total_kopecks": total}
        entry[1], entry[2] = taken, orjson.dumps(body)
    return web.Response(body=entry[2], content_type=JSON)


def _find_entry(
    portal: Portal, request: web.Request, n: int
) -> tuple[tuple[Any, ...], dict[str, bytes]]:
    """The payment row of the request's id, and its bodies by status, from the cache."""
    pid = request.match_info["id"]
    cache = portal.store.cached(PAYMENTS_CACHE)
    entry = cache.get(pid)
    if entry is None:
        found = portal.store.reader.execute(_SELECT_OWNED, (pid,)).fetchone()
        if found is not None:
            entry = cache[pid] = (found[0], tuple(found[1:]), {})
    if entry is None or entry[0] != n:
        raise Problem(404, "not-found", f"no payment {pid[:40]!r} for this citizen")
    return entry[1], entry[2]


def _find(portal: Portal, request: web.Request, n: int) -> tuple[Any, ...]:
    return _find_entry(portal, request, n)[0]


async def get_payment(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    row, bodies = _find_entry(portal, request, n)
    now = time.time()
    # The body follows from the row and the status the clock gives it.
    status = effective_status(row[7], row[6], row[5], now)
    body = bodies.get(status)
    if body is None:
        body = bodies[status] = orjson.dumps(_payment_json(row, now))
    return web.Response(body=body, content_type=JSON)


async def get_receipt(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    row = _find(portal, request, n)
    now = time.time()
    payment = _payment_json(row, now)
    if payment["status"] != "succeeded":
        raise Problem(
            409, "payment-not-succeeded", f"payment {row[0]} is {payment['status']}; no receipt"
        )
    charge = citizens.charge_by_id(row[1], portal.config.citizens)
    if charge is None:  # pragma: no cover - a stored payment always names a real charge
        raise Problem(404, "not-found", f"charge {row[1]} no longer exists")
    person = citizens.profile(n)
    receipt = {
        "receipt_number": "R-" + row[0][4:],
        "payment_id": row[0],
        "paid_at": payment["updated_at"],
        "amount_kopecks": row[2],
        "currency": "RUB",
        "method": row[3],
        "payer": {"name": f"{person['given_name']} {person['family_name']}", "inn": person["inn"]},
        "payee": charge.payee,
        "purpose": charge.description,
        "uin": charge.uin,
    }
    receipt["signature"] = hmac.new(
        portal.config.secret or b"",
        orjson.dumps(receipt, option=orjson.OPT_SORT_KEYS),
        hashlib.sha256,
    ).hexdigest()
    return json_response(receipt)


def _settle(conn: sqlite3.Connection, now: float, pool: int) -> list[tuple[str, int, str, int]]:
    """Settle due payments and book the ledger; ``(outcome, amount, id, citizen)`` of each."""
    due = conn.execute(
        "SELECT id, citizen, charge_id, amount_kopecks, outcome FROM payments "
        "WHERE status = 'processing' AND settles_at <= ? ORDER BY settles_at LIMIT ?",
        (now, SETTLE_BATCH),
    ).fetchall()
    done = []
    for pid, n, charge_id, amount, outcome in due:
        charge = citizens.charge_by_id(charge_id, pool)
        if outcome == "succeeded" and charge is not None:
            try:
                conn.execute(
                    "UPDATE payments SET status = 'succeeded', settled_at = ? WHERE id = ?",
                    (now, pid),
                )
                dest = _payee_account(charge)
            except sqlite3.IntegrityError:  # the charge is already paid: refund instead
                outcome = "failed"
        if outcome != "succeeded" or charge is None:
            outcome = "failed"
            conn.execute(
                "UPDATE payments SET status = 'failed', outcome = 'failed', settled_at = ? "
                "WHERE id = ?",
                (now, pid),
            )
            dest = _citizen_account(n)
        conn.executemany(
            "INSERT INTO ledger (payment_id, account, amount_kopecks, at) VALUES (?, ?, ?, ?)",
            [(pid, CLEARING, -amount, now), (pid, dest, amount, now)],
        )
        done.append((outcome, amount, pid, n))
    return done


async def settle_due(portal: Portal) -> None:
    done = await portal.store.write(_settle, time.time(), portal.config.citizens)
    for outcome, amount, pid, n in done:
        portal.store.forget(PAYMENTS_CACHE, pid)
        portal.store.forget(CHARGES_CACHE, n)
        portal.metrics.payments.labels(outcome).inc()
        if outcome == "succeeded":
            portal.metrics.payment_amount.inc(amount / 100)


def ledger_report(conn: sqlite3.Connection) -> dict[str, Any]:
    """The ledger's totals and invariants, for operators and tests (``GET /admin/ledger``)."""
    total, entries = conn.execute(
        "SELECT coalesce(sum(amount_kopecks), 0), count(*) FROM ledger"
    ).fetchone()
    clearing = conn.execute(
        "SELECT coalesce(sum(amount_kopecks), 0) FROM ledger WHERE account = ?", (CLEARING,)
    ).fetchone()[0]
    by_status = dict(
        conn.execute(
            "SELECT status, coalesce(sum(amount_kopecks), 0) FROM payments GROUP BY status"
        ).fetchall()
    )
    payees = conn.execute(
        "SELECT coalesce(sum(amount_kopecks), 0) FROM ledger WHERE account LIKE 'payee:%'"
    ).fetchone()[0]
    double_paid = conn.execute(
        "SELECT count(*) FROM (SELECT charge_id FROM payments WHERE status = 'succeeded' "
        "GROUP BY charge_id HAVING count(*) > 1)"
    ).fetchone()[0]
    unbalanced = conn.execute(
        "SELECT count(*) FROM (SELECT payment_id FROM ledger GROUP BY payment_id "
        "HAVING sum(amount_kopecks) != 0)"
    ).fetchone()[0]
    processing = by_status.get("processing", 0)
    succeeded = by_status.get("succeeded", 0)
    return {
        "entries": entries,
        "sum_kopecks": total,
        "clearing_kopecks": clearing,
        "payees_kopecks": payees,
        "processing_kopecks": processing,
        "succeeded_kopecks": succeeded,
        "failed_kopecks": by_status.get("failed", 0),
        "payments": conn.execute("SELECT count(*) FROM payments").fetchone()[0],
        "double_paid_charges": double_paid,
        "balanced": total == 0
        and clearing == processing
        and payees == succeeded
        and double_paid == 0
        and unbalanced == 0,
    }


def setup(app: web.Application) -> None:
    portal = app[PORTAL]
    portal.jobs.append(Periodic("settlement", SETTLE_EVERY_S, lambda: settle_due(portal)))
    app.router.add_get("/api/v1/payments/charges", get_charges)
    app.router.add_post("/api/v1/payments", create_payment)
    app.router.add_get("/api/v1/payments/{id}", get_payment)
    app.router.add_get("/api/v1/payments/{id}/receipt", get_receipt)
