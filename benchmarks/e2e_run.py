"""End-to-end throughput of ``portal-load run`` on this machine, beside stock Locust.

Three measurements in one invocation, every one on loopback and bounded in time:

1. **Ladder.** The real ``portal-load run`` command (embedded mock, Locust master, workers,
   exporter, results, all on) runs the default journey mix with think times off (or scaled)
   in short steps of increasing users, for each split of mock workers and Locust workers. A
   step's figure is its steady requests per second (the run's ``timeseries.csv`` after the
   first interval) and its failure ratio (``summary.json``). A split's ladder stops when
   failures reach 1 % or the rate stops growing; its peak is the best step under 1 %.
2. **Side by side.** Rounds alternate stock Locust (``locust --processes 2``, a plain
   ``FastHttpUser`` doing ``GET /`` against ``benchmarks/hello_server.py``) and our peak step
   again, so the ratio ours/stock of each round shares its machine conditions.
3. **Projection.** During every step a sampler reads ``/proc/<pid>/stat`` of the run's whole
   process tree (mock and its spawned workers, master, workers, the harness) and of the
   machine: CPU seconds per request of each process kind in the steady window give the cores
   that 7,000 req/s of mixed journeys needs (mock cores + generator cores).

``--profile-seconds`` adds a last run at the peak with ``py-spy`` on the mock and one Locust
worker, and prints the top functions of each (own time, and time under each function)::

    .venv/bin/python -m benchmarks.e2e_run                       # the figures of RESULTS.md
    .venv/bin/python -m benchmarks.e2e_run --profile-seconds 15  # plus where the time goes
    .venv/bin/python -m benchmarks.e2e_run --tiny                # a few seconds (smoke test)

The machine is shared: absolute rates move by tens of percent between runs. The ratio of each
round, the CPU microseconds per request (robust to neighbours) and the machine's busy share
beside our processes' share are the figures to read.
"""

from __future__ import annotations

import argparse
import collections
import csv
import itertools
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STOCK_ENV = "PORTAL_E2E_STOCK_LOCUSTFILE"
TARGET_RPS_2_CORES = 5000.0  # the target for mixed journeys on this 2-core machine
NATIONAL_PEAK_RPS = 7000.0  # the portal's published peak (docs/workload-model.md)
MAX_FAILURE_RATIO = 0.01
GROWTH = 1.03  # a step must beat the best so far by 3 % to count as growth
FLAT_STEPS = 2  # steps in a row without growth that end a ladder
SAMPLE_EVERY_S = 0.25
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
RUN_GRACE_S = 90.0  # beyond the run's duration: start-up, stop timeout, results and report
# A Locust worker above this share of a core is flagged by the harness itself (its latencies
# may be inflated); the projection leaves the same headroom on every core.
CORE_BUSY = 0.8

if os.environ.get(STOCK_ENV) == "1":
    # Imported by ``locust -f`` for the stock side: the plainest FastHttpUser there is.
    from locust import FastHttpUser, task

    class HelloUser(FastHttpUser):
        @task
        def hello(self) -> None:
            self.client.get("/")


# -- process tree sampling -------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds: utime + stime) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kind(cmdline: str) -> str | None:
    if "mock_portal" in cmdline or "hello_server" in cmdline:
        return "mock"
    if "--worker" in cmdline:  # before --master: a worker names --master-host
        return "worker"
    if "--master" in cmdline:
        return "master"
    if "prometheus" in cmdline or "py-spy" in cmdline:
        return "other"
    return None


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


