"""One serving process: the portal app on a listening socket under uvloop until SIGTERM/SIGINT.

Shutdown is graceful: ``/readyz`` turns 503, the listening socket closes, requests already
accepted finish (up to the shutdown timeout), then the process exits.

A worker of ``--workers N`` dies with its supervisor: the kernel sends it SIGTERM when the
supervisor dies (``PR_SET_PDEATHSIG`` on Linux), and on every platform it checks that its
parent is still the supervisor every :data:`PARENT_CHECK_S` and stops when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import uvloop
from aiohttp import web

from .app import create_app
from .claim import join_data_dir
from .config import PortalConfig
from .connections import raise_descriptor_limit
from .protocol import PortalRunner
from .state import PORTAL

log = logging.getLogger("mock_portal")

BACKLOG = 4096  # connection bursts of a load test must not be refused at accept
PARENT_CHECK_S = 0.5  # a worker whose supervisor is gone stops within this (no prctl needed)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def make_socket(host: str, port: int) -> socket.socket:
    """A socket bound with ``SO_REUSEPORT``, so every worker binds the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel for SIGTERM when the parent dies; False if it is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    # The parent may have died before the request above: then nobody will signal us.
    return os.getppid() == parent_pid


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_S)
    log.warning("the supervisor (pid %d) is gone; stopping", parent_pid)
    stop.set()


async def serve_app(
    config: PortalConfig,
    sock: socket.socket,
    shutdown_timeout_s: float,
    ready: Callable[[int], None],
    *,
    parent_pid: int | None = None,
) -> None:
    """Serve ``config`` on ``sock`` until SIGTERM or SIGINT (or the parent's death)."""
    raise_descriptor_limit()  # before the runner sizes its connection cap by it
    app = create_app(config)
    runner = PortalRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout_s
    )
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=BACKLOG)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = None
    if parent_pid is not None:
        watch = asyncio.create_task(_watch_parent(parent_pid, stop))
    ready(os.getpid())
    await stop.wait()
    if watch is not None:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    app[PORTAL].draining = True
    await runner.cleanup()


def run_worker(
    config: PortalConfig,
    host: str,
    port: int,
    shutdown_timeout_s: float,
    ready_queue: Any,
    parent_pid: int,
) -> None:
    """Entry point of one worker process of ``--workers N``."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(process)d %(message)s")
    if not die_with_parent(parent_pid):
        return
    assert config.data_dir is not None
    with join_data_dir(config.data_dir):
        sock = make_socket(host, port)
        uvloop.run(
            serve_app(config, sock, shutdown_timeout_s, ready_queue.put, parent_pid=parent_pid)
        )
