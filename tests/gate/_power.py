"""How long a run must be for the gate to detect a tolerance, measured on real A/A pairs.

For each run length, one interleaved A/A pair of real runs against the embedded mock (every
route given a lognormal backend latency, median 20 ms, p99 60 ms), through the real CLI
(``portal-load gate-ab``); from its ``verdict.json``, for the total's p50, p95 and p99, the
noise margin ``z * se`` (``z`` Holm's quantile over all the run's comparisons) as a relative
change: the smallest tolerance the run can gate (a comparison is underpowered when its margin
exceeds its tolerance, docs/gating.md). The second table inverts it: for each tolerance, the
shortest measured run length that can gate it.

    python -m tests.gate._power                      # 15, 30, 60, 120 s
    python -m tests.gate._power --lengths 10,20 --users 16
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

BACKEND = '[faults.routes."*"]\nlatency = { kind = "lognormal", median_ms = 20, p99_ms = 60 }\n'
METRICS = ("p50", "p95", "p99")
TOLERANCES = (0.05, 0.10, 0.20, 0.30)


def measure(length_s: int, users: int, work: Path) -> dict[str, object]:
    mock = work / "a.toml"
    mock.write_text(BACKEND)
    out = work / f"results-{length_s}"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "gate-ab", "--a", str(mock), "--b", str(mock),
         "--rounds", "1", "--duration", f"{length_s}s", "--users", str(users),
         "--think-scale", "0.02", "--workers", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=length_s * 2 + 300, check=False,
    )  # fmt: skip
    (job,) = out.glob("ab-*")
    verdict = json.loads((job / "gate" / "verdict.json").read_text())
    total = next(c for c in verdict["comparisons"] if c["key"] == "total")
    margins = {}
    for ch in total["changes"]:
        if ch["metric"] in METRICS and ch["mde"] is not None:
            margins[ch["metric"]] = math.expm1(math.log1p(ch["mde"]) - math.log1p(ch["tolerance"]))
    changes = [ch for c in verdict["comparisons"] for ch in c["changes"]]
    return {
        "length_s": length_s,
        "exit": done.returncode,
        "outcome": verdict["outcome"],
        "requests": (total["baseline_count"], total["candidate_count"]),
        "margins": margins,
        "underpowered": sum(ch["underpowered"] for ch in changes),
        "comparisons": len(changes),
        "holm": verdict["power"]["holm_comparisons"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="15,30,60,120", help="run lengths, seconds")
    parser.add_argument("--users", type=int, default=16)
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(length, args.users, Path(tmp)) for length in lengths]
    print(
        "| run length | requests A / B | smallest gateable tolerance: total p50 | p95 | p99 "
        "| comparisons underpowered (default tolerances) | outcome |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["margins"]
        assert isinstance(m, dict)
        cells = " | ".join(f"{m[k] * 100:.1f} %" if k in m else "-" for k in METRICS)
        a, b = r["requests"]  # type: ignore[misc]
        print(
            f"| {r['length_s']} s | {a:,} / {b:,} | {cells} | "
            f"{r['underpowered']} of {r['comparisons']} | {r['outcome']} |"
        )
    print()
    print("| tolerance | " + " | ".join(f"total {k}: shortest run" for k in METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for tol in TOLERANCES:
        cells = []
        for k in METRICS:
            fit = [r["length_s"] for r in rows if r["margins"].get(k, math.inf) <= tol]  # type: ignore[union-attr]
            cells.append(f"{min(fit)} s" if fit else f"> {max(lengths)} s")
        print(f"| {tol:.0%} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
