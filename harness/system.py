"""What the harness asks of the operating system: free loopback ports, free disk space,
children that die with the harness, and stopping processes.

Shared by every part that starts a process (the run's children, Prometheus, the stack), so a
port is found, a child is tied to its parent and a process is stopped one way.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.05
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes a child receive ``signum`` when the harness dies, however it
    dies (SIGKILL and out-of-memory included): Linux's ``PR_SET_PDEATHSIG``. None elsewhere.

    SIGTERM, so that each child ends as it does when the harness stops it (the mock stops its
    own workers, the Locust master writes its results). The signal comes when the *thread*
    that started the child ends: children are started from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:  # runs in the child, between fork and exec
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the harness died before the call took effect
            os._exit(1)

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
