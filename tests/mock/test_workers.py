"""The mock as its users run it: real processes, `--workers 2` sharing a port, SIGTERM, restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ._process import counter, fresh_session, mock_process, sso_login

pytestmark = pytest.mark.slow


async def _first_citizen_with_charge(
    session: aiohttp.ClientSession, base: str
) -> tuple[dict[str, str], str]:
    for n in range(1, 40):
        if n % 5 == 0:
            continue
        auth = await sso_login(session, base, n)
        charges = (
            await (await session.get(f"{base}/api/v1/payments/charges", headers=auth)).json()
        )["items"]
        if charges:
            return auth, charges[0]["id"]
    raise AssertionError("no citizen with a charge")


async def _two_workers_scenario(base: str, admin: str) -> None:
    async with fresh_session() as session:
        auth, charge_id = await _first_citizen_with_charge(session, base)
        body = {"charge_id": charge_id}

        async def pay(key: str) -> tuple[int, Any]:
            r = await session.post(f"{base}/api/v1/payments", json=body,
                                   headers={**auth, "Idempotency-Key": key})  # fmt: skip
            return r.status, await r.json()

        results = await asyncio.gather(*(pay("one-key") for _ in range(50)))
        assert {status for status, _ in results} == {201}
        assert len({body["id"] for _, body in results}) == 1
        other = await pay("another-key")
        assert other[0] == 409

        # Revocation on one worker is honoured by every worker within the poll interval.
        access_token = auth["Authorization"].removeprefix("Bearer ")
        r = await session.post(
            f"{base}/oauth2/revoke", data={"token": access_token, "client_id": "portal-web"}
        )
        assert r.status == 200
        # Each worker polls for revocations every 0.1 s; allow a loaded machine 5 s, then
        # 20 requests in a row, spread over both workers, must all be refused.
        deadline = time.monotonic() + 5
        statuses: list[int] = []
        while len(statuses) < 20 and time.monotonic() < deadline:
            status = (await session.get(f"{base}/api/v1/me", headers=auth)).status
            statuses = [*statuses, status] if status == 401 else []
        assert statuses == [401] * 20

        await asyncio.sleep(1.0)  # settlement
        admin_auth = {"Authorization": f"Bearer {admin}"}
        ledger = await (await session.get(f"{base}/admin/ledger", headers=admin_auth)).json()
        assert ledger["payments"] == 1
        assert ledger["balanced"] is True

        # One scrape covers both workers: every request above is counted exactly once.
        before = counter(
            await (await session.get(f"{base}/metrics")).text(), "portal_http_requests_total"
        )
        for _ in range(30):
            assert (await session.get(f"{base}/healthz")).status == 200
        after = counter(
            await (await session.get(f"{base}/metrics")).text(), "portal_http_requests_total"
        )
        assert after - before == 31  # 30 health checks and the first scrape itself


def test_two_workers_share_state_metrics_and_invariants(tmp_path: Path) -> None:
    with mock_process("--workers", "2", data_dir=tmp_path) as mock:
        proc = mock.proc
        asyncio.run(_two_workers_scenario(mock.base, mock.admin))
        pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        assert len(pids.stdout.split()) >= 2, "two worker processes under the supervisor"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


async def _sigterm_scenario(base: str, admin: str, pid: int) -> tuple[list[int], dict[str, str]]:
    async with fresh_session() as session:
        auth = await sso_login(session, base, 21)
        slow = {"routes": {"/api/v1/services": {"latency": {"kind": "fixed", "ms": 1500}}}}
        r = await session.put(
            f"{base}/admin/faults", json=slow, headers={"Authorization": f"Bearer {admin}"}
        )
        assert r.status == 200
        await asyncio.sleep(0.6)  # every worker applies the fault document

        async def get() -> int:
            r = await session.get(f"{base}/api/v1/services")
            await r.read()
            return r.status

        tasks = [asyncio.create_task(get()) for _ in range(10)]
        # SIGTERM once all ten are accepted and sleeping in the handler (the scrape is one
        # more request in flight).
        deadline = time.monotonic() + 10
        while True:
            text = await (await session.get(f"{base}/metrics")).text()
            if counter(text, "portal_http_in_flight") >= 11:
                break
            assert time.monotonic() < deadline, "the ten requests never were all in flight"
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGTERM)
        return list(await asyncio.gather(*tasks)), auth


def test_sigterm_finishes_accepted_requests_and_restart_keeps_state(tmp_path: Path) -> None:
    with mock_process(data_dir=tmp_path) as mock:
        proc = mock.proc
        started = time.monotonic()
        statuses, auth = asyncio.run(_sigterm_scenario(mock.base, mock.admin, proc.pid))
        assert statuses == [200] * 10
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 5 + 10, "exits within the shutdown timeout"

    with mock_process(data_dir=tmp_path) as mock2:
        base2, admin2 = mock2.base, mock2.admin

        async def after_restart() -> None:
            async with fresh_session() as session:
                # The signing key lives in the data dir: sessions survive a restart.
                assert (await session.get(f"{base2}/api/v1/me", headers=auth)).status == 200
                admin_auth = {"Authorization": f"Bearer {admin2}"}
                r = await session.get(f"{base2}/admin/faults", headers=admin_auth)
                faults = await r.json()
                assert "/api/v1/services" in faults["routes"], "live faults are kept too"

        asyncio.run(after_restart())
