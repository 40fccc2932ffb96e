"""Single sign-on: OAuth 2.0 authorization code with PKCE (RFC 6749, RFC 7636), a second
factor for the citizens who have one, refresh with rotation, revocation (RFC 7009), the OpenID
discovery document, and the citizen's profile (also the userinfo endpoint).

A login is 3-4 requests, as a browser makes them::

    GET  /oauth2/authorize?response_type=code&client_id=portal-web&redirect_uri=...
         &code_challenge=...&code_challenge_method=S256&state=...      -> {login_challenge}
    POST /oauth2/login {login_challenge, login, password}           -> 302 ?code= | {mfa_token}
    POST /oauth2/otp   {mfa_token, code}                            -> 302 ?code=
    POST /oauth2/token grant_type=authorization_code&code=...&code_verifier=...

Challenges, codes and refresh tokens are sealed blobs any worker can check; an authorization
code is single-use across workers (its id is recorded in the shared store), failed logins are
counted in the store so the brute-force limit holds whichever worker answers.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .. import citizens, ids, totp
from ..problems import Problem
from ..state import PORTAL, Portal
from ..tokens import s256
from ..wire import json_response, read_form, read_json, string_field

VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
SCOPES = ("openid", "profile", "applications", "payments")
MAX_STATE_LEN = 512


def _oauth_error(status: int, error: str, detail: str) -> Problem:
    """Problem details that an OAuth client also understands (``error`` of RFC 6749 §5.2)."""
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="portal"'
    return Problem(
        status,
        f"oauth-{error.replace('_', '-')}",
        detail,
        headers=headers,
        extra={"error": error, "error_description": detail},
    )


async def discovery(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    base = f"{request.scheme}://{request.host}"
    return json_response(
        {
            "issuer": portal.config.issuer,
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token",
            "userinfo_endpoint": f"{base}/api/v1/me",
            "revocation_endpoint": f"{base}/oauth2/revoke",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "given_name", "family_name", "birthdate", "email"],
        }
    )


async def authorize(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    q = request.query
    client_id = q.get("client_id", "")
    redirects = portal.config.clients.get(client_id)
    if redirects is None:
        raise _oauth_error(400, "invalid_client", f"unknown client_id {client_id!r}")
    redirect_uri = q.get("redirect_uri", "")
    if redirect_uri not in redirects:
        raise _oauth_error(400, "invalid_request", "redirect_uri is not registered for this client")
    if q.get("response_type") != "code":
        raise _oauth_error(400, "unsupported_response_type", "only response_type=code is supported")
    challenge = q.get("code_challenge", "")
    if q.get("code_challenge_method") != "S256" or not CHALLENGE_RE.fullmatch(challenge):
        raise _oauth_error(
            400,
            "invalid_request",
            "PKCE is required: code_challenge (43 base64url characters) with method S256",
        )
    scope = q.get("scope", "openid")
    unknown = [s for s in scope.split() if s not in SCOPES]
    if unknown or not scope.split():
        raise _oauth_error(400, "invalid_scope", f"unknown scope {unknown[0] if unknown else ''!r}")
    state = q.get("state", "")
    nonce = q.get("nonce", "")
    if len(state) > MAX_STATE_LEN or len(nonce) > MAX_STATE_LEN:
        raise _oauth_error(
            400, "invalid_request", f"state and nonce: at most {MAX_STATE_LEN} chars"
        )
    ttl = portal.config.challenge_ttl_s
    login_challenge = portal.signer.seal(
        "challenge",
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "cc": challenge,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "exp": int(time.time()) + ttl,
        },
    )
    return json_response(
        {
            "login_challenge": login_challenge,
            "expires_in": ttl,
            "client_id": client_id,
            "scope": scope,
            "login_endpoint": "/oauth2/login",
        },
        headers={"Cache-Control": "no-store"},
    )


def _unsealed(portal: Portal, purpose: str, token: str, what: str) -> dict[str, Any]:
    payload = portal.signer.unseal(purpose, token)
    if payload is None:
        raise Problem(400, f"invalid-{what}", f"the {what.replace('-', ' ')} is invalid")
    exp = payload.get("exp")
    if not isinstance(exp, int) or exp <= time.time():
        raise Problem(400, f"invalid-{what}", f"the {what.replace('-', ' ')} has expired")
    return payload


FAILURES_CACHE = "login_failures"  # login -> the times of its failed attempts


def _failures_within(portal: Portal, login: str) -> tuple[int, float]:
    """Failed attempts for ``login`` in the window, and when the oldest of them leaves it."""
    window = portal.config.login_window_s
    cache = portal.store.cached(FAILURES_CACHE)
    times = cache.get(login)
    if times is None:
        rows = portal.store.reader.execute(
            "SELECT at FROM login_failures WHERE login = ?", (login,)
        ).fetchall()
        times = cache[login] = tuple(float(at) for (at,) in rows)
    since = time.time() - window
    within = [at for at in times if at > since]
    return len(within), (min(within) + window if within else 0.0)


def _throttle(portal: Portal, login: str) -> None:
    count, until = _failures_within(portal, login)
    if count >= portal.config.login_max_failures:
        portal.metrics.logins.labels("throttled").inc()
        retry = max(1, int(until - time.time()) + 1)
        raise Problem(
            429,
            "too-many-attempts",
            f"too many failed attempts for this login; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


def _record_failure(conn: sqlite3.Connection, login: str, at: float) -> None:
    conn.execute("INSERT INTO login_failures (login, at) VALUES (?, ?)", (login, at))


def _clear_failures(conn: sqlite3.Connection, login: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE login = ?", (login,))


def _redirect_with_code(portal: Portal, grant: dict[str, Any], n: int) -> web.Response:
    code = portal.signer.seal(
        "code",
        {
            "cid": n,
            "client_id": grant["client_id"],
            "redirect_uri": grant["redirect_uri"],
            "cc": grant["cc"],
            "scope": grant["scope"],
            "nonce": grant["nonce"],
            "jti": ids.token_urlsafe(12),
            "exp": int(time.time()) + portal.config.code_ttl_s,
        },
    )
    params = {"code": code}
    if grant["state"]:
        params["state"] = grant["state"]
    location = f"{grant['redirect_uri']}?{urlencode(params)}"
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    body = await read_json(request)
    errors: list[dict[str, str]] = []
    challenge = string_field(body, "login_challenge", errors, 4096)
    login_name = string_field(body, "login", errors, 128)
    password = string_field(body, "password", errors, 256)
    if errors:
        raise Problem(400, "invalid-request", "login_challenge, login and password are required",
                      errors=errors)  # fmt: skip
    grant = _unsealed(portal, "challenge", challenge, "login-challenge")
    _throttle(portal, login_name)
    n = citizens.parse_login(login_name, portal.config.citizens)
    if n is None or not citizens.check_password(n, password):
        await portal.store.write(_record_failure, login_name, time.time())
        portal.store.forget(FAILURES_CACHE, login_name)
        portal.metrics.logins.labels("bad_credentials").inc()
        raise Problem(401, "bad-credentials", "the login or the password is wrong")
    if citizens.has_mfa(n) or login_name in portal.config.totp_secrets:
        portal.metrics.logins.labels("mfa_required").inc()
        ttl = portal.config.challenge_ttl_s
        mfa_token = portal.signer.seal(
            "mfa", {**grant, "cid": n, "login": login_name, "exp": int(time.time()) + ttl}
        )
        return json_response(
            {"mfa_required": True, "mfa_token": mfa_token, "expires_in": ttl, "method": "sms"},
            headers={"Cache-Control": "no-store"},
        )
    if _failures_within(portal, login_name)[0]:
        await portal.store.write(_clear_failures, login_name)
        portal.store.forget(FAILURES_CACHE, login_name)
    portal.metrics.logins.labels("success").inc()
    return _redirect_with_code(portal, grant, n)


async def otp(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    body = await read_json(request)
    errors: list[dict[str, str]] = []
    mfa_token = string_field(body, "mfa_token", errors, 4096)
    code = string_field(body, "code", errors, 16)
    if errors:
        raise Problem(400, "invalid-request", "mfa_token and code are required", errors=errors)
    grant = _unsealed(portal, "mfa", mfa_token, "mfa-token")
    login_name = str(grant.get("login", ""))
    _throttle(portal, login_name)
    if not _second_factor_holds(portal, login_name, code):
        await portal.store.write(_record_failure, login_name, time.time())
        portal.store.forget(FAILURES_CACHE, login_name)
        portal.metrics.logins.labels("bad_otp").inc()
        raise Problem(401, "bad-otp", "the one-time code is wrong")
    if _failures_within(portal, login_name)[0]:
        await portal.store.write(_clear_failures, login_name)
        portal.store.forget(FAILURES_CACHE, login_name)
    portal.metrics.logins.labels("success").inc()
    return _redirect_with_code(portal, grant, int(grant["cid"]))


def _second_factor_holds(portal: Portal, login_name: str, code: str) -> bool:
    """The citizen's TOTP code when the config gives it a secret, else the fixed code."""
    secret = portal.config.totp_secrets.get(login_name)
    if secret is not None:
        return totp.verify(secret, code, time.time())
    return secrets.compare_digest(code.encode(), portal.config.mfa_code.encode())


