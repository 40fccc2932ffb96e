"""Faults of the mock's own processes: a worker killed, the supervisor killed, a second start
on a port or a data directory that a live mock serves. Real processes and real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from ._process import command, counter, fresh_session, gone, mock_process, wait_until, worker_pids

pytestmark = pytest.mark.slow

RESTARTS = "portal_worker_restarts_total"


async def _statuses(base: str, n: int) -> list[int]:
    async with fresh_session() as session:  # a new connection per request
        out = []
        for _ in range(n):
            r = await session.get(f"{base}/api/v1/services/10001")
            await r.read()
            out.append(r.status)
        return out


async def _restarts(base: str) -> float:
    async with fresh_session() as session:
        return counter(await (await session.get(f"{base}/metrics")).text(), RESTARTS)


def test_a_killed_worker_is_restarted_while_the_port_keeps_answering(tmp_path: Path) -> None:
    with mock_process("--workers", "2", "--max-restarts", "1", data_dir=tmp_path) as mock:
        assert wait_until(lambda: len(worker_pids(mock.proc.pid)) == 2, 10)
        first, second = worker_pids(mock.proc.pid)
        assert asyncio.run(_restarts(mock.base)) == 0

        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: gone(first), 10)
        # The other worker answers every new connection while the dead one is replaced.
        assert asyncio.run(_statuses(mock.base, 40)) == [200] * 40
        assert wait_until(lambda: len(worker_pids(mock.proc.pid)) == 2, 30), "restarted"
        assert first not in worker_pids(mock.proc.pid)
        assert mock.proc.poll() is None
        assert wait_until(lambda: asyncio.run(_restarts(mock.base)) == 1, 30, interval_s=0.5)
        assert "restarted as worker" in mock.output()

        # Beyond --max-restarts within the window, the supervisor gives up, loudly.
        os.kill(second, signal.SIGKILL)
        assert mock.finish(timeout_s=30) == 1
        assert "giving up" in mock.output()
        assert all(gone(pid) for pid in worker_pids(mock.proc.pid))


def test_workers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    with mock_process("--workers", "2", data_dir=tmp_path) as mock:
        assert wait_until(lambda: len(worker_pids(mock.proc.pid)) == 2, 10)
        workers = worker_pids(mock.proc.pid)
        mock.proc.kill()
        mock.proc.wait(timeout=10)
        # SIGTERM from the kernel: they finish what they accepted (none here) and exit.
        assert wait_until(lambda: all(gone(pid) for pid in workers), 15), "orphaned workers"
    # With them gone, the data directory is free for the next start.
    with mock_process(data_dir=tmp_path) as again:
        assert asyncio.run(_statuses(again.base, 1)) == [200]


def _start_refused(*args: str, data_dir: Path) -> tuple[int, list[str]]:
    argv = command(*args, data_dir=data_dir)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the second mock and any worker of it
        proc.communicate()
        raise AssertionError(f"a second mock started and served: {' '.join(argv)}") from None
    return proc.returncode, stderr.splitlines()


def test_a_start_refuses_a_port_or_a_data_dir_a_live_mock_serves(tmp_path: Path) -> None:
    with mock_process("--workers", "2", data_dir=tmp_path / "a") as mock:
        port = mock.base.rsplit(":", 1)[1]
        asyncio.run(_statuses(mock.base, 5))
        before = asyncio.run(_restarts(mock.base))

        code, lines = _start_refused("--port", port, data_dir=tmp_path / "b")
        assert code == 3
        assert len(lines) == 1 and f":{port} is already in use" in lines[0], lines

        code, lines = _start_refused("--workers", "2", data_dir=tmp_path / "a")
        assert code == 3
        assert len(lines) == 1 and "is already served by a live mock" in lines[0], lines

        # The live mock is untouched: its shared metrics were not wiped, it still serves.
        async def requests_counted() -> float:
            async with fresh_session() as session:
                text = await (await session.get(f"{mock.base}/metrics")).text()
                return counter(text, "portal_http_requests_total")

        assert asyncio.run(requests_counted()) >= 5
        assert asyncio.run(_restarts(mock.base)) == before
        assert asyncio.run(_statuses(mock.base, 5)) == [200] * 5
