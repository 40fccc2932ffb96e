"""Single sign-on: the flow's rules and the attacks it must refuse."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from mock_portal.state import PORTAL
from mock_portal.tokens import Signer, b64url, b64url_decode

from .conftest import REDIRECT_URI, Portal, PortalFactory, bearer, login, pkce_pair

SECRET = b"s" * 32


async def _challenge(portal: Portal, challenge: str) -> str:
    r = await portal.client.get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": "portal-web",
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert r.status == 200
    return str((await r.json())["login_challenge"])


async def _login(portal: Portal, token: str, n: int, password: str) -> Any:
    return await portal.client.post(
        "/oauth2/login",
        json={"login_challenge": token, "login": f"citizen-{n}", "password": password},
        allow_redirects=False,
    )


async def test_discovery_names_the_endpoints(portal: Portal) -> None:
    doc = await (await portal.client.get("/.well-known/openid-configuration")).json()
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint"].endswith("/oauth2/token")
    assert doc["userinfo_endpoint"].endswith("/api/v1/me")


async def test_mfa_citizen_needs_the_second_factor(portal: Portal) -> None:
    token = await _challenge(portal, pkce_pair()[1])
    r = await _login(portal, token, 10, "Passw0rd-10")
    assert r.status == 200
    mfa = await r.json()
    wrong = await portal.client.post(
        "/oauth2/otp", json={"mfa_token": mfa["mfa_token"], "code": "123456"}, allow_redirects=False
    )
    assert wrong.status == 401
    tokens = await login(portal.client, 10)
    assert (await portal.client.get("/api/v1/me", headers=bearer(tokens))).status == 200


async def test_brute_force_on_one_login_is_limited(make_portal: PortalFactory) -> None:
    portal = await make_portal(login_max_failures=3, login_window_s=60)
    token = await _challenge(portal, pkce_pair()[1])
    statuses = [(await _login(portal, token, 42, "guess")).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    blocked = await _login(portal, token, 42, "Passw0rd-42")  # even the right password
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 61
    assert (await blocked.json())["status"] == 429
    # Other logins are not affected.
    assert (await _login(portal, token, 43, "Passw0rd-43")).status == 302


async def test_pkce_verifier_must_match(portal: Portal) -> None:
    verifier, challenge = pkce_pair()
    token = await _challenge(portal, challenge)
    r = await _login(portal, token, 1, "Passw0rd-1")
    code = r.headers["Location"].split("code=")[1].split("&")[0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": "portal-web",
        "code_verifier": pkce_pair()[0],
    }
    bad = await portal.client.post("/oauth2/token", data=form)
    assert bad.status == 400
    assert (await bad.json())["error"] == "invalid_grant"
    good = await portal.client.post("/oauth2/token", data={**form, "code_verifier": verifier})
    assert good.status == 200
    reused = await portal.client.post("/oauth2/token", data={**form, "code_verifier": verifier})
    assert reused.status == 400
    assert "already used" in (await reused.json())["error_description"]


async def test_refresh_rotates_and_the_old_refresh_token_dies(portal: Portal) -> None:
    tokens = await login(portal.client, 3)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": "portal-web"}  # fmt: skip
    first = await portal.client.post("/oauth2/token", data=form)
    assert first.status == 200
    fresh = await first.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert (await portal.client.get("/api/v1/me", headers=bearer(fresh))).status == 200
    replay = await portal.client.post("/oauth2/token", data=form)
    assert replay.status == 400


async def test_a_refresh_token_is_spent_once_across_workers(portal: Portal) -> None:
    """Another worker has not polled the revocation yet: the store still refuses the replay."""
    tokens = await login(portal.client, 8)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": "portal-web"}  # fmt: skip
    assert (await portal.client.post("/oauth2/token", data=form)).status == 200
    state = portal.client.app[PORTAL]
    # What a second worker knows when it checks its memory just before the first worker's
    # write lands: nothing of this token (its next poll finds no newer row either).
    state.poll_revocations()
    state.revoked.clear()
    replay = await portal.client.post("/oauth2/token", data=form)
    assert replay.status == 400
    assert (await replay.json())["error"] == "invalid_grant"


async def test_revoking_the_refresh_token_ends_the_session(portal: Portal) -> None:
    tokens = await login(portal.client, 4)
    auth = bearer(tokens)
    assert (await portal.client.get("/api/v1/me", headers=auth)).status == 200
    r = await portal.client.post(
        "/oauth2/revoke", data={"token": tokens["refresh_token"], "client_id": "portal-web"}
    )
    assert r.status == 200
    denied = await portal.client.get("/api/v1/me", headers=auth)
    assert denied.status == 401
    assert "revoked" in (await denied.json())["detail"]
    # RFC 7009: an unknown token is not an error.
    unknown = await portal.client.post(
        "/oauth2/revoke", data={"token": "garbage", "client_id": "portal-web"}
    )
    assert unknown.status == 200


async def test_revoked_access_token_is_refused(portal: Portal) -> None:
    tokens = await login(portal.client, 6)
    await portal.client.post(
        "/oauth2/revoke", data={"token": tokens["access_token"], "client_id": "portal-web"}
    )
    assert (await portal.client.get("/api/v1/me", headers=bearer(tokens))).status == 401


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: str) -> str:
    return f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}.{signature}"


async def test_tampered_expired_and_alg_none_tokens_are_401(make_portal: PortalFactory) -> None:
    portal = await make_portal(secret=SECRET)
    tokens = await login(portal.client, 8)
    good = tokens["access_token"]
    header_b64, payload_b64, sig = good.split(".")
    claims = orjson.loads(b64url_decode(payload_b64))
    other_citizen = {**claims, "cid": 9, "sub": "citizen-9"}
    now = int(time.time())
    signer = Signer(SECRET)
    forged = [
        f"{header_b64}.{b64url(orjson.dumps(other_citizen))}.{sig}",  # tampered payload
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tampered signature
        _forge({"alg": "none", "typ": "JWT"}, other_citizen, ""),  # alg: none
        _forge({"alg": "HS512", "typ": "JWT", "kid": "portal-1"}, other_citizen, sig),
        signer.sign_jwt({**claims, "exp": now - 1}),  # expired, correctly signed
        signer.sign_jwt({**claims, "typ": "id"}),  # an id token is not an access token
        Signer(b"x" * 32).sign_jwt(claims),  # signed with another key
        "not-a-jwt",
    ]
    for token in forged:
        r = await portal.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 401, token
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await r.json())["status"] == 401
    assert (await portal.client.get("/api/v1/me")).status == 401


async def test_another_citizens_application_is_404(portal: Portal) -> None:
    owner = bearer(await login(portal.client, 11))
    service = await (await portal.client.get("/api/v1/services/10050")).json()
    fields = {f["name"]: f["example"] for f in service["fields"] if f["required"]}
    r = await portal.client.post(
        "/api/v1/applications", json={"service_code": "10050", "fields": fields}, headers=owner
    )
    assert r.status == 201
    location = r.headers["Location"]
    intruder = bearer(await login(portal.client, 12))
    assert (await portal.client.get(location, headers=intruder)).status == 404
    rating = {k: 3 for k in ("service_time", "waiting_time", "courtesy", "comfort", "information")}
    assert (
        await portal.client.post(f"{location}/rating", json=rating, headers=intruder)
    ).status == 404
    listing = await (await portal.client.get("/api/v1/applications", headers=intruder)).json()
    assert listing["total"] == 0
    assert (await portal.client.get(location, headers=owner)).status == 200


async def test_concurrent_logins_of_many_citizens(portal: Portal) -> None:
    results = await asyncio.gather(*(login(portal.client, n) for n in range(100, 120)))
    assert len({r["access_token"] for r in results}) == 20


async def test_a_citizen_with_a_totp_secret_signs_in_with_its_time_based_code(
    make_portal: PortalFactory, tmp_path: Any
) -> None:
    """A test account of a real deployment: its second factor is RFC 6238 TOTP, not the fixed
    code, and a citizen without a fixed second factor (n % 5 != 0) gets one."""
    from mock_portal import totp
    from mock_portal.config import ConfigError, load_config

    secret = "JBSWY3DPEHPK3PXP"
    portal = await make_portal(totp_secrets={"citizen-7": secret})
    token = await _challenge(portal, pkce_pair()[1])
    r = await _login(portal, token, 7, "Passw0rd-7")
    assert r.status == 200 and (await r.json())["mfa_required"]
    mfa_token = (await r.json())["mfa_token"]
    fixed = await portal.client.post(
        "/oauth2/otp", json={"mfa_token": mfa_token, "code": "000000"}, allow_redirects=False
    )
    assert fixed.status == 401  # the fixed code is not this citizen's
    good = await portal.client.post(
        "/oauth2/otp",
        json={"mfa_token": mfa_token, "code": totp.code_at(secret, time.time())},
        allow_redirects=False,
    )
    assert good.status == 302
    bad = tmp_path / "bad.toml"
    bad.write_text('[totp_secrets]\n"citizen-7" = "not base32!"\n')
    try:
        load_config(str(bad))
    except ConfigError as exc:
        assert "totp_secrets.citizen-7: expected a base32 secret" in str(exc)
    else:
        raise AssertionError("a malformed secret was accepted")
