"""``portal-load runs`` and ``portal-load show RUN``: the runs kept, and one run's summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errors import ExitCode, ResultsError
from harness.results.folder import list_runs, read_summary, resolve_run
from harness.run.summary import print_summary


def _runs(args: argparse.Namespace) -> int:
    for run_dir in list_runs(Path(args.out)):
        try:
            s = read_summary(run_dir)
        except ResultsError:
            print(f"{run_dir.name}  (no summary)")
            continue
        total = s.get("total") or {}
        print(
            f"{run_dir.name}  {s.get('status', '?'):9}  {s.get('duration_s', 0):6.0f} s  "
            f"{total.get('count', 0):>9} req  {total.get('rps', 0):8.1f} req/s  "
            f"p95 {total.get('p95_ms', 0):8.1f} ms  failures {total.get('failures', 0)}"
        )
    return ExitCode.OK


def _show(args: argparse.Namespace) -> int:
    run_dir = resolve_run(Path(args.out), args.run)
    print_summary(read_summary(run_dir), run_dir, out=sys.stdout)
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    runs = sub.add_parser("runs", help="list past runs")
    runs.add_argument("--out", default="results", help="results folder")
    runs.set_defaults(func=_runs)
    show = sub.add_parser("show", help="print one run's summary")
    show.add_argument("run", help="run id, a unique prefix of it, latest, or a path")
    show.add_argument("--out", default="results", help="results folder")
    show.set_defaults(func=_show)