class TreeSampler(threading.Thread):
    """Samples the CPU time of a process and all its descendants, by kind, until stopped.

    A descendant's kind comes from its command line (mock, master, worker) or else from its
    nearest ancestor with one (the mock's spawned workers, ``locust --processes`` children);
    the root's own kind is ``root_kind``.
    """

    def __init__(self, root_pid: int, root_kind: str, others: dict[int, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.kinds: dict[int, str] = {**(others or {}), root_pid: root_kind}
        self.samples: dict[int, list[tuple[float, float]]] = collections.defaultdict(list)
        self.machine: list[tuple[float, float, float]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)

    def sample(self) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                got = _stat(int(entry))
                if got is not None:
                    parents[int(entry)], cpu[int(entry)] = got
        now = time.time()
        for pid in sorted(cpu):  # parents before children, almost always
            self._classify(pid, parents)
            if pid in self.kinds:
                self.samples[pid].append((now, cpu[pid]))
        self.machine.append((now, *_machine_busy_s()))

    def _classify(self, pid: int, parents: dict[int, int]) -> None:
        if pid in self.kinds:
            return
        chain = [pid]
        while chain[-1] not in self.kinds:
            parent = parents.get(chain[-1], 0)
            if parent <= 1 or len(chain) > 32:
                return  # not ours
            chain.append(parent)
        inherited = self.kinds[chain[-1]]
        for p in reversed(chain[:-1]):
            inherited = _kind(_cmdline(p)) or inherited
            self.kinds[p] = inherited

    def pids(self, kind: str) -> list[int]:
        return [p for p, k in self.kinds.items() if k == kind and self.samples.get(p)]

    def cpu_s(self, kind: str, start: float, end: float) -> float:
        return sum(_at(self.samples[p], end) - _at(self.samples[p], start) for p in self.pids(kind))

    def machine_busy(self, start: float, end: float) -> float:
        """The whole machine's busy share of its cores in [start, end] (neighbours included)."""
        busy = [(t, b) for t, b, _ in self.machine]
        total = [(t, a) for t, _, a in self.machine]
        spent = _at(total, end) - _at(total, start)
        return (_at(busy, end) - _at(busy, start)) / spent if spent > 0 else 0.0


def _at(series: list[tuple[float, float]], t: float) -> float:
    """A cumulative series at time ``t``, linear between samples, clamped at both ends."""
    if not series:
        return 0.0
    if t <= series[0][0]:
        return series[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(series):
        if t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return series[-1][1]


# -- one step of the ladder ------------------------------------------------------------------


@dataclass
class Step:
    """One measured run: its load, its figures and CPU microseconds per request by kind."""

    label: str
    users: int
    mock_workers: int
    workers: int
    exit_code: int
    rps: float = 0.0  # steady window
    summary_rps: float = 0.0  # summary.json, the whole run (ramp-up included)
    requests: int = 0
    failure_ratio: float = 0.0
    window_s: float = 0.0
    cpu_us: dict[str, float] = field(default_factory=dict)  # per request, by process kind
    core_share: dict[str, float] = field(default_factory=dict)  # cores busy, by kind
    machine_busy: float = 0.0  # share of all cores busy, neighbours included
    flags: list[str] = field(default_factory=list)
    run_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code in (0, 4) and self.requests > 0

    @property
    def generator_us(self) -> float:
        return sum(self.cpu_us.get(k, 0.0) for k in ("master", "worker", "root"))

    def line(self) -> str:
        us = " ".join(f"{k} {v:.0f}" for k, v in sorted(self.cpu_us.items()))
        cores = " ".join(f"{k} {v:.2f}" for k, v in sorted(self.core_share.items()))
        return (
            f"{self.label:<8} users {self.users:>5}: {self.rps:7.0f} req/s steady "
            f"({self.summary_rps:.0f} over the run), failures {100 * self.failure_ratio:.2f} %, "
            f"exit {self.exit_code}; CPU us/req: {us}; cores: {cores}; "
            f"machine busy {100 * self.machine_busy:.0f} %"
        )


def _portal_load() -> str:
    candidate = Path(sys.executable).parent / "portal-load"
    return str(candidate) if candidate.exists() else (shutil.which("portal-load") or "portal-load")


def ours_command(
    users: int, mock_workers: int, workers: int, args: argparse.Namespace, think_scale: float = -1
) -> list[str]:
    think_scale = args.think_scale if think_scale < 0 else think_scale
    return [
        _portal_load(), "run", "--duration", f"{args.step_seconds}s",
        "--users", str(users), "--spawn-rate", str(users),
        "--think-scale", f"{think_scale:g}",
        "--workers", str(workers), "--mock-workers", str(mock_workers),
        "--no-tty", "--out", str(args.workdir / "results"),
    ]  # fmt: skip


def run_ours(
    users: int, mock_workers: int, workers: int, args: argparse.Namespace, think_scale: float = -1
) -> Step:
    cmd = ours_command(users, mock_workers, workers, args, think_scale)
    log = args.workdir / f"ours-{mock_workers}m{workers}w-{users}u-{time.time_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, "root")
        sampler.start()
        try:
            code = proc.wait(timeout=args.step_seconds + RUN_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # the harness stops its children in order
            code = proc.wait(timeout=60)
        finally:
            sampler.stop()
    step = Step(f"{mock_workers}m+{workers}w", users, mock_workers, workers, code)
    match = re.search(r"-> (\S+)", log.read_text())
    if not match or not (Path(match.group(1)) / "summary.json").exists():
        step.flags.append(f"no results; see {log}")
        return step
    run_dir = Path(match.group(1))
    step.run_dir = str(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    total = summary.get("total", {})
    step.summary_rps = float(total.get("rps", 0.0))
    step.failure_ratio = float(total.get("failure_ratio", 0.0))
    step.flags = list(summary.get("checks", {}).get("flags", []))
    rows = _steady_rows(run_dir / "timeseries.csv", summary)
    if rows:
        start = float(rows[0]["interval_start_unix_s"])
        end = float(rows[-1]["interval_start_unix_s"]) + float(rows[-1]["duration_s"])
        requests = sum(int(r["requests"]) for r in rows)
        failures = sum(int(r["failures"]) for r in rows)
        step.failure_ratio = max(step.failure_ratio, failures / requests if requests else 0.0)
    else:  # a run too short for a steady interval: the whole run
        start, end = float(summary["start_unix_s"]), float(summary["end_unix_s"])
        requests = int(total.get("count", 0))
    _account(step, sampler, start, end, requests)
    return step


def _steady_rows(path: Path, summary: dict[str, Any]) -> list[dict[str, str]]:
    """Whole intervals inside the measured run, after its first one (users still starting)."""
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    start, end = float(summary["start_unix_s"]), float(summary["end_unix_s"])
    interval_s = float(summary.get("interval_s", 2.0))
    inside = [
        r
        for r in rows
        if float(r["interval_start_unix_s"]) >= start - 0.5
        and float(r["interval_start_unix_s"]) + float(r["duration_s"]) <= end + 0.5
        and float(r["duration_s"]) >= 0.9 * interval_s
        and int(r["requests"]) > 0
    ]
    return inside[1:]


def _account(step: Step, sampler: TreeSampler, start: float, end: float, requests: int) -> None:
    step.window_s = max(end - start, 1e-9)
    step.requests = requests
    step.rps = requests / step.window_s
    for kind in ("mock", "master", "worker", "root", "other"):
        cpu = sampler.cpu_s(kind, start, end)
        if cpu > 0 or sampler.pids(kind):
            step.cpu_us[kind] = 1e6 * cpu / requests if requests else 0.0
            step.core_share[kind] = cpu / step.window_s
    step.machine_busy = sampler.machine_busy(start, end)


# -- stock Locust ----------------------------------------------------------------------------


def start_hello(workdir: Path) -> tuple[subprocess.Popen, str]:
    log = workdir / "hello.log"
    out = log.open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.hello_server", "--port", "0"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        match = READY.search(log.read_text())
        if match:
            return proc, match.group(1)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"hello server did not start: {log.read_text()[-2000:]}")


def stock_command(host: str, prefix: Path, args: argparse.Namespace) -> list[str]:
    users = args.stock_users
    return [
        sys.executable, "-m", "locust", "-f", str(Path(__file__).resolve()),
        "--processes", "2", "--headless", "--only-summary", "--loglevel", "WARNING",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{args.step_seconds}s",
        "--csv", str(prefix), "--csv-full-history",
    ]  # fmt: skip


def run_stock(host: str, hello_pid: int, args: argparse.Namespace) -> Step:
    prefix = args.workdir / f"stock-{time.time_ns()}"
    env = {**os.environ, STOCK_ENV: "1", "PYTHONPATH": str(ROOT)}
    # Run outside the repository so no locust.conf or pyproject settings leak in.
    proc = subprocess.Popen(
        stock_command(host, prefix, args), cwd=args.workdir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sampler = TreeSampler(proc.pid, "master", {hello_pid: "mock"})
    sampler.start()
    try:
        code = proc.wait(timeout=args.step_seconds + RUN_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        sampler.stop()
    # The forked workers of --processes share the master's command line.
    for pid, kind in list(sampler.kinds.items()):
        if kind == "master" and pid != sampler.root_pid:
            sampler.kinds[pid] = "worker"
    step = Step("stock", args.stock_users, 1, 2, code)
    step.exit_code = 0 if code in (0, 1) else code  # 1: locust's "there were failures"
    history = Path(f"{prefix}_stats_history.csv")
    if not history.exists():
        step.flags.append("no locust statistics")
        return step
    with history.open() as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    rows = [r for r in rows if int(r["Total Request Count"]) > 0]
    stats = Path(f"{prefix}_stats.csv")
    with stats.open() as f:
        agg = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    step.summary_rps = float(agg["Requests/s"])
    count = int(agg["Request Count"])
    step.failure_ratio = int(agg["Failure Count"]) / count if count else 0.0
    steady = rows[2:] if len(rows) > 3 else rows  # the first seconds: users starting
    if len(steady) >= 2:
        first, last = steady[0], steady[-1]
        start, end = float(first["Timestamp"]), float(last["Timestamp"])
        requests = int(last["Total Request Count"]) - int(first["Total Request Count"])
    else:
        start, end, requests = sampler.machine[0][0], sampler.machine[-1][0], count
    _account(step, sampler, start, end, requests)
    return step


# -- the benchmark ---------------------------------------------------------------------------


def ladder(mock_workers: int, workers: int, args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []
    best, flat = 0.0, 0
    for users in args.users:
        step = run_ours(users, mock_workers, workers, args)
        steps.append(step)
        print(step.line(), flush=True)
        if not step.ok or step.failure_ratio >= MAX_FAILURE_RATIO:
            break
        # One flat step can be a neighbour's burst on this shared machine; two end the ladder.
        flat = flat + 1 if step.rps < best * GROWTH else 0
        if flat >= FLAT_STEPS:
            break
        best = max(best, step.rps)
    return steps


def peak_of(steps: list[Step]) -> Step | None:
    good = [s for s in steps if s.ok and s.failure_ratio < MAX_FAILURE_RATIO]
    return max(good, key=lambda s: s.rps) if good else None


def calibrate(peak: Step, capacity_rps: float, args: argparse.Namespace) -> dict[str, Any]:
    """Requests per second of one user at ``--calibrate-think-scale``, and the users that load
    the machine to half of the capacity measured above (the default campaign's size)."""
    scale = args.calibrate_think_scale
    step = run_ours(args.calibrate_users, peak.mock_workers, peak.workers, args, scale)
    step.label = f"think {scale:g}"
    print(step.line(), flush=True)
    per_user = step.rps / step.users if step.users else 0.0
    users = int(0.5 * capacity_rps / per_user) if per_user else 0
    return {
        "step": asdict(step),
        "think_scale": scale,
        "rps_per_user": per_user,
        "half_capacity_users": users,
    }


def cores_for(rps: float, us_per_request: float) -> float:
    return rps * us_per_request / 1e6 / CORE_BUSY


def projection(peak: Step) -> dict[str, float]:
    """Cores for the national peak: the mock and the Locust workers scale with requests; the
    master and the harness cost about the same at any rate (they merge and render reports every
    interval), so their cores at the peak step are carried over as they are."""
    mock_us, worker_us = peak.cpu_us.get("mock", 0.0), peak.cpu_us.get("worker", 0.0)
    fixed_cores = peak.core_share.get("master", 0.0) + peak.core_share.get("root", 0.0)
    mock_cores = math.ceil(cores_for(NATIONAL_PEAK_RPS, mock_us))
    gen_cores = math.ceil(cores_for(NATIONAL_PEAK_RPS, worker_us) + fixed_cores / CORE_BUSY)
    per_request_us = mock_us + peak.generator_us
    return {
        "mock_us": mock_us,
        "generator_us": peak.generator_us,
        "worker_us": worker_us,
        "fixed_cores": fixed_cores,
        "mock_cores": mock_cores,
        "generator_cores": gen_cores,
        "cores": mock_cores + gen_cores,
        "two_core_cpu_ceiling_rps": 2e6 / per_request_us if per_request_us else 0.0,
    }


def profile(peak: Step, args: argparse.Namespace) -> dict[str, list[tuple[str, float, float]]]:
    """A run at the peak with py-spy on the mock and one worker; top functions of each."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        print("profile: py-spy is not installed in the virtualenv", flush=True)
        return {}
    cmd = ours_command(peak.users, peak.mock_workers, peak.workers, args)
    cmd[cmd.index("--duration") + 1] = f"{args.profile_seconds + 10}s"
    log = args.workdir / "profile-run.log"
    found: dict[str, list[tuple[str, float, float]]] = {}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, "root")
        sampler.start()
        time.sleep(8)  # start-up and ramp
        spies = {}
        for kind in ("mock", "worker", "master", "root"):
            pids = sorted(sampler.pids(kind))
            if kind == "mock" and len(pids) > 1:
                pids = pids[1:]  # the supervisor idles; profile its first worker
            if pids:
                raw = args.workdir / f"profile-{kind}.txt"
                spies[kind] = (_py_spy(pyspy, pids[0], args.profile_seconds, raw), raw)
        for kind, (spy, raw) in spies.items():
            spy.wait(timeout=args.profile_seconds + 60)
            if raw.exists():
                found[kind] = top_functions(raw)
                if args.profile_out:
                    args.profile_out.mkdir(parents=True, exist_ok=True)
                    shutil.copy(raw, args.profile_out / raw.name)
        proc.wait(timeout=args.profile_seconds + RUN_GRACE_S)
        sampler.stop()
    return found


def _py_spy(pyspy: Path, pid: int, seconds: int, raw: Path) -> subprocess.Popen:
    argv = [str(pyspy), "record", "--pid", str(pid), "--duration", str(seconds),
            "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def top_functions(raw: Path, limit: int = 12) -> list[tuple[str, float, float]]:
    """(function, own share, share under it) from py-spy's collapsed stacks, by own time."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_short(f) for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        n = int(count)
        total += n
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            under[frame] += n
    if not total:
        return []
    return [(f, n / total, under[f] / total) for f, n in own.most_common(limit)]


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    match = re.match(r"(.*) \((?:.*/)?([^/:]+)(?::\d+)?\)$", frame.strip())
    return f"{match.group(1)} ({match.group(2)})" if match else frame.strip()


def print_report(report: dict[str, Any]) -> None:
    peak, proj = report["peak"], report["projection"]
    print()
    print(
        f"peak mixed journeys: {peak['rps']:.0f} req/s at {peak['users']} users, "
        f"think-scale {report['think_scale']:g}, {peak['mock_workers']} mock worker(s) + "
        f"{peak['workers']} Locust worker(s), failures {100 * peak['failure_ratio']:.2f} %"
    )
    for r in report["rounds"]:
        print(
            f"round {r['round']}: ours {r['ours']:.0f} req/s, stock {r['stock']:.0f} req/s, "
            f"ratio {r['ratio']:.2f}"
        )
    print(f"stock locust (--processes 2, FastHttpUser GET /): {report['stock_rps']:.0f} req/s")
    print(f"ours (portal-load run, mixed journeys): {report['ours_rps']:.0f} req/s")
    print(f"ratio ours/stock: {report['ratio']:.2f} (median of rounds)")
    print(
        f"CPU per request: mock {proj['mock_us']:.0f} us, generator {proj['generator_us']:.0f} us "
        f"(workers {proj['worker_us']:.0f} us + master and harness, {proj['fixed_cores']:.2f} "
        f"cores at any rate); stock: server {report['stock_cpu_us'].get('mock', 0):.0f} us, "
        f"generator {report['stock_generator_us']:.0f} us"
    )
    print(
        f"projection: {NATIONAL_PEAK_RPS:.0f} req/s of mixed journeys needs "
        f"{proj['mock_cores']} mock cores + {proj['generator_cores']} generator cores = "
        f"{proj['cores']} cores (each {100 * CORE_BUSY:.0f} % busy)"
    )
    print(
        f"CPU ceiling of 2 cores: {proj['two_core_cpu_ceiling_rps']:.0f} req/s "
        "(2 CPU-seconds per second over the CPU per request, with no neighbours)"
    )
    print(
        "projection measured on this 2-core machine only: no 16-core device machine was "
        "available to this benchmark"
    )
    met = "met" if peak["rps"] >= TARGET_RPS_2_CORES else "NOT met"
    print(f"target {TARGET_RPS_2_CORES:.0f} req/s on 2 cores: {met} ({peak['rps']:.0f} req/s)")
    default = report.get("default_load")
    if default:
        print(
            f"default load: {default['rps_per_user']:.2f} req/s per user at think-scale "
            f"{default['think_scale']:g}; half of {report['ours_rps']:.0f} req/s is "
            f"{default['half_capacity_users']} users at think-scale {default['think_scale']:g}"
        )
    for kind, rows in report.get("profile", {}).items():
        print(f"profile {kind}: top functions by own time (own %, under it %)")
        for name, own, under in rows:
            print(f"  {100 * own:5.1f} % {100 * under:5.1f} %  {name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users", type=lambda s: [int(u) for u in s.split(",")],
        default=[25, 50, 100, 200, 400, 800], help="the ladder's steps (comma-separated)",
    )  # fmt: skip
    parser.add_argument(
        "--splits", type=lambda s: [tuple(int(n) for n in p.split(":")) for p in s.split(",")],
        default=[(1, 1), (1, 2)], help="MOCK_WORKERS:LOCUST_WORKERS pairs to try",
    )  # fmt: skip
    parser.add_argument("--step-seconds", type=int, default=20, help="duration of each run")
    parser.add_argument("--think-scale", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=2, help="stock/ours alternations")
    parser.add_argument("--stock-users", type=int, default=100)
    parser.add_argument(
        "--calibrate-users", type=int, default=300,
        help="users of a run that sizes the default campaign (0: none)",
    )  # fmt: skip
    parser.add_argument("--calibrate-think-scale", type=float, default=0.05)
    parser.add_argument("--profile-seconds", type=int, default=0, help="0: no profile")
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--tiny", action="store_true", help="one short step (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tiny:
        args.users, args.splits, args.step_seconds = [20], [(1, 1)], 6
        args.rounds, args.stock_users, args.profile_seconds = 1, 10, 0
        args.calibrate_users = 0
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        args.workdir = Path(tmp)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print("ladder: " + " ".join(ours_command(args.users[0], 1, 1, args)[1:-2]) + " ...")
        steps: list[Step] = []
        for mock_workers, workers in args.splits:
            steps += ladder(mock_workers, workers, args)
        peak = peak_of(steps)
        if peak is None:
            print("no step held < 1 % failures", flush=True)
            return 1
        hello, host = start_hello(args.workdir)
        rounds, stock_steps, ours_steps = [], [], [peak]
        try:
            for n in range(args.rounds):
                stock = run_stock(host, hello.pid, args)
                print(stock.line(), flush=True)
                again = run_ours(peak.users, peak.mock_workers, peak.workers, args)
                print(again.line(), flush=True)
                stock_steps.append(stock)
                ours_steps.append(again)
                ratio = again.rps / stock.rps if stock.rps else 0.0
                rounds.append(
                    {"round": n + 1, "ours": again.rps, "stock": stock.rps, "ratio": ratio}
                )
        finally:
            hello.terminate()
            hello.wait(timeout=15)
        # The peak's CPU per request: the median of its runs (ladder step and rounds).
        held = [s for s in ours_steps if s.ok and s.requests]
        peak_cpu = Step(**{**asdict(peak), "cpu_us": {
            k: statistics.median(s.cpu_us.get(k, 0.0) for s in held) for k in peak.cpu_us
        }})  # fmt: skip
        stock_cpu = {
            k: statistics.median(s.cpu_us.get(k, 0.0) for s in stock_steps)
            for k in stock_steps[0].cpu_us
        }
        report: dict[str, Any] = {
            "think_scale": args.think_scale,
            "command": ours_command(peak.users, peak.mock_workers, peak.workers, args),
            "stock_command": stock_command("HOST", Path("PREFIX"), args),
            "steps": [asdict(s) for s in steps],
            "peak": asdict(peak),
            "rounds": rounds,
            "ours_rps": statistics.median(r["ours"] for r in rounds),
            "stock_rps": statistics.median(r["stock"] for r in rounds),
            "ratio": statistics.median(r["ratio"] for r in rounds),
            "stock_cpu_us": stock_cpu,
            "stock_generator_us": stock_cpu.get("master", 0.0) + stock_cpu.get("worker", 0.0),
            "stock_steps": [asdict(s) for s in stock_steps],
            "projection": projection(peak_cpu),
        }
        if args.calibrate_users:
            report["default_load"] = calibrate(peak, report["ours_rps"], args)
        if args.profile_seconds:
            report["profile"] = profile(peak, args)
        print_report(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
