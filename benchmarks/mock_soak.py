"""Memory soak of the mock portal: the mixed portal workload at full rate for ``--minutes``,
its resident memory sampled every ``--sample-seconds``.

The setup is ``benchmarks.mock_vs_hello``'s, imported rather than copied: the mock as it is
shipped (one worker, every metric on, tokens signed and checked, payments and applications
written to SQLite) pinned to one core, ``wrk`` with ``wrk/portal_mix.lua`` on the other, real
logins done first and new citizens logged in by the mix as it goes. ``wrk`` runs in chunks of
``--sample-seconds``; after each, the mock's ``VmRSS`` is read. The figure is the growth from
the sample at half the soak to the last one (5 and 10 minutes by default), against the target
of at most 10 %::

    .venv/bin/python -m benchmarks.mock_soak                      # 10 minutes, every 30 s
    .venv/bin/python -m benchmarks.mock_soak --minutes 1 --sample-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.mock_vs_hello import (
    FIRST_MIX_CITIZEN,
    Bench,
    BenchError,
    lua_literal,
    prepare,
    rss_mib,
    server,
)

TARGET_GROWTH = 0.10  # RSS at the end within 10 % of RSS at half the soak


def soak(args: argparse.Namespace) -> dict[str, Any]:
    chunks = max(2, round(args.minutes * 60 / args.sample_seconds))
    mock_argv = [sys.executable, "-m", "mock_portal", "--port", "0", "--workers", "1"]
    samples: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-")))
        mock = stack.enter_context(
            server("mock", mock_argv, re.compile(r"mock portal ready on (http://\S+)"))
        )
        data = asyncio.run(prepare(mock.url, args.citizens))
        data["first_citizen"] = FIRST_MIX_CITIZEN
        data_file = tmp / "portal_mix_data.lua"
        data_file.write_text("return " + lua_literal(data) + "\n")
        start_rss = rss_mib(mock.pid)
        print(
            f"setup: {args.citizens} citizens logged in; mock pid {mock.pid} RSS "
            f"{start_rss:.1f} MiB; {chunks} x {args.sample_seconds} s of the mix",
            flush=True,
        )
        bench = Bench(args, data_file)
        t0 = time.monotonic()
        for n in range(1, chunks + 1):
            result = bench.mix(mock, args.sample_seconds, f"soak {n}")
            rss = rss_mib(mock.pid)
            sample = {
                "at_s": n * args.sample_seconds,
                "wall_s": time.monotonic() - t0,
                "rss_mib": rss,
                "rps": result.rps,
                "requests": result.requests,
                "non_2xx": result.non_2xx,
                "cpu_us_per_request": result.cpu_us_per_request,
            }
            samples.append(sample)
            print(
                f"  {sample['at_s']:>5} s: RSS {rss:7.1f} MiB, {result.rps:7.0f} req/s, "
                f"non-2xx {result.non_2xx} of {result.requests}, server CPU "
                f"{result.cpu_us_per_request:.0f} us/request",
                flush=True,
            )
    half = samples[chunks // 2 - 1]  # the sample at half the soak (5 of 10 minutes)
    last = samples[-1]
    growth = (last["rss_mib"] - half["rss_mib"]) / half["rss_mib"]
    requests = sum(s["requests"] for s in samples)
    non_2xx = sum(s["non_2xx"] for s in samples)
    return {
        "minutes": args.minutes,
        "sample_seconds": args.sample_seconds,
        "rss_mib_setup": start_rss,
        "samples": samples,
        "half": half,
        "last": last,
        "growth": growth,
        "target_growth": TARGET_GROWTH,
        "met": growth <= TARGET_GROWTH,
        "requests": requests,
        "non_2xx": non_2xx,
        "rps": requests / last["wall_s"] if last["wall_s"] else 0.0,
    }


def print_summary(report: dict[str, Any]) -> None:
    half, last = report["half"], report["last"]
    print()
    print(f"mock RSS at {half['at_s'] / 60:g} min: {half['rss_mib']:.1f} MiB")
    print(f"mock RSS at {last['at_s'] / 60:g} min: {last['rss_mib']:.1f} MiB")
    verdict = "met" if report["met"] else "NOT met"
    print(
        f"growth: {100 * report['growth']:+.1f} % (target <= {100 * TARGET_GROWTH:.0f} %: "
        f"{verdict}); {report['rps']:.0f} req/s over the soak, non-2xx {report['non_2xx']} "
        f"of {report['requests']}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mock_soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--sample-seconds", type=int, default=30, help="RSS read every ...")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--citizens", type=int, default=64, help="citizens logged in by setup")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sample_seconds < 1 or not 1 <= args.citizens <= 5000:
        parser.error("--minutes > 0, --sample-seconds >= 1, --citizens 1..5000")
    try:
        report = soak(args)
    except BenchError as exc:
        print(f"BenchError: {exc}", file=sys.stderr)
        return 1
    print_summary(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
