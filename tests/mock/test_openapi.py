"""The OpenAPI document against the real app: every route documented, every documented response
produced by a real request, every real response's status, headers and body as documented."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# The OpenAPI 3.1 meta-schema as schemathesis ships it (no network, no extra dependency).
from schemathesis.specs.openapi.definitions import OPENAPI_31

from mock_portal import create_app, load_config
from mock_portal.openapi import UNSHED_TAGS, build_document
from mock_portal.state import PORTAL

from .conftest import ADMIN_TOKEN, REDIRECT_URI, Portal, PortalFactory, pkce_pair

BASE = "urn:portal:openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OVERSIZED = "x" * (300 * 1024)  # above the mock's 256 KiB request limit
# Documented but not reachable from a test: the admin API refuses non-loopback clients, and
# tests talk over loopback only.
UNREACHABLE = {
    ("/admin/faults", "get", "403"),
    ("/admin/faults", "put", "403"),
    ("/admin/ledger", "get", "403"),
}


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def documented_operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield template, method, item[method]


class Contract:
    """Checks real responses against the document and records which responses were seen."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(BASE, resource)
        self.seen: set[tuple[str, str, str]] = set()

    def response_spec(self, template: str, method: str, status: str) -> tuple[str, dict[str, Any]]:
        """The response object and its JSON pointer, following a ``$ref`` to components."""
        pointer = f"/paths/{_escape(template)}/{method}/responses/{status}"
        spec = self.doc["paths"][template][method]["responses"][status]
        if "$ref" in spec:
            pointer = spec["$ref"].removeprefix("#")
            spec = self.doc["components"]["responses"][pointer.rsplit("/", 1)[1]]
        return pointer, spec

    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{BASE}#{pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def check(
        self, template: str, method: str, status: int, headers: Any, media: str, body: bytes
    ) -> Any:
        op = self.doc["paths"][template][method]
        where = f"{method.upper()} {template} -> {status}"
        assert str(status) in op["responses"], f"{where} is not documented: {body[:300]!r}"
        pointer, spec = self.response_spec(template, method, str(status))
        for name, header in spec.get("headers", {}).items():
            value = headers.get(name)
            if value is None:
                assert not header.get("required"), f"{where}: header {name} missing"
                continue
            if header["schema"].get("type") == "integer":
                assert value.isdigit(), f"{where}: header {name}: {value!r}"
                value = int(value)
            hpointer = f"{pointer}/headers/{_escape(name)}/schema"
            self.validator(hpointer).validate(value)
        content = spec.get("content")
        self.seen.add((template, method, str(status)))
        if not content:
            assert body == b"", f"{where}: a body where none is documented"
            return None
        assert media in content, f"{where}: {media} is not one of {sorted(content)}"
        if not media.endswith("json"):
            return body.decode()
        data = json.loads(body)
        schema_pointer = f"{pointer}/content/{_escape(media)}/schema"
        errors = sorted(self.validator(schema_pointer).iter_errors(data), key=str)
        assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
        return data

    async def read(self, template: str, response: ClientResponse) -> Any:
        body = await response.read()
        return self.check(
            template,
            response.method.lower(),
            response.status,
            response.headers,
            response.content_type,
            body,
        )


class Driver:
    """Requests by route template, each response checked against the contract."""

    def __init__(self, client: TestClient, contract: Contract) -> None:
        self.client = client
        self.contract = contract

    async def __call__(
        self, method: str, template: str, expect: int, *, path: str | None = None, **kw: Any
    ) -> tuple[Any, ClientResponse]:
        kw.setdefault("allow_redirects", False)
        response = await self.client.request(method, path or template, **kw)
        body = await self.contract.read(template, response)
        assert response.status == expect, f"{method} {path or template}: {body}"
        return body, response


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_document()


# -- the document itself --------------------------------------------------------------------


def test_document_is_valid_openapi_31(doc: dict[str, Any]) -> None:
    errors = list(Draft202012Validator(OPENAPI_31).iter_errors(doc))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_reference_resolves_and_every_component_is_used(doc: dict[str, Any]) -> None:
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for target in refs:
        node: Any = doc
        for part in target.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    for section in ("schemas", "responses", "parameters"):
        for name in doc["components"][section]:
            assert f"#/components/{section}/{name}" in refs, f"unused component {section}/{name}"


