"""A citizen's whole day at the portal: login, apply, follow, rate, pay, receipt."""

from __future__ import annotations

import asyncio

from .conftest import Portal, PortalFactory, bearer, login


async def test_login_apply_rate_pay_receipt(make_portal: PortalFactory) -> None:
    portal: Portal = await make_portal(
        review_after_s=0.05, decide_after_s=0.1, payment_settle_s=0.05, payment_failure_rate=0.0
    )
    client = portal.client
    tokens = await login(client, 7)
    auth = bearer(tokens)
    assert tokens["token_type"] == "Bearer"

    me = await (await client.get("/api/v1/me", headers=auth)).json()
    assert me["sub"] == "citizen-7"

    service = await (await client.get("/api/v1/services/10001")).json()
    fields = {f["name"]: f["example"] for f in service["fields"] if f["required"]}
    r = await client.post(
        "/api/v1/applications", json={"service_code": "10001", "fields": fields}, headers=auth
    )
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["status"] == "submitted"
    assert r.headers["Location"] == f"/api/v1/applications/{created['id']}"

    await asyncio.sleep(0.15)
    decided = await (await client.get(r.headers["Location"], headers=auth)).json()
    assert decided["status"] in ("approved", "rejected")
    assert [h["status"] for h in decided["history"]][:2] == ["submitted", "in_review"]

    scores = {k: 5 for k in ("service_time", "waiting_time", "courtesy", "comfort", "information")}
    r = await client.post(f"{r.headers['Location']}/rating", json=scores, headers=auth)
    assert r.status == 201, await r.text()
    assert (await r.json())["average"] == 5

    charges = (await (await client.get("/api/v1/payments/charges", headers=auth)).json())["items"]
    assert charges, "citizen-7 has charges by construction of the pool"
    charge = charges[0]
    r = await client.post(
        "/api/v1/payments",
        json={"charge_id": charge["id"], "method": "card"},
        headers={**auth, "Idempotency-Key": "pay-1"},
    )
    assert r.status == 201, await r.text()
    payment = await r.json()
    assert payment["amount_kopecks"] == charge["amount_kopecks"]
    await asyncio.sleep(0.1)
    status = await (await client.get(f"/api/v1/payments/{payment['id']}", headers=auth)).json()
    assert status["status"] == "succeeded"
    receipt = await client.get(f"/api/v1/payments/{payment['id']}/receipt", headers=auth)
    assert receipt.status == 200
    assert (await receipt.json())["amount_kopecks"] == charge["amount_kopecks"]
    after = (await (await client.get("/api/v1/payments/charges", headers=auth)).json())["items"]
    assert charge["id"] not in [c["id"] for c in after]
