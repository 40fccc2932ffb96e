"""The mock as its users start it: ``python -m mock_portal`` as a child process."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .conftest import REDIRECT_URI, pkce_pair

READY = re.compile(r"mock portal ready on (http://\S+) .*admin_token=(\S+)\)")
START_TIMEOUT_S = 60


@dataclass
class Mock:
    base: str
    admin: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)  # its stdout and stderr, read as they come
    reader: threading.Thread | None = None

    def output(self) -> str:
        return "".join(self.lines)

    def wait_output(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def finish(self, timeout_s: float = 30) -> int:
        """Wait for the exit (its output read to the end); returns the exit status."""
        code = self.proc.wait(timeout=timeout_s)
        if self.reader is not None:
            self.reader.join(timeout=timeout_s)
        return code


def command(*args: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "mock_portal", "--port", "0", "--data-dir", str(data_dir),
            "--shutdown-timeout", "5", *args]  # fmt: skip


@contextmanager
def mock_process(
    *args: str, data_dir: Path, preexec_fn: Callable[[], None] | None = None
) -> Iterator[Mock]:
    proc = subprocess.Popen(
        command(*args, data_dir=data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_fn,
        start_new_session=True,  # its own process group: nothing of it outlives the test
    )
    reader = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert proc.stdout is not None
        lines: list[str] = []
        while True:
            line = proc.stdout.readline()
            lines.append(line)
            match = READY.search(line)
            if match:
                break
            if (not line and proc.poll() is not None) or time.monotonic() > deadline:
                raise AssertionError(f"the mock did not start: {''.join(lines)!r}")
        mock = Mock(match.group(1), match.group(2), proc, lines)
        stdout = proc.stdout
        reader = mock.reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
        reader.start()
        yield mock
    finally:
        if proc.poll() is None:
            # SIGTERM: the supervisor stops its workers.
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if reader is not None:
            reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of a supervisor (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(supervisor), "-f", "spawn_main"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return sorted(int(pid) for pid in out.stdout.split())


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped yet has exited too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


def counter(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


async def sso_login(session: aiohttp.ClientSession, base: str, n: int) -> dict[str, str]:
    """The bearer header of a fresh session of citizen ``n``."""
    tokens = await sso_tokens(session, base, n)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def sso_tokens(session: aiohttp.ClientSession, base: str, n: int) -> dict[str, str]:
    """The token response of a login of citizen ``n`` (``n % 5 != 0``: no second factor)."""
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
    return dict(await r.json())


def fresh_session() -> aiohttp.ClientSession:
    # force_close: every request a new connection, so SO_REUSEPORT spreads them over workers.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=100))
