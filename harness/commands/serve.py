"""``portal-load mock`` and ``portal-load worker``: commands that become another program.

The harness runs neither asyncio nor gevent itself: ``mock`` replaces this process with the
mock portal, ``worker`` with Locust workers joining a master elsewhere with this host's
locustfile (the master refuses them if their scenario code or version differs from its own).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from harness.campaign.values import Key, check
from harness.campaign.workers import DEFAULT_MASTER_PORT, parse_master_bind
from harness.errors import UsageError
from harness.processes import child_environment, locust_argv

MAX_PROCESSES = 1024  # Locust forks this many workers on one host at most, sensibly


# ``python -m mock_portal``, with its usage and errors under this command's name.
_MOCK_MAIN = (
    "import sys; from mock_portal.server import main; sys.exit(main(prog='portal-load mock'))"
)


def _mock(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-c", _MOCK_MAIN, *args.mock_args]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process, no shell
    return 0  # pragma: no cover


def _worker(args: argparse.Namespace) -> int:
    where = parse_master_bind(args.master, "--master")
    if where.wildcard:
        raise UsageError(f"--master: {args.master!r} is no address to join; give the master's")
    processes = check(Key("processes", "int", low=1, high=MAX_PROCESSES), args.processes,
                      "--processes")  # fmt: skip
    port = where.port or DEFAULT_MASTER_PORT
    host = where.host
    options = ["--worker", "--master-host", host, "--master-port", str(port)]
    if processes > 1:
        options += ["--processes", str(processes)]
    print(f"portal-load worker: joining the master at {args.master} ({host}:{port}) with "
          f"{processes} process(es)", flush=True)  # fmt: skip
    argv = locust_argv([*options, "--loglevel", args.loglevel])
    os.execve(sys.executable, argv, child_environment())  # noqa: S606 - replaces this process
    return 0  # pragma: no cover


def add_parser(sub: Any) -> None:
    mock = sub.add_parser(
        "mock",
        help="serve the mock portal (flags as python -m mock_portal --help)",
        add_help=False,
    )
    mock.add_argument("mock_args", nargs=argparse.REMAINDER)
    mock.set_defaults(func=_mock)
    worker = sub.add_parser(
        "worker", help="join a master on another host (portal-load run --remote-workers N)"
    )
    worker.add_argument(
        "--master", required=True, help=f"HOST[:PORT] of the master (port {DEFAULT_MASTER_PORT})"
    )
    worker.add_argument(
        "--processes",
        default="1",
        help="worker processes on this host, each one of the run's remote workers (default 1)",
    )
    worker.add_argument("--loglevel", default="WARNING", help="Locust's log level (WARNING)")
    worker.set_defaults(func=_worker)
