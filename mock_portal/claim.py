"""One mock per port and per data directory.

Two mocks on one port would share it silently (``SO_REUSEPORT`` lets any process of the same
user join), and two on one data directory would share a database and wipe each other's state.
So a start first claims both, and refuses with :class:`InUse` when a live mock holds either:

- the data directory by a lock (``flock``) on :data:`LOCK_FILE` that every process of a mock
  holds shared while it lives, supervisor and workers alike; the kernel drops it when a
  process dies, however it dies, so a killed mock never leaves a stale claim;
- the port by binding it without ``SO_REUSEPORT``, which fails while anything listens there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "mock.lock"


class InUse(Exception):
    """The port or the data directory is served by a live mock (or another program)."""


class DataDirClaim:
    """The lock on one data directory, held until :meth:`release` (or the process's death)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the file drops the lock
            self._fd = -1


def claim_data_dir(data_dir: Path) -> DataDirClaim:
    """Claim ``data_dir`` for a new mock; :class:`InUse` when a live mock serves it."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise InUse(
                f"data dir {data_dir} is already served by a live mock (started by pid {owner}); "
                "stop it or choose another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        # Shared from now on, so that the workers can hold it too; a new start wants it alone.
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"data dir {data_dir} was claimed by another mock just now") from None
    except BaseException:
        os.close(fd)
        raise
    return DataDirClaim(fd)


@contextlib.contextmanager
def join_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold the shared claim of a worker on its supervisor's data directory while serving."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def ensure_port_free(host: str, port: int) -> None:
    """:class:`InUse` when something listens on ``host:port`` (port 0 is always free)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR (a port in TIME_WAIT is free) but not SO_REUSEPORT: a listener refuses.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise InUse(
                f"{host}:{port} is already in use (by a live mock or another program); "
                "stop it or choose another --port"
            ) from None
