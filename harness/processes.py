"""Child processes of a run: the embedded mock portal and Locust's master and workers.

The harness never imports Locust (gevent) or the mock (asyncio): it starts them as children,
reads the address the mock prints, and stops everything in order on exit or interruption.
Children run in the harness's working directory (the user's folder, where ``results/`` goes),
so a relative path means the same to every process; they import the installed packages, so
they need no ``PYTHONPATH``.
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
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import IO

from harness import package
from harness.errors import ProcessFailed
from harness.system import die_with_parent

MOCK_READY = re.compile(r"mock portal ready on (http://\S+) .*admin_token=(\S+)\)")
MOCK_START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
LOCUSTFILE = package.locustfile()


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of children: no proxies (load must not leave through one)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONUNBUFFERED"] = "1"
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
        cores: Collection[int] | None = None,
    ) -> None:
        self.name = name
        self.cores = frozenset(cores) if cores is not None else None  # None: anywhere
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
        self.log_error: OSError | None = None  # why its captured output is no longer logged
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE if capture else self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",  # a byte that is not UTF-8 must not stop the log pump
            env=env,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops children in order
            # a harness killed takes its children with it; each runs on its placement's cores
            preexec_fn=die_with_parent(cores=self.cores),
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
        with contextlib.suppress(OSError):  # what is still buffered for a full disk is lost
            self._log.close()
        return code

    def pump(self) -> None:
        """Copy a captured output to the log from now on, in a thread of its own."""
        assert self.proc.stdout is not None, "pump() is for a child started with capture=True"
        threading.Thread(target=_pump, args=(self.proc.stdout, self), daemon=True).start()

    def write_log(self, line: str) -> None:
        """Append captured output to the log; once that fails (a full disk), say so once and
        discard the rest, so that the child's pipe is still drained and it never blocks."""
        if self.log_error is not None:
            return
        try:
            self._log.write(line)
            self._log.flush()
        except ValueError:  # the log was closed at stop
            pass
        except OSError as exc:
            self.log_error = exc
            print(
                f"portal-load: cannot write {self.log_path} ({exc.strerror or exc}); "
                f"the {self.name}'s output is discarded from now on",
                file=sys.stderr,
                flush=True,
            )

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _pump(stream: IO[str], child: Child) -> None:
    """Copy a child's output to its log until the child closes it: never stops reading before
    then, whatever the log does, so that the child can never block on a full pipe."""
    try:
        while line := stream.readline():
            child.write_log(line)
    except (OSError, ValueError):  # the pipe was closed at stop
        pass
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def start_mock(
    run_dir: Path,
    *,
    workers: int,
    config: str = "",
    extra: Sequence[str] = (),
    cores: Collection[int] | None = None,
) -> tuple[Child, str, str]:
    """Start the embedded mock on a free loopback port, its processes on ``cores`` (None: any);
    returns (child, base URL, admin token)."""
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
    if config:  # the mock runs in the repository's folder: a relative path is the user's
        argv += ["--config", str(Path(config).absolute())]
    log = run_dir / "logs" / "mock.log"
    child = Child("mock", argv, log, child_environment(), capture=True, cores=cores)
    assert child.proc.stdout is not None
    deadline = time.monotonic() + MOCK_START_TIMEOUT_S
    stdout = child.proc.stdout
    while True:
        line = stdout.readline()
        if line:
            child.write_log(line)
            match = MOCK_READY.search(line)
            if match:
                break
        if (not line and not child.alive()) or time.monotonic() > deadline:
            child.stop()
            stdout.close()
            said = f": {child.tail(1)}" if child.tail(1) else ""
            raise ProcessFailed(f"the mock portal did not start{said} (see {child.log_path})")
    child.pump()
    return child, match.group(1), match.group(2)


def locust_argv(options: Sequence[str], locustfile: str = "") -> list[str]:
    """Locust with the project's locustfile, or with ``locustfile`` (a user's own) and the
    harness's telemetry beside it (Locust reads several files: ``-f a.py,b.py``)."""
    files = f"{locustfile},{package.telemetry_locustfile()}" if locustfile else str(LOCUSTFILE)
    return [sys.executable, "-m", "locust", "-f", files, *options]