def _mark_code_used(conn: sqlite3.Connection, jti: str, expires_at: float) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO used_codes (jti, expires_at) VALUES (?, ?)", (jti, expires_at)
    )
    return cur.rowcount == 1


def _revoke_rows(conn: sqlite3.Connection, items: list[tuple[str, float]]) -> None:
    conn.executemany("INSERT OR IGNORE INTO revocations (jti, expires_at) VALUES (?, ?)", items)


def _rotate_refresh(
    conn: sqlite3.Connection, jti: str, sid: str, expires_at: float, family_until: float
) -> str:
    """Spend a refresh token: ``rotated`` once, ``revoked`` when its session was revoked,
    ``replayed`` when it was spent before, which revokes its whole session (the token family).

    One transaction for every worker, as for authorization codes: of two concurrent exchanges
    of one token, only one gets new tokens.
    """
    if conn.execute("SELECT 1 FROM revocations WHERE jti = ?", (sid,)).fetchone():
        return "revoked"
    cur = conn.execute(
        "INSERT OR IGNORE INTO revocations (jti, expires_at) VALUES (?, ?)", (jti, expires_at)
    )
    if cur.rowcount == 1:
        return "rotated"
    conn.execute(
        "INSERT OR IGNORE INTO revocations (jti, expires_at) VALUES (?, ?)", (sid, family_until)
    )
    return "replayed"


