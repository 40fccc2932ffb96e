"""Single sign-on as a browser does it: authorization code with PKCE, second factor, refresh,
logout.

Login (3-4 requests before the profile, docs/api.md)::

    GET  /oauth2/authorize?...&code_challenge=S256(verifier)&state=...  -> login_challenge
    POST /oauth2/login {login_challenge, login, password}               -> 302 | mfa_token
    POST /oauth2/otp   {mfa_token, code}   (accounts with a second factor) -> 302
    POST /oauth2/token (form) authorization_code + code_verifier        -> tokens
    GET  /api/v1/me

The 302 is not followed: its ``Location`` carries the code and the state, which must be the
state sent. The second factor's code is the account's TOTP code when it has a secret, else
the fixed code of ``--mfa-code``. Refresh rotates the refresh token; logout revokes it
(RFC 7009), which ends the session's access tokens too.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from scenarios.funnel import Journey
from scenarios.journeys.context import Tokens

if TYPE_CHECKING:
    from scenarios.journeys.context import JourneyContext

__all__ = [
    "CLIENT_ID",
    "REDIRECT_URI",
    "ensure_session",
    "login",
    "logout",
    "pkce_pair",
    "refresh",
]

CLIENT_ID = "portal-web"
REDIRECT_URI = "http://localhost/callback"
SCOPE = "openid profile applications payments"
LOGIN_STEPS = ("challenge", "second factor", "code", "tokens", "profile")


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for PKCE S256 (RFC 7636 §4.1-4.2)."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier, challenge


def _tokens_ok(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "token response is not an object"
    for key in ("access_token", "refresh_token", "expires_in"):
        if key not in body:
            return f"token response lacks {key}"
    if str(body.get("token_type", "")).lower() != "bearer":
        return "token_type is not Bearer"
    return None


def login(ctx: JourneyContext) -> bool:
    """Sign the context's citizen in; leaves tokens on ``ctx``. True when it worked."""
    citizen = ctx.citizen
    if citizen is None:
        raise ValueError("login needs a citizen on the journey context")
    ctx.set_tokens(None)
    with Journey(ctx, "login", LOGIN_STEPS) as j:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        _, body = j.call(
            "GET",
            "/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            name="/oauth2/authorize",
            check=lambda b: (
                None if isinstance(b, dict) and b.get("login_challenge") else "no challenge"
            ),
        )
        j.step("challenge")
        ctx.think()
        resp, body = j.call(
            "POST",
            "/oauth2/login",
            json={
                "login_challenge": body["login_challenge"],
                "login": citizen.login,
                "password": citizen.password,
            },
            expect=(200, 302),
        )
        if resp.status_code == 200:
            if not (isinstance(body, dict) and body.get("mfa_required") and body.get("mfa_token")):
                j.fail("200 without mfa_token")
            if citizen.has_mfa is False:
                j.fail("second factor asked of a citizen without one")
            j.step("second factor")
            ctx.think()
            resp, _ = j.call(
                "POST",
                "/oauth2/otp",
                json={"mfa_token": body["mfa_token"], "code": ctx.second_factor_code()},
                expect=302,
            )
        elif citizen.has_mfa:
            j.fail("no second factor asked of a citizen who has one")
        location = resp.header("Location") or ""
        query = parse_qs(urlsplit(location).query)
        if not location.startswith(REDIRECT_URI) or "code" not in query:
            j.fail("redirect without a code")
        if query.get("state") != [state]:
            j.fail("state in the redirect differs from the state sent")
        j.step("code")
        _, body = j.call(
            "POST",
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            },
            name="/oauth2/token [code]",
            check=_tokens_ok,
        )
        ctx.set_tokens(Tokens.from_response(body))
        j.step("tokens")
        j.call(
            "GET",
            "/api/v1/me",
            check=lambda b: (
                None
                if isinstance(b, dict) and b.get("login") == citizen.login
                else "profile of another citizen"
            ),
        )
        j.step("profile")
    if not j.ok:
        ctx.set_tokens(None)
    return j.ok


def refresh(ctx: JourneyContext) -> bool:
    """Exchange the refresh token for new tokens (rotation: the old one is spent)."""
    if ctx.tokens is None:
        return login(ctx)
    with Journey(ctx, "refresh", ("tokens",)) as j:
        _, body = j.call(
            "POST",
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": ctx.tokens.refresh_token,
                "client_id": CLIENT_ID,
            },
            name="/oauth2/token [refresh]",
            check=_tokens_ok,
        )
        ctx.set_tokens(Tokens.from_response(body))
        j.step("tokens")
    if not j.ok:
        ctx.set_tokens(None)
    return j.ok


def logout(ctx: JourneyContext) -> bool:
    """Revoke the refresh token (and with it the session); forget the tokens."""
    if ctx.tokens is None:
        return True
    with Journey(ctx, "logout", ("revoked",)) as j:
        j.call(
            "POST",
            "/oauth2/revoke",
            data={"token": ctx.tokens.refresh_token, "client_id": CLIENT_ID},
        )
        j.step("revoked")
    ctx.set_tokens(None)
    return j.ok


def ensure_session(ctx: JourneyContext) -> bool:
    """Sign in when signed out, refresh when the access token is close to expiry."""
    if ctx.tokens is None:
        return login(ctx)
    if ctx.tokens.needs_refresh():
        return refresh(ctx)
    return True
