"""``portal-load report RUN``: write a run's self-contained HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.errors import ExitCode
from harness.report.run_report import write_report
from harness.results.folder import atomic_write, resolve_run


def _command(args: argparse.Namespace) -> int:
    run_dir = resolve_run(Path(args.out), args.run)
    path = write_report(run_dir)
    if args.output:
        target = Path(args.output)
        atomic_write(target, path.read_bytes())
        path = target
    print(f"report: {path}")
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="write a run's self-contained HTML report (report.html)")
    p.add_argument("run", help="run id, a unique prefix of it, latest, or a path")
    p.add_argument("--out", default="results", help="results folder")
    p.add_argument("--output", help="also copy the report to this file")
    p.set_defaults(func=_command)