def test_every_registered_route_is_documented_and_vice_versa(doc: dict[str, Any]) -> None:
    app = create_app(load_config(citizens=10))
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes() if r.resource}
    heads = {(m, p) for m, p in routes if m == "head"}
    assert {("get", p) for _, p in heads} <= routes, "HEAD is documented through its GET"
    documented = {(method, template) for template, method, _ in documented_operations(doc)}
    assert routes - heads == documented


async def test_openapi_json_serves_the_document(portal: Portal, doc: dict[str, Any]) -> None:
    contract = Contract(doc)
    served, response = await Driver(portal.client, contract)("GET", "/openapi.json", 200)
    assert response.content_type == "application/json"
    assert served == json.loads(json.dumps(doc))


def test_the_contract_refuses_what_the_document_does_not_say(doc: dict[str, Any]) -> None:
    contract = Contract(doc)
    problem = {
        "type": "https://portal.example/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "no service",
    }
    ptype = "application/problem+json"
    contract.check("/api/v1/services/{code}", "get", 404, {}, ptype, json.dumps(problem).encode())
    bad_bodies = [{**problem, "status": 400}, {**problem, "extra": 1}, {"detail": "x"}]
    for bad in bad_bodies:
        with pytest.raises(AssertionError):
            contract.check(
                "/api/v1/services/{code}", "get", 404, {}, ptype, json.dumps(bad).encode()
            )
    with pytest.raises(AssertionError, match="not documented"):
        contract.check("/healthz", "get", 404, {}, ptype, json.dumps(problem).encode())
    with pytest.raises(AssertionError, match="header Retry-After missing"):
        contract.check("/oauth2/login", "post", 429, {}, ptype, b"{}")
    succeeded = {
        "id": "PAY-" + "0" * 20,
        "charge_id": "CH-7-0",
        "amount_kopecks": 100,
        "currency": "RUB",
        "method": "card",
        "status": "succeeded",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:01.000Z",
    }
    with pytest.raises(ValidationError, match="receipt_url"):
        contract.validator("/components/schemas/Payment").validate(succeeded)


# -- real responses -------------------------------------------------------------------------


