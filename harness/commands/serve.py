"""``portal-load mock`` and ``portal-load worker``: commands that become another program.

The harness runs neither asyncio nor gevent itself: ``mock`` replaces this process with the
mock portal, ``worker`` with a Locust worker joining a master elsewhere.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from harness.processes import locust_argv

DEFAULT_MASTER_PORT = 5557  # Locust's own


# ``python -m mock_portal``, with its usage and errors under this command's name.
_MOCK_MAIN = (
    "import sys; from mock_portal.server import main; sys.exit(main(prog='portal-load mock'))"
)


def _mock(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-c", _MOCK_MAIN, *args.mock_args]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process, no shell
    return 0  # pragma: no cover


def _worker(args: argparse.Namespace) -> int:
    host, _, port = args.master.partition(":")
    argv = locust_argv(
        ["--worker", "--master-host", host, "--master-port", port or str(DEFAULT_MASTER_PORT)]
    )
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process, no shell
    return 0  # pragma: no cover


def add_parser(sub: Any) -> None:
    mock = sub.add_parser(
        "mock",
        help="serve the mock portal (flags as python -m mock_portal --help)",
        add_help=False,
    )
    mock.add_argument("mock_args", nargs=argparse.REMAINDER)
    mock.set_defaults(func=_mock)
    worker = sub.add_parser("worker", help="join a remote master with a Locust worker")
    worker.add_argument(
        "--master", required=True, help=f"HOST[:PORT] of the master (port {DEFAULT_MASTER_PORT})"
    )
    worker.set_defaults(func=_worker)
