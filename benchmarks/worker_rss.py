"""Resident memory of one Locust worker per 1,000 users of the portal's journeys.

Each point is a real ``portal-load run`` (embedded mock on 127.0.0.1, one Locust worker, the
default mix of citizen journeys and visitors) of N users spawned at once, at the journeys'
own pace (``--think-scale 1``: seconds between steps, so the users are held, not the rate).
A sampler reads ``VmRSS`` of the worker from ``/proc/PID/status`` every half second; a
point's figure is the largest seen. A least-squares line through the points gives MiB per
1,000 users (its slope) and the worker's own footprint (its intercept)::

    .venv/bin/python -m benchmarks.worker_rss                      # 1, 500, 1000, 2000 users
    .venv/bin/python -m benchmarks.worker_rss --users 1,40 --seconds 8 --json /tmp/rss.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVERY_S = 0.5
RUN_GRACE_S = 90.0  # start-up, stop and results beyond the run's duration


@dataclass
class Point:
    users: int
    rss_mib: float  # the worker's largest VmRSS during the run
    rss_mib_start: float  # its first sample, before the users spawned
    requests: int
    failure_ratio: float
    exit_code: int
    samples: int


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _worker_pids(root: int) -> list[int]:
    """The Locust workers below ``root`` (their command line names ``--worker``)."""
    tree, found, todo = _children(), [], [root]
    while todo:
        for pid in tree.get(todo.pop(), []):
            todo.append(pid)
            try:
                line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"--worker" in line:
                found.append(pid)
    return found


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure(users: int, args: argparse.Namespace, workdir: Path) -> Point:
    cmd = [
        str(Path(sys.executable).parent / "portal-load"), "run",
        "--duration", f"{args.seconds}s", "--users", str(users), "--spawn-rate", str(users),
        "--think-scale", f"{args.think_scale:g}", "--workers", "1", "--no-tty",
        "--out", str(workdir / "results"),
    ]  # fmt: skip
    log = workdir / f"run-{users}.log"
    samples: list[float] = []
    done = threading.Event()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

        def sample() -> None:
            worker: int | None = None
            while not done.wait(SAMPLE_EVERY_S):
                if worker is None:
                    pids = _worker_pids(proc.pid)
                    worker = pids[0] if pids else None
                rss = _rss_mib(worker) if worker is not None else None
                if rss is not None:
                    samples.append(rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = proc.wait(timeout=args.seconds + RUN_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.terminate()
            code = proc.wait(timeout=60)
        done.set()
        sampler.join(timeout=5)
    text = log.read_text()
    match = re.search(r"-> (\S+)", text)
    total: dict[str, Any] = {}
    if match and (Path(match.group(1)) / "summary.json").exists():
        total = json.loads((Path(match.group(1)) / "summary.json").read_text()).get("total", {})
    if not samples or code not in (0, 4):
        raise SystemExit(f"the run of {users} users failed (exit {code}):\n{text[-3000:]}")
    return Point(
        users=users,
        rss_mib=max(samples),
        rss_mib_start=samples[0],
        requests=int(total.get("count", 0)),
        failure_ratio=float(total.get("failure_ratio", 0.0)),
        exit_code=code,
        samples=len(samples),
    )


def fit(points: list[Point]) -> dict[str, float]:
    """Least squares RSS = intercept + slope x users; MiB per 1,000 users is 1000 x slope."""
    xs = [float(p.users) for p in points]
    ys = [p.rss_mib for p in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    r = statistics.correlation(xs, ys) if len(set(ys)) > 1 else 1.0
    return {
        "mib_per_1000_users": 1000 * slope,
        "intercept_mib": intercept,
        "kib_per_user": 1024 * slope,
        "r_squared": r * r,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.worker_rss", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--users", type=lambda s: [int(u) for u in s.split(",")], default=[1, 500, 1000, 2000],
        help="users of each point (comma-separated, at least two different)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=int, default=20, help="duration of each run")
    parser.add_argument("--think-scale", type=float, default=1.0, help="the journeys' pace")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(set(args.users)) < 2 or min(args.users) < 1:
        parser.error("--users needs at least two different counts, each >= 1")
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        for users in sorted(args.users):
            point = measure(users, args, Path(tmp))
            points.append(point)
            print(
                f"users {users:>6}: worker RSS {point.rss_mib:7.1f} MiB (largest of "
                f"{point.samples} samples; {point.rss_mib_start:.1f} MiB at the first), "
                f"{point.requests} requests, failures {100 * point.failure_ratio:.2f} %, "
                f"exit {point.exit_code}",
                flush=True,
            )
    line = fit(points)
    print(
        f"worker RSS per 1,000 users: {line['mib_per_1000_users']:.1f} MiB "
        f"({line['kib_per_user']:.1f} KiB per user; linear fit over "
        f"{min(args.users)}..{max(args.users)} users, intercept {line['intercept_mib']:.1f} MiB, "
        f"r^2 {line['r_squared']:.3f}; think-scale {args.think_scale:g}, {args.seconds} s each)"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"points": [asdict(p) for p in points], "fit": line}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