def _issue_tokens(
    portal: Portal, n: int, client_id: str, scope: str, sid: str, nonce: str = ""
) -> web.Response:
    cfg = portal.config
    now = int(time.time())
    access = portal.signer.sign_jwt(
        {
            "iss": cfg.issuer,
            "sub": citizens.subject(n),
            "aud": client_id,
            "cid": n,
            "scope": scope,
            "sid": sid,
            "jti": ids.token_urlsafe(12),
            "typ": "access",
            "iat": now,
            "exp": now + cfg.access_token_ttl_s,
        }
    )
    refresh = portal.signer.seal(
        "refresh",
        {
            "cid": n,
            "client_id": client_id,
            "scope": scope,
            "sid": sid,
            "jti": ids.token_urlsafe(12),
            "exp": now + cfg.refresh_token_ttl_s,
        },
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": cfg.access_token_ttl_s,
        "refresh_token": refresh,
        "scope": scope,
    }
    if "openid" in scope.split():
        claims: dict[str, Any] = {
            "iss": cfg.issuer,
            "sub": citizens.subject(n),
            "aud": client_id,
            "iat": now,
            "exp": now + cfg.access_token_ttl_s,
            "sid": sid,
            "typ": "id",
        }
        if nonce:
            claims["nonce"] = nonce
        body["id_token"] = portal.signer.sign_jwt(claims)
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def token(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    form = await read_form(request)
    grant_type = form.get("grant_type")
    client_id = form.get("client_id", "")
    if client_id not in portal.config.clients:
        raise _oauth_error(401, "invalid_client", f"unknown client_id {client_id!r}")
    if grant_type == "authorization_code":
        return await _code_grant(portal, form, client_id)
    if grant_type == "refresh_token":
        return await _refresh_grant(portal, form, client_id)
    raise _oauth_error(400, "unsupported_grant_type", f"unsupported grant_type {grant_type!r}")


async def _code_grant(portal: Portal, form: dict[str, str], client_id: str) -> web.Response:
    code = portal.signer.unseal("code", form.get("code", ""))
    if code is None or not isinstance(code.get("exp"), int) or code["exp"] <= time.time():
        raise _oauth_error(400, "invalid_grant", "the authorization code is invalid or expired")
    if code["client_id"] != client_id or code["redirect_uri"] != form.get("redirect_uri"):
        raise _oauth_error(
            400, "invalid_grant", "client_id or redirect_uri does not match the code"
        )
    verifier = form.get("code_verifier", "")
    if not VERIFIER_RE.fullmatch(verifier):
        raise _oauth_error(400, "invalid_request", "code_verifier: 43-128 unreserved characters")
    if not secrets.compare_digest(s256(verifier), str(code["cc"])):
        raise _oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge")
    if not await portal.store.write(_mark_code_used, code["jti"], float(code["exp"])):
        raise _oauth_error(400, "invalid_grant", "the authorization code was already used")
    sid = ids.token_urlsafe(12)
    return _issue_tokens(portal, int(code["cid"]), client_id, str(code["scope"]), sid,
                         str(code.get("nonce", "")))  # fmt: skip


async def _refresh_grant(portal: Portal, form: dict[str, str], client_id: str) -> web.Response:
    grant = portal.signer.unseal("refresh", form.get("refresh_token", ""))
    if grant is None or not isinstance(grant.get("exp"), int) or grant["exp"] <= time.time():
        raise _oauth_error(400, "invalid_grant", "the refresh token is invalid or expired")
    if grant["client_id"] != client_id:
        raise _oauth_error(400, "invalid_grant", "the refresh token was issued to another client")
    portal.poll_revocations()
    jti, sid, exp = str(grant["jti"]), str(grant["sid"]), float(grant["exp"])
    if sid in portal.revoked:
        raise _oauth_error(400, "invalid_grant", "the refresh token's session has been revoked")
    # Rotation: the presented refresh token dies with this exchange. A token spent before is a
    # replay (a stolen copy, or the legitimate client after the thief): OAuth 2.0 security
    # BCP §4.14 revokes the whole family, so every token of the session stops working.
    cfg = portal.config
    family_until = time.time() + max(cfg.refresh_token_ttl_s, cfg.access_token_ttl_s)
    outcome = await portal.store.write(_rotate_refresh, jti, sid, exp, family_until)
    if outcome == "replayed":
        portal.revoked[sid] = family_until
        raise _oauth_error(
            400,
            "invalid_grant",
            "the refresh token was already used; as a replay it revoked its whole session",
        )
    if outcome == "revoked":
        raise _oauth_error(400, "invalid_grant", "the refresh token's session has been revoked")
    portal.revoked[jti] = exp
    return _issue_tokens(portal, int(grant["cid"]), client_id, str(grant["scope"]), sid)


async def revoke(request: web.Request) -> web.Response:
    """RFC 7009: always 200 for a well-formed request, whether or not the token was valid."""
    portal = request.app[PORTAL]
    form = await read_form(request)
    token_value = form.get("token")
    if not token_value:
        raise _oauth_error(400, "invalid_request", "the token parameter is required")
    client_id = form.get("client_id", "")
    if client_id not in portal.config.clients:
        raise _oauth_error(401, "invalid_client", f"unknown client_id {client_id!r}")
    items: list[tuple[str, float]] = []
    claims = portal.signer.verify_jwt(token_value)
    if claims is not None and claims.get("typ") == "access" and claims.get("aud") == client_id:
        items.append((str(claims["jti"]), float(claims["exp"])))
    else:
        grant = portal.signer.unseal("refresh", token_value)
        if grant is not None and grant.get("client_id") == client_id:
            # Revoking a refresh token ends the whole session: its access tokens too.
            items += [
                (str(grant["jti"]), float(grant["exp"])),
                (str(grant["sid"]), float(grant["exp"])),
            ]
    if items:
        await portal.store.write(_revoke_rows, items)
        for jti, exp in items:
            portal.revoked[jti] = exp
    return web.Response(status=200, headers={"Cache-Control": "no-store"})


async def me(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    n = portal.authenticate(request)
    return web.Response(body=citizens.profile_json(n), content_type="application/json")


def setup(app: web.Application) -> None:
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/oauth2/authorize", authorize)
    app.router.add_post("/oauth2/login", login)
    app.router.add_post("/oauth2/otp", otp)
    app.router.add_post("/oauth2/token", token)
    app.router.add_post("/oauth2/revoke", revoke)
    app.router.add_get("/api/v1/me", me)
