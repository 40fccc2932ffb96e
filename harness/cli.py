"""``portal-load``: the command line of the harness.

Each subcommand lives in its own module and registers itself here; the CLI catches only
:class:`~harness.errors.HarnessError`, prints ``Type: message`` and exits with its code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .errors import HarnessError

Command = Callable[[argparse.Namespace], int]


def _mock(args: argparse.Namespace) -> int:
    """Serve the mock portal in this process's place (it runs asyncio; the harness does not)."""
    argv = [sys.executable, "-m", "mock_portal", *args.mock_args]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process, no shell
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal-load",
        description="Load-testing and performance harness for the public-services portal.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mock = sub.add_parser(
        "mock",
        help="serve the mock portal (flags as python -m mock_portal --help)",
        add_help=False,
    )
    mock.add_argument("mock_args", nargs=argparse.REMAINDER)
    mock.set_defaults(func=_mock)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "mock":
        args.mock_args = [*extra, *args.mock_args]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Command = args.func
    try:
        return func(args)
    except HarnessError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
