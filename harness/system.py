"""What the harness asks of the operating system: free loopback ports, free disk space,
children that die with the harness, the cores each process of a run may use, and stopping
processes.

Shared by every part that starts a process (the run's children, Prometheus, the stack), so a
port is found, a child is tied to its parent and a process is stopped one way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.05
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Above this many cores, the Locust master and the harness get a core of their own (the
# first) and the processes that work per request (the mock's, the Locust workers) the rest.
# On two cores, one of them would idle half the time: the operating system places everything.
PIN_ABOVE_CORES = 2


def free_port(host: str = LOOPBACK) -> int:
    """A port free on ``host`` now (another process may take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged process may still write on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def usable_cores() -> list[int]:
    """The cores this process may run on, sorted: its affinity (a container's or ``taskset``'s
    share of the machine), which ``os.cpu_count()`` ignores."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Placement:
    """The cores of a run's processes: ``hot`` for those that work per request (the mock's
    processes, the local Locust workers), ``cold`` for the Locust master and the harness
    (they merge and report every interval, whatever the rate). Both None: the operating
    system places every process, as on a machine of two cores or fewer."""

    hot: frozenset[int] | None = None
    cold: frozenset[int] | None = None

    @property
    def pinned(self) -> bool:
        return self.hot is not None

    def default_workers(self, mock_processes: int = 0) -> int:
        """Local Locust workers when the campaign names none: one process per core. Pinned,
        the hot cores are shared by the mock's processes and the workers, one each (at least
        one worker); otherwise one worker per usable core, as Locust's ``--processes -1``."""
        if self.hot is None:
            return len(usable_cores()) or 1
        return max(1, len(self.hot) - mock_processes)


def placement(cores: Sequence[int] | None = None) -> Placement:
    """The placement of a run on ``cores`` (default: this process's usable cores): above
    PIN_ABOVE_CORES, the first core for the master and the harness, the others for the mock
    and the workers; else none."""
    ordered = sorted(usable_cores() if cores is None else cores)
    if len(ordered) <= PIN_ABOVE_CORES:
        return Placement()
    return Placement(hot=frozenset(ordered[1:]), cold=frozenset(ordered[:1]))


def pin(pid: int, cores: Collection[int] | None) -> bool:
    """Restrict process ``pid`` (0: this one) to ``cores``; False where it could not be."""
    if cores is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(pid, cores)
    except OSError:  # gone, or the cores are no longer ours (a cgroup changed)
        return False
    return True


def die_with_parent(
    signum: int = signal.SIGTERM, cores: Collection[int] | None = None
) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes a child receive ``signum`` when the harness dies, however it
    dies (SIGKILL and out-of-memory included): Linux's ``PR_SET_PDEATHSIG``. None elsewhere.
    With ``cores``, the child runs on those cores only, from its first instruction (so the
    processes it forks inherit them too).

    SIGTERM, so that each child ends as it does when the harness stops it (the mock stops its
    own workers, the Locust master writes its results). The signal comes when the *thread*
    that started the child ends: children are started from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()
    wanted = frozenset(cores) if cores is not None else None

    def preexec() -> None:  # runs in the child, between fork and exec
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the harness died before the call took effect
            os._exit(1)
        if wanted is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, wanted)

    return preexec


def process_exited(pid: int) -> bool:
    """Whether process ``pid`` is gone (a child of this process that exited is reaped)."""
    try:
        reaped, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: it belongs to init or another parent
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, but someone else's
            return False
        return _is_zombie(pid)
    return reaped == pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def stop_process(
    pid: int,
    *,
    timeout_s: float = STOP_TIMEOUT_S,
    exited: Callable[[int], bool] = process_exited,
    group: bool = False,
) -> bool:
    """SIGTERM to ``pid`` (its whole process group with ``group``), up to ``timeout_s`` to
    exit, then SIGKILL; True once it is gone. ``exited`` tells whether it is gone (a caller
    holding a ``Popen`` passes its own poll, so that the exit status is not lost)."""
    for signum, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, timeout_s)):
        try:
            if group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            return True
        except PermissionError:
            return exited(pid)
        deadline = time.monotonic() + wait_s
        while not exited(pid):
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL_S)
        else:
            return True
    return exited(pid)
