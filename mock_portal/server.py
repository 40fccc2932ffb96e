"""Serving the mock: one process, or a supervisor and N workers sharing a port.

With ``--workers N`` each worker is a fresh interpreter (spawned, not forked) running uvloop and
its own listening socket bound with ``SO_REUSEPORT``, so the kernel spreads connections across
them. Workers share the signing key, the database and the metrics directory, so any worker
answers any request and one scrape of ``/metrics`` covers all of them.

Shutdown on SIGTERM or SIGINT is graceful: ``/readyz`` turns 503, the listening sockets close,
requests already accepted finish (up to the shutdown timeout), then the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from .config import ConfigError, PortalConfig, load_config

log = logging.getLogger("mock_portal")

DEFAULT_PORT = 8080
DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0
BACKLOG = 4096  # connection bursts of a load test must not be refused at accept
WORKER_START_TIMEOUT_S = 60.0
KEY_FILE = "signing.key"


def make_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def persistent_secret(data_dir: Path) -> bytes:
    """The signing key kept in the data directory, so a restart keeps tokens valid."""
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


async def _serve(
    config: PortalConfig, sock: socket.socket, shutdown_timeout_s: float, ready: Any
) -> None:
    from aiohttp import web

    from .app import create_app
    from .protocol import PortalRunner
    from .state import PORTAL

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
    ready(os.getpid())
    await stop.wait()
    app[PORTAL].draining = True
    await runner.cleanup()


def run_worker(
    config: PortalConfig, host: str, port: int, shutdown_timeout_s: float, ready_queue: Any
) -> None:
    """Entry point of one worker process."""
    import uvloop

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(process)d %(message)s")
    sock = make_socket(host, port)
    uvloop.run(_serve(config, sock, shutdown_timeout_s, ready_queue.put))


def serve(
    config: PortalConfig,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workers: int = 1,
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
) -> int:
    """Serve until SIGTERM/SIGINT; prints one ``mock portal ready`` line with the address."""
    tmp = None
    if config.data_dir is None:
        tmp = tempfile.mkdtemp(prefix="mock-portal-")
        config = config.with_overrides(data_dir=Path(tmp))
    assert config.data_dir is not None
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.secret is None:
        config = config.with_overrides(secret=persistent_secret(config.data_dir))
    # Reserve the port (port 0 picks a free one); workers join it with SO_REUSEPORT.
    reserve = make_socket(host, port)
    port = reserve.getsockname()[1]
    try:
        if workers == 1:
            return _serve_single(config, reserve, host, port, shutdown_timeout_s)
        return _supervise(config, reserve, host, port, workers, shutdown_timeout_s)
    finally:
        reserve.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _announce(config: PortalConfig, host: str, port: int, workers: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(
        f"mock portal ready on http://{shown}:{port} "
        f"(workers={workers}, data_dir={config.data_dir}, admin_token={config.admin_token})",
        flush=True,
    )


def _serve_single(
    config: PortalConfig, sock: socket.socket, host: str, port: int, shutdown_timeout_s: float
) -> int:
    import uvloop

    uvloop.run(
        _serve(config, sock, shutdown_timeout_s, lambda pid: _announce(config, host, port, 1))
    )
    return 0


def _supervise(
    config: PortalConfig,
    reserve: socket.socket,
    host: str,
    port: int,
    workers: int,
    shutdown_timeout_s: float,
) -> int:
    assert config.data_dir is not None
    metrics_dir = config.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    ctx = multiprocessing.get_context("spawn")
    ready_queue = ctx.Queue()
    procs: list[BaseProcess] = []
    stopping = False

    def _stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            proc: BaseProcess = ctx.Process(
                target=run_worker,
                args=(config, host, port, shutdown_timeout_s, ready_queue),
                daemon=False,
            )
            proc.start()
            procs.append(proc)
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        started = 0
        while started < workers and not stopping:
            if time.monotonic() > deadline or any(p.exitcode is not None for p in procs):
                print("mock portal: a worker failed to start", file=sys.stderr, flush=True)
                stopping = True
                break
            with contextlib.suppress(Exception):
                ready_queue.get(timeout=0.2)
                started += 1
        if not stopping:
            _announce(config, host, port, workers)
        while not stopping and all(p.exitcode is None for p in procs):
            time.sleep(0.2)
        failed = not stopping
        if failed:
            print("mock portal: a worker died; stopping the others", file=sys.stderr, flush=True)
        for proc in procs:
            if proc.exitcode is None and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.join(shutdown_timeout_s + 5)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        return 1 if failed else 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def build_parser(prog: str = "python -m mock_portal") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Serve the mock portal.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (SO_REUSEPORT)")
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--data-dir", help="folder of the database (default: a temporary one)")
    parser.add_argument("--admin-token", help="token of /admin/* (default: generated, printed)")
    parser.add_argument("--citizens", type=int, help="size of the test citizen pool")
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=DEFAULT_SHUTDOWN_TIMEOUT_S,
        help="seconds accepted requests get to finish on SIGTERM",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m mock_portal") -> int:
    """Serve the mock portal; ``prog`` is the name its usage shows (``portal-load mock``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    try:
        config = load_config(
            args.config,
            data_dir=Path(args.data_dir) if args.data_dir else None,
            admin_token=args.admin_token or os.environ.get("PORTAL_ADMIN_TOKEN"),
            citizens=args.citizens,
        )
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        return 2
    try:
        return serve(
            config,
            host=args.host,
            port=args.port,
            workers=args.workers,
            shutdown_timeout_s=args.shutdown_timeout,
        )
    except OSError as exc:
        print(f"OSError: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
