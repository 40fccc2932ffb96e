"""What a run depends on besides its load generator, watched while it runs.

- **The target answers.** A thread asks it every :data:`PROBE_EVERY_S` (``GET /healthz`` of the
  embedded mock, ``GET`` of the host's URL otherwise; any HTTP answer counts) and the embedded
  mock's process is checked on every look. A target that does not answer
  :data:`PROBE_FAILURES` times in a row, or a mock that exited, is *lost* from the first
  failed look on; one that answers again is *back*. The run goes on (a target may come back,
  and its outage is then measured), and ends ``degraded``.
- **Room for the results.** Below :data:`harness.run.disk.RESERVE_BYTES` free on the run
  folder's file system, or once a child's log cannot be written for lack of space, the run is
  stopped as if interrupted: what was written stays, and the final results still fit.

Each fault is printed once, when it is seen, and kept as a :class:`Fault` with the time into
the run; the end of the run (:mod:`harness.run.command`) turns them into flags.
"""

from __future__ import annotations

import errno
import http.client
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from harness.processes import Child
from harness.run.disk import MIB, RESERVE_BYTES
from harness.system import free_bytes

PROBE_EVERY_S = 2.0
# Long enough for a target at saturation to answer one request; a lost target refuses (or
# times out) every time, a busy one answers late.
PROBE_TIMEOUT_S = 5.0
PROBE_FAILURES = 2


@dataclass(frozen=True)
class Fault:
    """One thing that went wrong around the load: ``kind`` is ``target_lost``,
    ``target_back``, ``disk_full`` or ``master_died``; ``at_unix_s`` when it happened."""

    kind: str
    at_unix_s: float
    reason: str

    def as_dict(self, start_unix_s: float) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at_unix_s": round(self.at_unix_s, 3),
            "at_s": round(max(self.at_unix_s - start_unix_s, 0.0), 1),
            "reason": self.reason,
        }


def _answers(url: str) -> bool:
    """Whether an HTTP server answers ``GET url`` (any status) within the probe's timeout."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False  # any answer counts, a test certificate's too
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=PROBE_TIMEOUT_S, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", parts.path or "/", headers={"User-Agent": "portal-load probe"})
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


class RunWatch:
    """Watches the target and the disk of one run; :meth:`poll` from the run's loop."""

    def __init__(
        self, *, host: str, mock: Child | None, run_dir: Path, out: IO[str] | None = None
    ) -> None:
        self.url = f"{host.rstrip('/')}/healthz" if mock is not None else host
        self.mock = mock
        self.run_dir = run_dir
        self.out = out or sys.stdout
        self.faults: list[Fault] = []
        self.stop_reason: str | None = None
        self._lock = threading.Lock()
        self._found: list[Fault] = []  # by the probe thread, printed by poll()
        self._lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe_loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _probe_loop(self) -> None:
        failed_since: float | None = None
        failures = 0
        while not self._stop.wait(PROBE_EVERY_S):
            at = time.time()
            ok = _answers(self.url)
            if self.mock is not None and not self.mock.alive():
                continue  # poll() names the cause: the mock's exit
            with self._lock:
                if ok:
                    failures, failed_since = 0, None
                    if self._lost and (self.mock is None or self.mock.alive()):
                        self._lost = False
                        self._found.append(Fault("target_back", at, "the target answers again"))
                    continue
                failures += 1
                failed_since = failed_since or at
                if failures >= PROBE_FAILURES and not self._lost:
                    self._lost = True
                    reason = f"the target stopped answering ({self.url})"
                    self._found.append(Fault("target_lost", failed_since, reason))

    def poll(self) -> None:
        """Look now: the mock's process, the disk; print what was found since the last look."""
        if self.mock is not None and not self.mock.alive():
            with self._lock:
                if not self._lost:
                    self._lost = True
                    code = self.mock.proc.returncode
                    how = f"signal {-code}" if code < 0 else f"status {code}"
                    self._found.append(
                        Fault("target_lost", time.time(), f"the embedded mock exited ({how})")
                    )
        self._check_disk()
        with self._lock:
            found, self._found = self._found, []
        for fault in found:
            self.record(fault)

    def record(self, fault: Fault) -> None:
        """Keep ``fault`` and say it now, between the progress lines."""
        self.faults.append(fault)
        print(f"portal-load: {fault.reason}", file=self.out, flush=True)

    def _check_disk(self) -> None:
        if self.stop_reason is not None:
            return
        try:
            free = free_bytes(self.run_dir)
        except OSError:
            return
        full = self.mock is not None and _no_space(self.mock.log_error)
        if free < RESERVE_BYTES or full:
            self.stop_reason = (
                f"the results' file system is full ({free / MIB:.1f} MiB free under "
                f"{self.run_dir}): stopping the run, keeping what was written"
            )
            self.record(Fault("disk_full", time.time(), self.stop_reason))

    def lost(self) -> bool:
        return any(f.kind == "target_lost" for f in self.faults)


def _no_space(exc: OSError | None) -> bool:
    return exc is not None and exc.errno in (errno.ENOSPC, errno.EDQUOT)
