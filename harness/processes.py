"""Child processes of a run: the embedded mock portal and Locust's master and workers.

The harness never imports Locust (gevent) or the mock (asyncio): it starts them as children,
reads the address the mock prints, and stops everything in order on exit or interruption.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from harness.errors import ProcessFailed

MOCK_READY = re.compile(r"mock portal ready on (http://\S+) .*admin_token=(\S+)\)")
MOCK_START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
REPO_ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO_ROOT / "locustfile.py"


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of children: no proxies (load must not leave through one)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


class Child:
    """A started child process with its output going to a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str],
        capture: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE if capture else self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops children in order
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        self.signal(signal.SIGTERM)
        code = self.wait(timeout_s)
        if code is None:
            self.signal(signal.SIGKILL)
            code = self.proc.wait()
        self._log.close()
        return code

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _pump(stream: IO[str], log: IO[str]) -> None:
    for line in stream:
        with contextlib.suppress(ValueError):  # the log was closed at stop
            log.write(line)
            log.flush()


def start_mock(
    run_dir: Path, *, workers: int, config: str = "", extra: Sequence[str] = ()
) -> tuple[Child, str, str]:
    """Start the embedded mock on a free loopback port; returns (child, base URL, admin token)."""
    argv = [
        sys.executable,
        "-m",
        "mock_portal",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--workers",
        str(workers),
        "--data-dir",
        str(run_dir / "mock-data"),
        *extra,
    ]
    if config:
        argv += ["--config", config]
    child = Child("mock", argv, run_dir / "logs" / "mock.log", child_environment(), capture=True)
    assert child.proc.stdout is not None
    deadline = time.monotonic() + MOCK_START_TIMEOUT_S
    stdout = child.proc.stdout
    while True:
        line = stdout.readline()
        if line:
            child._log.write(line)
            match = MOCK_READY.search(line)
            if match:
                break
        if (not line and not child.alive()) or time.monotonic() > deadline:
            child.stop()
            raise ProcessFailed(f"the mock portal did not start; see {child.log_path}")
    threading.Thread(target=_pump, args=(stdout, child._log), daemon=True).start()
    return child, match.group(1), match.group(2)


def locust_argv(options: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *options]
