"""Paying a charge: list what is owed, pay one charge with an idempotency key, follow the
payment until it settles, fetch the receipt.

A payment request that times out or answers 5xx may or may not have been processed, so it is
retried with the SAME ``Idempotency-Key`` (and the same body): the portal then returns the
original payment instead of charging twice (docs/api.md). Each failed attempt is a failed
request in the statistics; the journey fails only when every attempt failed.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import gevent

from scenarios.funnel import Journey

if TYPE_CHECKING:
    from scenarios.journeys.context import JourneyContext

__all__ = ["MAX_PAY_ATTEMPTS", "PAYMENT_NAME", "pay"]

PAYMENT_NAME = "/api/v1/payments/[id]"
RECEIPT_NAME = "/api/v1/payments/[id]/receipt"
SETTLED = frozenset(("succeeded", "failed"))
MAX_PAY_ATTEMPTS = 4  # first try and three retries, as payment SDKs default to
RETRY_BACKOFF_S = (0.2, 0.5, 1.0)  # pause before each retry unless Retry-After says otherwise
MAX_RETRY_AFTER_S = 5.0
PAY_STEPS = ("charges", "nothing to pay", "retry", "paid", "settled", "receipt")


def _retryable(status_code: int) -> bool:
    return status_code == 0 or status_code >= 500


def _pay_once(
    j: Journey, body: dict[str, Any], key: str, attempt: int, timeout: float
) -> tuple[int, Any, float]:
    """One POST /api/v1/payments: ``(status, parsed body, retry pause)``."""
    with j.client.post(
        "/api/v1/payments",
        json=body,
        headers={"Idempotency-Key": key},
        name="/api/v1/payments" if attempt == 0 else "/api/v1/payments [retry]",
        catch_response=True,
        timeout=timeout,
    ) as resp:
        status = resp.status_code
        parsed = None
        if status == 201:
            try:
                parsed = resp.json()
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict) or parsed.get("charge_id") != body["charge_id"]:
                resp.failure("payment response does not name the charge paid")
                status = -1
            else:
                resp.success()
        elif _retryable(status):
            resp.failure(f"HTTP {status} (retried with the same key)")
        else:
            resp.failure(f"HTTP {status} (expected 201)")
        pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
        retry_after = resp.header("Retry-After")
        if retry_after and retry_after.isdigit():
            pause = min(float(retry_after), MAX_RETRY_AFTER_S)
    return status, parsed, pause


def pay(ctx: JourneyContext) -> bool:
    """Pay one outstanding charge of the signed-in citizen (if any)."""
    if ctx.tokens is None:
        raise ValueError("pay needs a signed-in citizen")
    with Journey(ctx, "pay", PAY_STEPS) as j:
        _, charges = j.call(
            "GET",
            "/api/v1/payments/charges",
            check=lambda b: (
                None
                if isinstance(b, dict) and isinstance(b.get("items"), list)
                else "charges without items"
            ),
        )
        j.step("charges")
        if not charges["items"]:
            j.step("nothing to pay")
            return True
        ctx.think()
        charge = ctx.rng.choice(charges["items"])
        body = {
            "charge_id": charge["id"],
            "amount_kopecks": charge["amount_kopecks"],
            "method": ctx.rng.choice(("card", "sbp")),
        }
        key = str(uuid.uuid4())
        payment = None
        for attempt in range(MAX_PAY_ATTEMPTS):
            if attempt:
                j.step("retry")
            status, payment, pause = _pay_once(j, body, key, attempt, ctx.pacing.payment_timeout_s)
            if not _retryable(status):
                break
            gevent.sleep(pause)
        if payment is None:
            j.fail(f"payment refused or unanswered after {attempt + 1} attempt(s)")
        if payment.get("amount_kopecks") != charge["amount_kopecks"]:
            j.fail("payment amount differs from the charge")
        j.step("paid")
        url = f"/api/v1/payments/{payment['id']}"
        deadline = time.monotonic() + ctx.pacing.poll_timeout_s
        while payment.get("status") not in SETTLED:
            if time.monotonic() > deadline:
                j.fail(f"still {payment.get('status')} after {ctx.pacing.poll_timeout_s:.0f} s")
            ctx.poll_pause()
            _, payment = j.call(
                "GET",
                url,
                name=PAYMENT_NAME,
                check=lambda b: None if isinstance(b, dict) and "status" in b else "no status",
            )
        j.step("settled")
        if payment["status"] == "succeeded":
            j.call(
                "GET",
                f"{url}/receipt",
                name=RECEIPT_NAME,
                check=lambda b: (
                    None
                    if isinstance(b, dict) and b.get("amount_kopecks") == charge["amount_kopecks"]
                    else "receipt amount differs from the charge"
                ),
            )
            j.step("receipt")
    return j.ok
