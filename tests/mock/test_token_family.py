"""A replayed refresh token revokes its whole family (OAuth 2.0 security BCP §4.14), on a
mock of two workers, whichever worker sees the replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from ._process import fresh_session, mock_process, sso_tokens

pytestmark = pytest.mark.slow


async def _refresh(session: aiohttp.ClientSession, base: str, token: str) -> tuple[int, dict]:
    r = await session.post(
        f"{base}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "portal-web"},
    )
    return r.status, await r.json()


async def _me(session: aiohttp.ClientSession, base: str, access: str) -> int:
    r = await session.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    await r.read()
    return r.status


async def _scenario(base: str) -> None:
    async with fresh_session() as session:
        first = await sso_tokens(session, base, 7)
        status, second = await _refresh(session, base, first["refresh_token"])
        assert status == 200
        assert await _me(session, base, second["access_token"]) == 200
        # Another session of the same citizen is not of this family.
        other = await sso_tokens(session, base, 7)

        status, body = await _refresh(session, base, first["refresh_token"])  # the replay
        assert status == 400
        assert body["error"] == "invalid_grant"

        status, body = await _refresh(session, base, second["refresh_token"])
        assert status == 400, "the newer refresh token of the family still works"
        # Each worker polls revocations every 0.1 s: within a second, none accepts the family.
        await asyncio.sleep(1.0)
        for access in (first["access_token"], second["access_token"]):
            assert [await _me(session, base, access) for _ in range(6)] == [401] * 6
        assert await _me(session, base, other["access_token"]) == 200
        status, _ = await _refresh(session, base, other["refresh_token"])
        assert status == 200


def test_a_replayed_refresh_token_revokes_the_whole_family(tmp_path: Path) -> None:
    with mock_process("--workers", "2", data_dir=tmp_path) as mock:
        asyncio.run(_scenario(mock.base))