async def _authorize(call: Driver) -> tuple[str, str, str]:
    """A login challenge, the PKCE verifier and the state it was made with."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "portal-web",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    await call("GET", "/oauth2/authorize", 400, params={**params, "client_id": "nobody"})
    body, _ = await call("GET", "/oauth2/authorize", 200, params=params)
    return body["login_challenge"], verifier, params["state"]


def _code_of(response: ClientResponse, state: str) -> str:
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


def _code_form(code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": "portal-web",
        "code_verifier": verifier,
    }


def _credentials(challenge: str, n: int, password: str | None = None) -> dict[str, str]:
    return {
        "login_challenge": challenge,
        "login": f"citizen-{n}",
        "password": password or f"Passw0rd-{n}",
    }


async def _sso(call: Driver) -> tuple[dict[str, str], dict[str, str]]:
    """Both logins and every SSO error; returns bearer headers of citizens 7 and 10."""
    await call("GET", "/.well-known/openid-configuration", 200)
    challenge, verifier, state = await _authorize(call)
    login = "/oauth2/login"
    await call("POST", login, 400, json={"login": "citizen-7"})
    await call("POST", login, 400, json=_credentials("not-a-challenge", 7))
    await call("POST", login, 415, data="login=citizen-7")
    await call("POST", login, 413, json={"login_challenge": OVERSIZED})
    for expect in (401, 401, 429):  # login_max_failures=2 in this portal
        await call("POST", login, expect, json=_credentials(challenge, 8, "wrong"))
    _, r = await call("POST", login, 302, json=_credentials(challenge, 7))
    code = _code_of(r, state)

    token = "/oauth2/token"
    form = _code_form(code, verifier)
    await call("POST", token, 400, data=[("grant_type", "a"), ("grant_type", "b")])
    await call("POST", token, 400, data={**form, "code": "forged"})
    await call("POST", token, 401, data={**form, "client_id": "nobody"})
    await call("POST", token, 415, json=form)
    await call("POST", token, 413, data={**form, "code": OVERSIZED})
    tokens, _ = await call("POST", token, 200, data=form)
    await call("POST", token, 400, data=form)  # a code is single-use
    refresh = {"grant_type": "refresh_token", "client_id": "portal-web"}
    refreshed, _ = await call(
        "POST", token, 200, data={**refresh, "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed["access_token"] != tokens["access_token"]

    # Citizen 10 has a second factor; citizen 15 exhausts the one-time-code attempts.
    challenge, verifier, state = await _authorize(call)
    mfa, _ = await call("POST", login, 200, json=_credentials(challenge, 10))
    otp = "/oauth2/otp"
    await call("POST", otp, 400, json={"mfa_token": "forged", "code": "000000"})
    await call("POST", otp, 400, json={"code": "000000"})
    await call("POST", otp, 415, data="code=000000")
    await call("POST", otp, 413, json={"mfa_token": OVERSIZED, "code": "0"})
    await call("POST", otp, 401, json={"mfa_token": mfa["mfa_token"], "code": "123456"})
    _, r = await call("POST", otp, 302, json={"mfa_token": mfa["mfa_token"], "code": "000000"})
    mfa_tokens, _ = await call("POST", token, 200, data=_code_form(_code_of(r, state), verifier))
    assert "id_token" in mfa_tokens
    other, _, _ = await _authorize(call)
    mfa15, _ = await call("POST", login, 200, json=_credentials(other, 15))
    for expect in (401, 401, 429):
        await call("POST", otp, expect, json={"mfa_token": mfa15["mfa_token"], "code": "1"})

    citizen7 = {"Authorization": f"Bearer {refreshed['access_token']}"}
    citizen10 = {"Authorization": f"Bearer {mfa_tokens['access_token']}"}
    me, _ = await call("GET", "/api/v1/me", 200, headers=citizen10)
    assert me["mfa_enabled"] is True
    await call("GET", "/api/v1/me", 401)

    revoke = "/oauth2/revoke"
    await call("POST", revoke, 400, data={"client_id": "portal-web"})
    await call("POST", revoke, 400, data=[("token", "a"), ("token", "b")])
    await call("POST", revoke, 401, data={"token": "t", "client_id": "nobody"})
    await call("POST", revoke, 415, json={"token": "t"})
    await call("POST", revoke, 413, data={"token": OVERSIZED})
    await call(
        "POST", revoke, 200, data={"token": mfa_tokens["access_token"], "client_id": "portal-web"}
    )
    await call("GET", "/api/v1/me", 401, headers=citizen10)
    return citizen7, citizen10


async def _catalog(call: Driver) -> dict[str, Any]:
    page, _ = await call("GET", "/api/v1/services", 200)
    assert page["total"] >= 500
    found, _ = await call(
        "GET",
        "/api/v1/services",
        200,
        params={"q": "passport", "category": "passports", "per_page": "5", "page": "2"},
    )
    assert found["facets"]["category"] == {"passports": found["total"]}
    await call("GET", "/api/v1/services", 400, params={"per_page": "0"})
    await call("GET", "/api/v1/services", 400, params={"category": "nowhere"})
    await call("GET", "/api/v1/services/{code}", 404, path="/api/v1/services/99999")
    service, _ = await call("GET", "/api/v1/services/{code}", 200, path="/api/v1/services/10001")
    return dict(service)


async def _applications(call: Driver, auth: dict[str, str], service: dict[str, Any]) -> None:
    apps = "/api/v1/applications"
    fields = {f["name"]: f["example"] for f in service["fields"]}
    valid = {"service_code": service["code"], "fields": fields}
    await call("POST", apps, 401, json=valid)
    await call("POST", apps, 415, data="x", headers=auth)
    await call("POST", apps, 400, data="[]", headers={**auth, "Content-Type": "application/json"})
    await call("POST", apps, 413, json={"fields": OVERSIZED}, headers=auth)
    await call("POST", apps, 422, json={**valid, "service_code": "99999"}, headers=auth)
    await call("POST", apps, 422, json={**valid, "fields": {"passport": 1}, "x": 1}, headers=auth)
    created, r = await call("POST", apps, 201, json=valid, headers=auth)
    location = r.headers["Location"]
    await call("GET", apps, 200, headers=auth, params={"status": "submitted"})
    await call("GET", apps, 400, headers=auth, params={"status": "lost"})
    await call("GET", apps, 401)
    one = "/api/v1/applications/{id}"
    await call("GET", one, 401, path=location)
    await call("GET", one, 404, path=f"{apps}/APP-0000000000000000", headers=auth)
    for _ in range(100):  # decide_after_s=0.1; bounded wait for the decision
        app, _ = await call("GET", one, 200, path=location, headers=auth)
        if app["decision"] is not None:
            break
        await asyncio.sleep(0.02)
    assert app["status"] in ("approved", "rejected")
    listing, _ = await call("GET", apps, 200, headers=auth, params={"per_page": "1"})
    assert listing["items"][0]["id"] == created["id"]

    rating = "/api/v1/applications/{id}/rating"
    scores = dict.fromkeys(
        ("service_time", "waiting_time", "courtesy", "comfort", "information"), 4
    )
    await call("POST", rating, 401, path=f"{location}/rating", json=scores)
    await call("POST", rating, 415, path=f"{location}/rating", data="x", headers=auth)
    await call(
        "POST",
        rating,
        400,
        path=f"{location}/rating",
        data="{",
        headers={**auth, "Content-Type": "application/json"},
    )
    await call(
        "POST", rating, 413, path=f"{location}/rating", json={"comment": OVERSIZED}, headers=auth
    )
    await call(
        "POST", rating, 404, path=f"{apps}/APP-0000000000000000/rating", json=scores, headers=auth
    )
    await call(
        "POST", rating, 422, path=f"{location}/rating", json={**scores, "courtesy": 6}, headers=auth
    )
    rated, _ = await call(
        "POST",
        rating,
        201,
        path=f"{location}/rating",
        json={**scores, "comment": "fast"},
        headers=auth,
    )
    assert rated["average"] == 4
    await call("POST", rating, 409, path=f"{location}/rating", json=scores, headers=auth)
    app, _ = await call("GET", one, 200, path=location, headers=auth)
    assert app["rating"] == rated


async def _payments(call: Driver, auth: dict[str, str]) -> None:
    charges, _ = await call("GET", "/api/v1/payments/charges", 200, headers=auth)
    await call("GET", "/api/v1/payments/charges", 401)
    charge = charges["items"][0]
    pay = "/api/v1/payments"
    body = {"charge_id": charge["id"], "method": "sbp"}
    keyed = {**auth, "Idempotency-Key": "journey-1"}
    await call("POST", pay, 401, json=body, headers={"Idempotency-Key": "k"})
    await call("POST", pay, 400, json=body, headers=auth)
    await call("POST", pay, 415, data="x", headers=keyed)
    await call("POST", pay, 413, json={"charge_id": OVERSIZED}, headers=keyed)
    await call("POST", pay, 422, json={**body, "tip": 1}, headers=keyed)
    stranger = {**auth, "Idempotency-Key": "journey-404"}
    await call("POST", pay, 404, json={"charge_id": "CH-1-0"}, headers=stranger)
    _, r = await call("POST", pay, 404, json={"charge_id": "CH-1-0"}, headers=stranger)
    assert r.headers["Idempotent-Replayed"] == "true"
    payment, r = await call("POST", pay, 201, json=body, headers=keyed)
    replay, r2 = await call("POST", pay, 201, json=body, headers=keyed)
    assert replay == payment and r2.headers["Location"] == r.headers["Location"]
    await call("POST", pay, 422, json={**body, "method": "card"}, headers=keyed)
    await call("POST", pay, 409, json=body, headers={**auth, "Idempotency-Key": "journey-2"})

    one = "/api/v1/payments/{id}"
    receipt = "/api/v1/payments/{id}/receipt"
    location = r.headers["Location"]
    missing = f"{pay}/PAY-{'0' * 20}"
    await call("GET", receipt, 409, path=f"{location}/receipt", headers=auth)  # processing
    await call("GET", one, 401, path=location)
    await call("GET", one, 404, path=missing, headers=auth)
    await call("GET", receipt, 401, path=f"{location}/receipt")
    await call("GET", receipt, 404, path=f"{missing}/receipt", headers=auth)
    deadline = time.monotonic() + 10  # payment_settle_s=1.0; bounded wait for settlement
    while True:
        status, _ = await call("GET", one, 200, path=location, headers=auth)
        if status["status"] != "processing" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "succeeded"
    paid, _ = await call("GET", receipt, 200, path=f"{location}/receipt", headers=auth)
    assert paid["amount_kopecks"] == charge["amount_kopecks"] == payment["amount_kopecks"]


async def _admin_and_ops(call: Driver, client: TestClient) -> None:
    faults = "/admin/faults"
    await call("GET", faults, 401)
    await call("GET", faults, 200, headers=ADMIN)
    await call("PUT", faults, 401, json={})
    await call("PUT", faults, 415, data="x", headers=ADMIN)
    await call("PUT", faults, 400, data="[]", headers={**ADMIN, "Content-Type": "application/json"})
    await call("PUT", faults, 413, json={"seed": OVERSIZED}, headers=ADMIN)
    await call("PUT", faults, 422, json={"routes": {"x": {}}}, headers=ADMIN)
    document = {
        "routes": {"/api/v1/services": {"latency": {"kind": "uniform", "min_ms": 0, "max_ms": 1}}},
        "capacity": {"catalog": {"servers": 64, "service_time": {"kind": "fixed", "ms": 0.1}}},
        "seed": 3,
    }
    applied, _ = await call("PUT", faults, 200, json=document, headers=ADMIN)
    got, _ = await call("GET", faults, 200, headers=ADMIN)
    assert got == applied and got["capacity"]["catalog"]["capacity_rps"] == 640_000
    await call("GET", "/api/v1/services", 200)
    await call("PUT", faults, 200, json={}, headers=ADMIN)
    await call("GET", "/admin/ledger", 401)
    ledger, _ = await call("GET", "/admin/ledger", 200, headers=ADMIN)
    assert ledger["balanced"] is True
    text, _ = await call("GET", "/metrics", 200)
    assert "portal_http_requests_total" in text
    await call("GET", "/healthz", 200)
    await call("GET", "/readyz", 200)
    await call("GET", "/openapi.json", 200)
    portal = client.app[PORTAL]
    portal.draining = True
    try:
        draining, _ = await call("GET", "/readyz", 503)
    finally:
        portal.draining = False
    assert draining["status"] == 503
    assert "draining" in draining["detail"]


def _example_path(template: str) -> str:
    return (
        template.replace("{code}", "10001")
        .replace("{id}/receipt", f"PAY-{'0' * 20}/receipt")
        .replace("applications/{id}", "applications/APP-0000000000000000")
        .replace("payments/{id}", f"payments/PAY-{'0' * 20}")
    )


async def _load_shedding(call: Driver, portal: Portal, doc: dict[str, Any]) -> None:
    """With a limit of one and one request in flight, every operation answers 503.

    The request held in flight is a login whose body arrives only when the test says so: no
    timing is involved.
    """
    await call("PUT", "/admin/faults", 200, json={"shed_in_flight": 1}, headers=ADMIN)
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield b'{"login": '
        await release.wait()
        yield b'"citizen-1"}'

    json_type = {"Content-Type": "application/json"}
    held = asyncio.create_task(
        call("POST", "/oauth2/login", 400, data=held_body(), headers=json_type)
    )
    for _ in range(1000):  # until the held request is in flight; bounded
        if (portal.registry.get_sample_value("portal_http_in_flight") or 0) >= 1:
            break
        await asyncio.sleep(0.005)
    shed = [
        call(method.upper(), template, 503, path=_example_path(template), json={})
        for template, method, op in documented_operations(doc)
        if op["tags"][0] not in UNSHED_TAGS
    ]
    try:
        await asyncio.gather(*shed)
    finally:
        release.set()
        await held
    await call("PUT", "/admin/faults", 200, json={}, headers=ADMIN)


async def test_real_responses_conform_and_cover_the_document(
    make_portal: PortalFactory, doc: dict[str, Any]
) -> None:
    portal = await make_portal(
        review_after_s=0.02,
        decide_after_s=0.05,
        # long enough for the requests between the payment and its "processing" receipt
        # on a loaded machine; the journey then waits for the settlement
        payment_settle_s=1.0,
        payment_failure_rate=0.0,
        login_max_failures=2,
    )
    contract = Contract(doc)
    call = Driver(portal.client, contract)
    citizen7, _ = await _sso(call)
    service = await _catalog(call)
    await _applications(call, citizen7, service)
    await _payments(call, citizen7)
    await _admin_and_ops(call, portal.client)
    await _load_shedding(call, portal, doc)

    documented = {
        (template, method, status)
        for template, method, op in documented_operations(doc)
        for status in op["responses"]
    }
    assert documented - contract.seen - UNREACHABLE == set(), "documented but never produced"
    assert contract.seen <= documented
