"""``portal-load mock --workers N`` under the mixed portal workload: what one process serves,
and how many processes the national peak (7,000 req/s) needs.

For each N of ``--workers``, the real command (``portal-load mock --workers N``, processes
behind SO_REUSEPORT) gets the mix of ``wrk/portal_mix.lua`` (real logins, applications,
payments; setup as in :mod:`benchmarks.mock_vs_hello`) from ``wrk`` pinned to core 0. The
mock's CPU is summed over its whole process tree, so **req/s per process** is
``requests / CPU-seconds of the mock``: what one process serves with a core of its own, which
is how the mock scales out (one process per core, any process answers any request).

On 2 cores, N = 1 has the mock alone on core 1; with N = 2 its processes share core 0 with
``wrk``, so their req/s is not a capacity, but their CPU per request shows whether a second
process costs anything per request (the shared SQLite files, the spread of connections)::

    python -m benchmarks.mock_workers                         # N = 1, 2; 2 rounds of 15 s
    python -m benchmarks.mock_workers --workers 1 --duration 2 --rounds 1 --warmup 0

Every request goes to 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from benchmarks.mock_vs_hello import (
    FIRST_MIX_CITIZEN,
    MIX_SCRIPT,
    BenchError,
    WrkResult,
    lua_literal,
    prepare,
    run_wrk,
    server,
)

PEAK_RPS = 7_000.0  # the portal's published peak (scenarios.workload.PORTAL_PEAK_RPS)
HEADROOM = 0.3  # each process at most at 70 % of its capacity (harness.campaign.model)
READY = re.compile(r"mock portal ready on (http://\S+)")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU of a process and all its children so far."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def measure(
    workers: int, args: argparse.Namespace, tmp: Path, first_citizen: int
) -> tuple[list[WrkResult], int]:
    """Rounds of the mix on ``portal-load mock --workers N``; returns them and the next
    citizen the mix may log in (each round's citizens are new, so no charge is paid twice)."""
    cores = "1" if workers == 1 else "0,1"
    argv = [sys.executable, "-m", "harness.cli", "mock", "--port", "0", "--workers",
            str(workers), "--data-dir", str(tmp / f"mock-{workers}")]  # fmt: skip
    results: list[WrkResult] = []
    with server(f"mock x{workers}", ["taskset", "-c", cores, *argv], READY) as mock:
        data = asyncio.run(prepare(mock.url, args.citizens))
        data_file = tmp / f"portal_mix_data_{workers}.lua"
        env = {"PORTAL_MIX_DATA": str(data_file), "PORTAL_MIX_THREADS": "1"}
        phases = [("warm-up", args.warmup)] if args.warmup else []
        phases += [(f"round {i}", args.duration) for i in range(1, args.rounds + 1)]
        for label, seconds in phases:
            data["first_citizen"] = first_citizen
            data_file.write_text("return " + lua_literal(data) + "\n")
            cpu0 = tree_cpu_s(mock.pid)
            result = run_wrk(f"x{workers} {label}", mock.url, seconds, args.connections,
                             MIX_SCRIPT, env)  # fmt: skip
            result.server_cpu_s = tree_cpu_s(mock.pid) - cpu0
            first_citizen = max(first_citizen, result.last_citizen + 1)
            print(_line(result), flush=True)
            if label != "warm-up":
                results.append(result)
    return results, first_citizen


def _line(r: WrkResult) -> str:
    per_process = 1e6 / r.cpu_us_per_request if r.cpu_us_per_request else 0.0
    return (
        f"  {r.label:<16} {r.rps:>7,.0f} req/s  {r.requests:>8,} requests  non-2xx "
        f"{r.non_2xx}  mock CPU {r.cpu_us_per_request:5.0f} us/request  "
        f"= {per_process:6,.0f} req/s per process"
    )


def summarise(workers: int, results: list[WrkResult]) -> dict[str, Any]:
    requests = sum(r.requests for r in results)
    cpu_s = sum(r.server_cpu_s for r in results)
    per_process = requests / cpu_s if cpu_s else 0.0
    return {
        "workers": workers,
        "rps": requests / sum(r.seconds for r in results),
        "requests": requests,
        "non_2xx": sum(r.non_2xx for r in results),
        "cpu_us_per_request": 1e6 * cpu_s / requests if requests else 0.0,
        "rps_per_process": per_process,
        "processes_for_peak": math.ceil(PEAK_RPS / (per_process * (1 - HEADROOM)))
        if per_process
        else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"command": " ".join(sys.argv), "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-mock-workers-") as tmp:
        citizen = FIRST_MIX_CITIZEN
        for workers in args.workers:
            t0 = time.monotonic()
            results, citizen = measure(workers, args, Path(tmp), citizen)
            summary = summarise(workers, results)
            summary["wall_s"] = round(time.monotonic() - t0, 1)
            report["runs"].append(summary)
    return report


def print_summary(report: dict[str, Any]) -> None:
    print()
    for r in report["runs"]:
        print(
            f"--workers {r['workers']}: {r['rps']:,.0f} req/s measured, {r['non_2xx']} non-2xx "
            f"of {r['requests']:,}; mock CPU {r['cpu_us_per_request']:.0f} us per request = "
            f"{r['rps_per_process']:,.0f} req/s per process on a core of its own; "
            f"{PEAK_RPS:,.0f} req/s at {1 - HEADROOM:.0%} per process: "
            f"{r['processes_for_peak']} processes"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mock_workers",
        description="portal-load mock --workers N under the mixed workload: req/s per process.",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="values of N")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured round")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per N")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per N")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--citizens", type=int, default=64, help="citizens logged in by setup")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0 or min(args.workers) < 1:
        parser.error("--duration, --rounds and --workers must be >= 1; --warmup >= 0")
    try:
        report = run(args)
    except BenchError as exc:
        print(f"BenchError: {exc}", file=sys.stderr)
        return 1
    print_summary(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    non_2xx = sum(r["non_2xx"] for r in report["runs"])
    return 0 if non_2xx <= 0.01 * sum(r["requests"] for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
