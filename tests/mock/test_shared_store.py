"""Two mock workers sharing one database: what one writes, the other's caches never hide.

Each worker is an app with its own store (its own SQLite connections and per-process caches)
on one data directory and one signing key, as ``--workers N`` runs them; here both live in
the test's process, so each request can be sent to the worker chosen."""

from __future__ import annotations

from typing import Any

from mock_portal import citizens

from .conftest import ADMIN_TOKEN, Portal, PortalFactory, bearer, login

SECRET = b"shared-signing-key-of-both-workers"
ADDRESS_FORM = {
    "applicant_snils": "112-233-445 95",
    "contact_phone": "+79161234567",
    "address": "Lenina street 1, apt 2",
    "move_in_date": "2026-05-17",
    "residents": 2,
}


async def _workers(make_portal: PortalFactory, **overrides: Any) -> tuple[Portal, Portal]:
    a = await make_portal(secret=SECRET, **overrides)
    b = await make_portal(secret=SECRET, **overrides)
    return a, b


def _citizen_with_charges() -> int:
    return next(n for n in range(1, 1000) if n % 5 and len(citizens.charges(n)) >= 2)


async def _outstanding(portal: Portal, auth: dict[str, str]) -> list[str]:
    r = await portal.client.get("/api/v1/payments/charges", headers=auth)
    assert r.status == 200
    return [c["id"] for c in (await r.json())["items"]]


async def test_a_payment_through_one_worker_is_seen_and_never_paid_again_through_another(
    make_portal: PortalFactory,
) -> None:
    a, b = await _workers(make_portal)
    n = _citizen_with_charges()
    auth = bearer(await login(a.client, n))
    charge = (await _outstanding(b, auth))[0]  # B has read the charge as outstanding
    r = await b.client.get("/api/v1/payments/PAY-00000000000000000000", headers=auth)
    assert r.status == 404

    r = await a.client.post(
        "/api/v1/payments", json={"charge_id": charge}, headers={**auth, "Idempotency-Key": "a-1"}
    )
    assert r.status == 201, await r.text()
    payment = (await r.json())["id"]

    assert charge not in await _outstanding(b, auth)
    r = await b.client.get(f"/api/v1/payments/{payment}", headers=auth)
    assert r.status == 200 and (await r.json())["charge_id"] == charge
    r = await b.client.post(
        "/api/v1/payments", json={"charge_id": charge}, headers={**auth, "Idempotency-Key": "b-1"}
    )
    assert r.status == 409, await r.text()
    assert (await r.json())["type"].endswith("/charge-already-paid")
    r = await b.client.post(
        "/api/v1/payments", json={"charge_id": charge}, headers={**auth, "Idempotency-Key": "a-1"}
    )
    assert r.status == 201 and r.headers["Idempotent-Replayed"] == "true"
    assert (await r.json())["id"] == payment

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ledger = await (await b.client.get("/admin/ledger", headers=admin)).json()
    assert ledger["payments"] == 1 and ledger["double_paid_charges"] == 0
    assert ledger["balanced"] is True


async def test_a_rating_through_one_worker_shows_in_the_application_read_through_another(
    make_portal: PortalFactory,
) -> None:
    a, b = await _workers(make_portal)
    auth = bearer(await login(a.client, 7))
    service = next(
        s.code for s in citizens_services() if {f.name for f in s.fields} == set(ADDRESS_FORM)
    )
    r = await a.client.post(
        "/api/v1/applications",
        json={"service_code": service, "fields": ADDRESS_FORM},
        headers=auth,
    )
    assert r.status == 201, await r.text()
    app_id = (await r.json())["id"]
    r = await b.client.get(f"/api/v1/applications/{app_id}", headers=auth)
    assert r.status == 200 and (await r.json())["rating"] is None  # now in B's cache

    scores = {"service_time": 5, "waiting_time": 4, "courtesy": 5, "comfort": 3, "information": 4}
    r = await a.client.post(f"/api/v1/applications/{app_id}/rating", json=scores, headers=auth)
    assert r.status == 201, await r.text()

    r = await b.client.get(f"/api/v1/applications/{app_id}", headers=auth)
    assert (await r.json())["rating"]["courtesy"] == 5
    r = await b.client.post(f"/api/v1/applications/{app_id}/rating", json=scores, headers=auth)
    assert r.status == 409


async def test_failed_logins_through_one_worker_throttle_the_login_on_another(
    make_portal: PortalFactory,
) -> None:
    a, b = await _workers(make_portal, login_max_failures=3)

    async def attempt(portal: Portal, password: str) -> int:
        r = await portal.client.get(
            "/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": "portal-web",
                "redirect_uri": "http://localhost/callback",
                "code_challenge": "A" * 43,
                "code_challenge_method": "S256",
            },
        )
        challenge = (await r.json())["login_challenge"]
        body = {"login_challenge": challenge, "login": "citizen-8", "password": password}
        r = await portal.client.post("/oauth2/login", json=body, allow_redirects=False)
        return r.status

    assert await attempt(b, "Passw0rd-8") == 302  # B has read (and cached): no failures
    for _ in range(3):
        assert await attempt(a, "wrong") == 401
    assert await attempt(b, "Passw0rd-8") == 429  # three failures through A: B throttles too


def citizens_services() -> list[Any]:
    from mock_portal.services.catalog import build_catalog

    return list(build_catalog())
