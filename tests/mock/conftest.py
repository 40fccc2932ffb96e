"""Fixtures for the mock portal: a real server on an ephemeral loopback port per test."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from mock_portal import PortalConfig, create_app, load_config

ADMIN_TOKEN = "test-admin-token-0123456789"
REDIRECT_URI = "http://localhost/callback"


@dataclass
class Portal:
    client: TestClient
    config: PortalConfig
    registry: CollectorRegistry


PortalFactory = Callable[..., Awaitable[Portal]]


@pytest.fixture
async def make_portal(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[PortalFactory]:
    async def factory(**overrides: Any) -> Portal:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("admin_token", ADMIN_TOKEN)
        overrides.setdefault("citizens", 10_000)
        config = load_config(**overrides)
        registry = CollectorRegistry()
        client = await aiohttp_client(create_app(config, registry=registry))
        return Portal(client, config, registry)

    yield factory


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    return await make_portal()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


async def login(client: TestClient, n: int, *, mfa_code: str = "000000") -> dict[str, Any]:
    """The whole single sign-on flow for citizen ``n``; returns the token response."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    r = await client.get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": "portal-web",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert r.status == 200, await r.text()
    challenge_token = (await r.json())["login_challenge"]
    r = await client.post(
        "/oauth2/login",
        json={
            "login_challenge": challenge_token,
            "login": f"citizen-{n}",
            "password": f"Passw0rd-{n}",
        },
        allow_redirects=False,
    )
    if n % 5 == 0:
        assert r.status == 200, await r.text()
        body = await r.json()
        assert body["mfa_required"] is True
        r = await client.post(
            "/oauth2/otp",
            json={"mfa_token": body["mfa_token"], "code": mfa_code},
            allow_redirects=False,
        )
    assert r.status == 302, await r.text()
    location = urlsplit(r.headers["Location"])
    query = parse_qs(location.query)
    assert query["state"] == [state]
    r = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": "portal-web",
            "code_verifier": verifier,
        },
    )
    assert r.status == 200, await r.text()
    return dict(await r.json())


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
