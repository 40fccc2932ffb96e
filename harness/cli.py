"""``portal-load``: the command line of the harness.

Each command is a module of :mod:`harness.commands` with ``add_parser(subparsers)``; the CLI
catches only :class:`~harness.errors.HarnessError`, prints ``Type: message`` and exits with
its code (:class:`~harness.errors.ExitCode`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness import package
from harness.commands import capacity, gate, gate_ab, init, report, results, run, serve, stack
from harness.errors import ExitCode, HarnessError

Command = Callable[[argparse.Namespace], int]

COMMANDS = (serve, run, results, gate, gate_ab, capacity, report, stack, init)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal-load",
        description="Load-testing and performance harness for the public-services portal.",
    )
    parser.add_argument("--version", action="version", version=f"portal-load {package.version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
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
        return int(func(args))
    except HarnessError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
