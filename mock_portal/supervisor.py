"""The supervisor of ``--workers N``: starts the workers, restarts one that dies, stops them.

Each worker is a fresh interpreter (spawned, not forked) with its own listening socket on the
shared port (``SO_REUSEPORT``), so while one worker is dead the others keep answering, and the
kernel sends new connections only to live listeners.

Restart policy: a worker that dies while the mock is not stopping is started again at once,
and ``portal_worker_restarts_total`` counts it. A worker that keeps dying must not restart
forever: after ``max_restarts`` restarts within :data:`RESTART_WINDOW_S`, the next death
makes the supervisor give up loudly: it says so on stderr, stops the other workers and exits 1.
``--max-restarts 0`` restores the strict policy (the first death stops the mock).

The workers write their metrics to a folder of this supervisor's own (prometheus_client's
multiprocess mode); when a worker dies its live gauges (requests in flight) are dropped, so
what it was doing no longer counts, while its counters stay in the totals.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

from .config import PortalConfig
from .metrics import write_worker_restarts
from .worker import run_worker

DEFAULT_MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0  # restarts counted against max_restarts within this window
WORKER_START_TIMEOUT_S = 60.0
POLL_S = 0.2
STOP_GRACE_S = 5.0  # beyond the shutdown timeout, before a worker that hangs is killed


def describe_exit(exitcode: int | None) -> str:
    """``killed by SIGKILL`` or ``exit code 1``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _say(message: str) -> None:
    print(f"mock portal: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """Runs ``workers`` worker processes of ``config`` on ``host:port`` (see the module doc)."""

    def __init__(
        self,
        config: PortalConfig,
        *,
        host: str,
        port: int,
        workers: int,
        shutdown_timeout_s: float,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
    ) -> None:
        if workers < 1 or max_restarts < 0:
            raise ValueError("workers must be >= 1 and max_restarts >= 0")
        self.config = config
        self.host = host
        self.port = port
        self.workers = workers
        self.shutdown_timeout_s = shutdown_timeout_s
        self.max_restarts = max_restarts
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._ready: Any = None
        self._stopping = False
        self._metrics_dir = Path()

    def run(self, announce: Callable[[], None]) -> int:
        """Serve until SIGTERM/SIGINT (0) or until a worker cannot be kept running (1)."""
        self._metrics_dir = Path(tempfile.mkdtemp(prefix="mock-portal-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self._metrics_dir)
        write_worker_restarts(self._metrics_dir, 0)
        self._ready = self._ctx.Queue()

        def stop(signum: int, frame: Any) -> None:
            self._stopping = True

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        procs: list[BaseProcess] = []
        try:
            procs.extend(self._start() for _ in range(self.workers))
            if not self._wait_started(procs):
                return 1
            announce()
            return self._watch(procs)
        finally:
            self._stop_all(procs)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _start(self) -> BaseProcess:
        proc = self._ctx.Process(
            target=run_worker,
            args=(self.config, self.host, self.port, self.shutdown_timeout_s, self._ready,
                  os.getpid()),
            daemon=False,
        )  # fmt: skip
        proc.start()
        return proc

    def _wait_started(self, procs: list[BaseProcess]) -> bool:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        started = 0
        while started < len(procs) and not self._stopping:
            if time.monotonic() > deadline or any(p.exitcode is not None for p in procs):
                _say("a worker failed to start")
                return False
            with contextlib.suppress(Exception):
                self._ready.get(timeout=POLL_S)
                started += 1
        return not self._stopping

    def _watch(self, procs: list[BaseProcess]) -> int:
        deaths: deque[float] = deque()
        while not self._stopping:
            sentinels = [p.sentinel for p in procs]
            with contextlib.suppress(InterruptedError):
                multiprocessing.connection.wait(sentinels, timeout=POLL_S)
            while True:  # drain the ready messages of restarted workers
                try:
                    self._ready.get_nowait()
                except Exception:
                    break
            for i, proc in enumerate(procs):
                if proc.exitcode is None or self._stopping:
                    continue
                now = time.monotonic()
                deaths.append(now)
                while deaths and deaths[0] < now - RESTART_WINDOW_S:
                    deaths.popleft()
                how = describe_exit(proc.exitcode)
                if len(deaths) > self.max_restarts:
                    _say(
                        f"worker {proc.pid} died ({how}); {len(deaths)} deaths within "
                        f"{RESTART_WINDOW_S:g} s, more than --max-restarts {self.max_restarts}: "
                        "giving up, stopping the mock"
                    )
                    return 1
                if proc.pid is not None:
                    mark_process_dead(proc.pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
                procs[i] = self._start()
                self.restarts += 1
                write_worker_restarts(self._metrics_dir, self.restarts)
                _say(
                    f"worker {proc.pid} died ({how}); restarted as worker {procs[i].pid} "
                    f"(restart {self.restarts}; at most {self.max_restarts} "
                    f"within {RESTART_WINDOW_S:g} s)"
                )
        return 0

    def _stop_all(self, procs: list[BaseProcess]) -> None:
        for proc in procs:
            if proc.exitcode is None and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.join(self.shutdown_timeout_s + STOP_GRACE_S)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
