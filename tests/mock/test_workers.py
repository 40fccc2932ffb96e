"""The mock as its users run it: real processes, `--workers 2` sharing a port, SIGTERM, restart."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import REDIRECT_URI, pkce_pair

pytestmark = pytest.mark.slow

READY = re.compile(r"mock portal ready on (http://\S+) .*admin_token=(\S+)\)")
START_TIMEOUT_S = 60


@contextmanager
def mock_process(*args: str, data_dir: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "--port", "0", "--data-dir", str(data_dir),
         "--shutdown-timeout", "5", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            match = READY.search(line)
            if match:
                break
            if (not line and proc.poll() is not None) or time.monotonic() > deadline:
                raise AssertionError(f"the mock did not start: {line!r}")
        yield match.group(1), match.group(2), proc
    finally:
        if proc.poll() is None:
            # SIGTERM: the supervisor stops its workers (SIGKILL would orphan them).
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


async def _login(session: aiohttp.ClientSession, base: str, n: int) -> dict[str, str]:
    verifier, challenge = pkce_pair()
    r = await session.get(
        f"{base}/oauth2/authorize",
        params={"response_type": "code", "client_id": "portal-web", "redirect_uri": REDIRECT_URI,
                "code_challenge": challenge, "code_challenge_method": "S256"},
    )  # fmt: skip
    token = (await r.json())["login_challenge"]
    r = await session.post(
        f"{base}/oauth2/login",
        json={"login_challenge": token, "login": f"citizen-{n}", "password": f"Passw0rd-{n}"},
        allow_redirects=False,
    )
    code = r.headers["Location"].split("code=")[1].split("&")[0]
    r = await session.post(
        f"{base}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "client_id": "portal-web", "code_verifier": verifier},
    )  # fmt: skip
    assert r.status == 200, await r.text()
    return {"Authorization": f"Bearer {(await r.json())['access_token']}"}


def _fresh_session() -> aiohttp.ClientSession:
    # force_close: every request a new connection, so SO_REUSEPORT spreads them over workers.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=100))


async def _first_citizen_with_charge(
    session: aiohttp.ClientSession, base: str
) -> tuple[dict[str, str], str]:
    for n in range(1, 40):
        if n % 5 == 0:
            continue
        auth = await _login(session, base, n)
        charges = (
            await (await session.get(f"{base}/api/v1/payments/charges", headers=auth)).json()
        )["items"]
        if charges:
            return auth, charges[0]["id"]
    raise AssertionError("no citizen with a charge")


def _counter(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


async def _two_workers_scenario(base: str, admin: str) -> None:
    async with _fresh_session() as session:
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
        before = _counter(
            await (await session.get(f"{base}/metrics")).text(), "portal_http_requests_total"
        )
        for _ in range(30):
            assert (await session.get(f"{base}/healthz")).status == 200
        after = _counter(
            await (await session.get(f"{base}/metrics")).text(), "portal_http_requests_total"
        )
        assert after - before == 31  # 30 health checks and the first scrape itself


def test_two_workers_share_state_metrics_and_invariants(tmp_path: Path) -> None:
    with mock_process("--workers", "2", data_dir=tmp_path) as (base, admin, proc):
        asyncio.run(_two_workers_scenario(base, admin))
        pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        assert len(pids.stdout.split()) >= 2, "two worker processes under the supervisor"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


async def _sigterm_scenario(base: str, admin: str, pid: int) -> tuple[list[int], dict[str, str]]:
    async with _fresh_session() as session:
        auth = await _login(session, base, 21)
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
            if _counter(text, "portal_http_in_flight") >= 11:
                break
            assert time.monotonic() < deadline, "the ten requests never were all in flight"
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGTERM)
        return list(await asyncio.gather(*tasks)), auth


def test_sigterm_finishes_accepted_requests_and_restart_keeps_state(tmp_path: Path) -> None:
    with mock_process(data_dir=tmp_path) as (base, admin, proc):
        started = time.monotonic()
        statuses, auth = asyncio.run(_sigterm_scenario(base, admin, proc.pid))
        assert statuses == [200] * 10
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 5 + 10, "exits within the shutdown timeout"

    with mock_process(data_dir=tmp_path) as (base2, admin2, _):

        async def after_restart() -> None:
            async with _fresh_session() as session:
                # The signing key lives in the data dir: sessions survive a restart.
                assert (await session.get(f"{base2}/api/v1/me", headers=auth)).status == 200
                admin_auth = {"Authorization": f"Bearer {admin2}"}
                r = await session.get(f"{base2}/admin/faults", headers=admin_auth)
                faults = await r.json()
                assert "/api/v1/services" in faults["routes"], "live faults are kept too"

        asyncio.run(after_restart())
