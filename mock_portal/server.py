"""Serving the mock: ``python -m mock_portal``, one process or a supervisor and N workers.

With ``--workers N`` a supervisor (:mod:`mock_portal.supervisor`) runs N worker processes
(:mod:`mock_portal.worker`) that share the port with ``SO_REUSEPORT``, the signing key, the
database and the metrics folder, so any worker answers any request and one scrape of
``/metrics`` covers all of them. A dead worker is restarted (within a bounded rate).

A start refuses a port or a data directory that a live mock already serves
(:mod:`mock_portal.claim`): one line on stderr and exit status :data:`EXIT_IN_USE`.

Exit status: 0 after SIGTERM/SIGINT, 1 when the mock cannot serve (or gave up restarting
workers), 2 for a config mistake, 3 when the port or the data directory is in use.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import uvloop

from .claim import InUse, claim_data_dir, ensure_port_free
from .config import ConfigError, PortalConfig, load_config
from .supervisor import DEFAULT_MAX_RESTARTS, RESTART_WINDOW_S, Supervisor
from .worker import make_socket, serve_app

DEFAULT_PORT = 8080
DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0
KEY_FILE = "signing.key"
EXIT_IN_USE = 3


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


def serve(
    config: PortalConfig,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workers: int = 1,
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
) -> int:
    """Serve until SIGTERM/SIGINT; prints one ``mock portal ready`` line with the address.

    Raises :class:`~mock_portal.claim.InUse` when a live mock serves the port or the data dir.
    """
    tmp = None
    if config.data_dir is None:
        tmp = tempfile.mkdtemp(prefix="mock-portal-")
        config = config.with_overrides(data_dir=Path(tmp))
    assert config.data_dir is not None
    config.data_dir.mkdir(parents=True, exist_ok=True)
    claim = claim_data_dir(config.data_dir)
    try:
        ensure_port_free(host, port)
        if config.secret is None:
            config = config.with_overrides(secret=persistent_secret(config.data_dir))
        # Reserve the port (port 0 picks a free one); workers join it with SO_REUSEPORT.
        reserve = make_socket(host, port)
        port = reserve.getsockname()[1]
        try:
            if workers == 1:
                return _serve_single(config, reserve, host, port, shutdown_timeout_s)
            supervisor = Supervisor(
                config,
                host=host,
                port=port,
                workers=workers,
                shutdown_timeout_s=shutdown_timeout_s,
                max_restarts=max_restarts,
            )
            return supervisor.run(lambda: _announce(config, host, port, workers))
        finally:
            reserve.close()
    finally:
        claim.release()
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
    uvloop.run(
        serve_app(config, sock, shutdown_timeout_s, lambda pid: _announce(config, host, port, 1))
    )
    return 0


def build_parser(prog: str = "python -m mock_portal") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the mock portal.",
        epilog="Exit status: 0 stopped by SIGTERM/SIGINT, 1 cannot serve, 2 config mistake, "
        "3 port or data dir already served by a live mock.",
    )
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
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=DEFAULT_MAX_RESTARTS,
        help=f"with --workers N: restarts of dead workers allowed within {RESTART_WINDOW_S:g} s "
        f"before the mock gives up (default {DEFAULT_MAX_RESTARTS}; 0: never restart)",
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
    if args.max_restarts < 0:
        parser.error("--max-restarts must be >= 0")
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
            max_restarts=args.max_restarts,
        )
    except InUse as exc:
        print(f"mock portal: {exc}", file=sys.stderr)
        return EXIT_IN_USE
    except OSError as exc:
        where = exc.filename if exc.filename else f"{args.host}:{args.port}"
        print(f"OSError: cannot serve: {where}: {exc.strerror}", file=sys.stderr)
        return 1
