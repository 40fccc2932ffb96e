"""Payments are money: never paid twice, never lost, idempotent as published."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import ADMIN_TOKEN, Portal, PortalFactory, bearer, login

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _charges(portal: Portal, auth: dict[str, str]) -> list[dict[str, Any]]:
    r = await portal.client.get("/api/v1/payments/charges", headers=auth)
    assert r.status == 200
    return list((await r.json())["items"])


async def _citizen_with_charges(
    portal: Portal, at_least: int, start: int = 1
) -> tuple[int, dict[str, str], list[dict[str, Any]]]:
    for n in range(start, start + 50):
        if n % 5 == 0:
            continue
        auth = bearer(await login(portal.client, n))
        charges = await _charges(portal, auth)
        if len(charges) >= at_least:
            return n, auth, charges
    raise AssertionError("the citizen pool has no citizen with enough charges")


async def _pay(portal: Portal, auth: dict[str, str], key: str | None, body: dict[str, Any]) -> Any:
    headers = dict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await portal.client.post("/api/v1/payments", json=body, headers=headers)


async def _ledger(portal: Portal) -> dict[str, Any]:
    r = await portal.client.get("/admin/ledger", headers=ADMIN)
    assert r.status == 200
    return dict(await r.json())


async def test_fifty_concurrent_requests_with_one_key_make_one_payment(
    make_portal: PortalFactory,
) -> None:
    portal = await make_portal(payment_settle_s=0.05, payment_failure_rate=0.0)
    _, auth, charges = await _citizen_with_charges(portal, 1)
    body = {"charge_id": charges[0]["id"], "method": "card"}
    responses = await asyncio.gather(*(_pay(portal, auth, "same-key", body) for _ in range(50)))
    assert {r.status for r in responses} == {201}
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    replayed = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == 49
    await asyncio.sleep(0.3)
    ledger = await _ledger(portal)
    assert ledger["payments"] == 1
    assert ledger["succeeded_kopecks"] == charges[0]["amount_kopecks"]
    assert ledger["balanced"] is True
    assert ledger["sum_kopecks"] == 0


async def test_same_key_with_a_different_body_is_422(portal: Portal) -> None:
    _, auth, charges = await _citizen_with_charges(portal, 1)
    first = await _pay(portal, auth, "k1", {"charge_id": charges[0]["id"], "method": "card"})
    assert first.status == 201
    other = await _pay(portal, auth, "k1", {"charge_id": charges[0]["id"], "method": "sbp"})
    assert other.status == 422
    problem = await other.json()
    assert other.content_type == "application/problem+json"
    assert problem["status"] == 422
    assert "different request body" in problem["detail"]


async def test_missing_or_invalid_key_is_400_and_creates_nothing(portal: Portal) -> None:
    _, auth, charges = await _citizen_with_charges(portal, 1)
    body = {"charge_id": charges[0]["id"]}
    missing = await _pay(portal, auth, None, body)
    assert missing.status == 400
    assert (await missing.json())["type"].endswith("idempotency-key-missing")
    too_long = await _pay(portal, auth, "x" * 256, body)
    assert too_long.status == 400
    assert (await _ledger(portal))["payments"] == 0


async def test_two_keys_for_one_charge_give_one_success_and_one_409(portal: Portal) -> None:
    _, auth, charges = await _citizen_with_charges(portal, 1)
    body = {"charge_id": charges[0]["id"]}
    a, b = await asyncio.gather(
        _pay(portal, auth, "key-a", body), _pay(portal, auth, "key-b", body)
    )
    assert sorted([a.status, b.status]) == [201, 409]
    loser = a if a.status == 409 else b
    assert (await loser.json())["type"].endswith("charge-already-paid")
    # The refusal is itself idempotent: the same key replays the 409.
    again = await _pay(portal, auth, "key-a" if loser is a else "key-b", body)
    assert again.status == 409
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await _ledger(portal))["payments"] == 1


async def test_unknown_foreign_and_mismatched_charges_are_refused(portal: Portal) -> None:
    n, auth, charges = await _citizen_with_charges(portal, 1)
    _, _, other_charges = await _citizen_with_charges(portal, 1, start=n + 1)
    unknown = await _pay(portal, auth, "u", {"charge_id": "CH-99999999-0"})
    assert unknown.status == 404
    foreign = await _pay(portal, auth, "f", {"charge_id": other_charges[0]["id"]})
    assert foreign.status == 404
    wrong_amount = charges[0]["amount_kopecks"] + 1
    mismatch = await _pay(
        portal, auth, "m", {"charge_id": charges[0]["id"], "amount_kopecks": wrong_amount}
    )
    assert mismatch.status == 422
    invalid = await _pay(portal, auth, "i", {"charge_id": charges[0]["id"], "amount_kopecks": 1.5})
    assert invalid.status == 422
    assert (await invalid.json())["errors"][0]["field"] == "amount_kopecks"
    assert (await _ledger(portal))["payments"] == 0


async def test_failed_payment_refunds_and_the_charge_can_be_paid_again(
    make_portal: PortalFactory,
) -> None:
    portal = await make_portal(payment_settle_s=0.05, payment_failure_rate=1.0)
    _, auth, charges = await _citizen_with_charges(portal, 1)
    charge = charges[0]
    r = await _pay(portal, auth, "first", {"charge_id": charge["id"]})
    assert r.status == 201
    payment = await r.json()
    receipt = await portal.client.get(f"/api/v1/payments/{payment['id']}/receipt", headers=auth)
    assert receipt.status == 409
    await asyncio.sleep(0.3)
    status = await (
        await portal.client.get(f"/api/v1/payments/{payment['id']}", headers=auth)
    ).json()
    assert status["status"] == "failed"
    assert status["failure_reason"]
    assert charge["id"] in [c["id"] for c in await _charges(portal, auth)]
    retry = await _pay(portal, auth, "second", {"charge_id": charge["id"]})
    assert retry.status == 201
    await asyncio.sleep(0.3)
    ledger = await _ledger(portal)
    assert ledger["balanced"] is True
    assert ledger["failed_kopecks"] == 2 * charge["amount_kopecks"]
    assert ledger["clearing_kopecks"] == 0


async def test_another_citizens_payment_is_404(portal: Portal) -> None:
    n, auth, charges = await _citizen_with_charges(portal, 1)
    r = await _pay(portal, auth, "p", {"charge_id": charges[0]["id"]})
    payment_id = (await r.json())["id"]
    other = bearer(await login(portal.client, n + 1 if (n + 1) % 5 else n + 2))
    for path in (f"/api/v1/payments/{payment_id}", f"/api/v1/payments/{payment_id}/receipt"):
        assert (await portal.client.get(path, headers=other)).status == 404
