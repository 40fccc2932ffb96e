"""The whole ``portal-load run`` beside stock Locust on this machine, in one benchmark.

Rounds alternate the two sides (stock, ours, stock, ours, ...; at least 3 by default) so that
each round's ratio ours/stock shares its machine conditions; the figure is the median ratio:

- **ours**: the real ``portal-load run`` command (embedded mock, Locust master, workers,
  exporter, results, live checks, all on) with the default mix of citizen journeys, think
  times off;
- **stock**: ``locust --processes N`` with the plainest ``FastHttpUser`` (``GET /``) against
  ``benchmarks/hello_server.py``, a bare aiohttp hello-world.

Both sides follow one rule: the same users, the same duration, the same warm-up cut from the
front of the run, one server process (the mock, the hello-world), N Locust worker processes
(``--workers``, one per core: 2 on 2 cores) and one master. Above two cores both sides are
placed alike (:func:`harness.system.placement`: the master and the harness on the first
core, servers and workers on the others); on two cores the OS places both.

During every run a sampler reads ``/proc/<pid>/stat`` of the whole process tree of each side
(mock or hello-world, master, workers, the harness): CPU seconds per request of each group in
the steady window. Their inverse is the rate one core of a mock or of a worker sustains, and
with it the cores the national peak needs (7,000 req/s with 30 % headroom: 9,100 req/s)::

    .venv/bin/python -m benchmarks.e2e_run                       # 3 rounds of 15 s, < 4 min
    .venv/bin/python -m benchmarks.e2e_run --rounds 5 --json /tmp/e2e.json
    .venv/bin/python -m benchmarks.e2e_run --ladder 25,50,100,200  # users of the rounds: peak
    .venv/bin/python -m benchmarks.e2e_run --profile-seconds 15  # plus where the time goes
    .venv/bin/python -m benchmarks.e2e_run --quick               # seconds (smoke test)

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

from harness.system import Placement, pin, placement

ROOT = Path(__file__).resolve().parent.parent
STOCK_ENV = "PORTAL_E2E_STOCK_LOCUSTFILE"
TARGET_RATIO = 1.0  # ours (mixed journeys, whole run) at least as fast as stock Locust
NATIONAL_PEAK_RPS = 7000.0  # the portal's published peak (docs/workload-model.md)
HEADROOM = 1.3  # the cores of the peak are sized for 30 % more
MAX_FAILURE_RATIO = 0.01
GROWTH = 1.03  # a step must beat the best so far by 3 % to count as growth
FLAT_STEPS = 2  # steps in a row without growth that end a ladder
SAMPLE_EVERY_S = 0.25
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
RUN_GRACE_S = 90.0  # beyond the run's duration: start-up, stop timeout, results and report
GROUPS = ("mock", "worker", "master", "harness")  # process groups, each with its CPU/request

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

    def __init__(
        self,
        root_pid: int,
        root_kind: str,
        others: dict[int, str] | None = None,
        on_new: Any = None,
    ) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.on_new = on_new  # called with (pid, kind) for each process found below the root
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
            if self.on_new is not None:
                self.on_new(p, inherited)

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


# -- one run of either side ------------------------------------------------------------------


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
        return sum(self.cpu_us.get(k, 0.0) for k in ("master", "worker", "harness"))

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


def ours_command(users: int, args: argparse.Namespace, think_scale: float = -1) -> list[str]:
    """The whole run: one mock process, ``--workers`` Locust workers (the harness places them)."""
    think_scale = args.think_scale if think_scale < 0 else think_scale
    return [
        _portal_load(), "run", "--duration", f"{args.step_seconds}s",
        "--users", str(users), "--spawn-rate", str(users),
        "--think-scale", f"{think_scale:g}",
        "--workers", str(args.workers), "--mock-workers", "1",
        "--no-tty", "--out", str(args.workdir / "results"),
    ]  # fmt: skip


def run_ours(users: int, args: argparse.Namespace, think_scale: float = -1) -> Step:
    cmd = ours_command(users, args, think_scale)
    log = args.workdir / f"ours-{users}u-{time.time_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, "harness")
        sampler.start()
        try:
            code = proc.wait(timeout=args.step_seconds + RUN_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # the harness stops its children in order
            code = proc.wait(timeout=60)
        finally:
            sampler.stop()
    step = Step("ours", users, 1, args.workers, code)
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
    rows = _steady_rows(run_dir / "timeseries.csv", summary, args.warmup_seconds)
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


def _steady_rows(path: Path, summary: dict[str, Any], warmup_s: float) -> list[dict[str, str]]:
    """Whole intervals inside the measured run that start ``warmup_s`` or more after it."""
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    start, end = float(summary["start_unix_s"]), float(summary["end_unix_s"])
    interval_s = float(summary.get("interval_s", 2.0))
    return [
        r
        for r in rows
        if float(r["interval_start_unix_s"]) >= start + warmup_s - 0.5
        and float(r["interval_start_unix_s"]) + float(r["duration_s"]) <= end + 0.5
        and float(r["duration_s"]) >= 0.9 * interval_s
        and int(r["requests"]) > 0
    ]


def _account(step: Step, sampler: TreeSampler, start: float, end: float, requests: int) -> None:
    step.window_s = max(end - start, 1e-9)
    step.requests = requests
    step.rps = requests / step.window_s
    for kind in (*GROUPS, "other"):
        cpu = sampler.cpu_s(kind, start, end)
        if cpu > 0 or sampler.pids(kind):
            step.cpu_us[kind] = 1e6 * cpu / requests if requests else 0.0
            step.core_share[kind] = cpu / step.window_s
    step.machine_busy = sampler.machine_busy(start, end)


# -- stock Locust ----------------------------------------------------------------------------


def start_hello(workdir: Path, plan: Placement) -> tuple[subprocess.Popen, str]:
    """The hello-world, one process, on the cores of the mock (``plan.hot``; None: anywhere)."""
    log = workdir / "hello.log"
    out = log.open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.hello_server", "--port", "0"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pin(proc.pid, plan.hot)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        match = READY.search(log.read_text())
        if match:
            return proc, match.group(1)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"hello server did not start: {log.read_text()[-2000:]}")


def stock_command(host: str, prefix: Path, users: int, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(Path(__file__).resolve()),
        "--processes", str(args.workers), "--headless", "--only-summary", "--loglevel", "WARNING",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{args.step_seconds}s",
        "--csv", str(prefix), "--csv-full-history",
    ]  # fmt: skip


def run_stock(host: str, hello_pid: int, users: int, args: argparse.Namespace) -> Step:
    prefix = args.workdir / f"stock-{time.time_ns()}"
    env = {**os.environ, STOCK_ENV: "1", "PYTHONPATH": str(ROOT)}
    plan: Placement = args.placement
    # Run outside the repository so no locust.conf or pyproject settings leak in.
    proc = subprocess.Popen(
        stock_command(host, prefix, users, args), cwd=args.workdir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Placed as portal-load places its own (harness.system.placement): the master on the cold
    # core, its forked workers (found by the sampler within a quarter of a second) on the hot.
    pin(proc.pid, plan.cold)

    def place(pid: int, kind: str) -> None:
        if kind == "master" and pid != proc.pid:
            pin(pid, plan.hot)

    sampler = TreeSampler(proc.pid, "master", {hello_pid: "mock"}, on_new=place)
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
    step = Step("stock", users, 1, args.workers, code)
    step.exit_code = 0 if code in (0, 1) else code  # 1: locust's "there were failures"
    history = Path(f"{prefix}_stats_history.csv")
    if not history.exists():
        step.flags.append("no locust statistics")
        return step
    with history.open() as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    stats = Path(f"{prefix}_stats.csv")
    with stats.open() as f:
        agg = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    step.summary_rps = float(agg["Requests/s"])
    count = int(agg["Request Count"])
    step.failure_ratio = int(agg["Failure Count"]) / count if count else 0.0
    # The same warm-up as ours: rows from ``warmup_seconds`` after the first (the test's start).
    t0 = float(rows[0]["Timestamp"]) if rows else 0.0
    steady = [r for r in rows if float(r["Timestamp"]) >= t0 + args.warmup_seconds]
    if len(steady) >= 2:
        first, last = steady[0], steady[-1]
        start, end = float(first["Timestamp"]), float(last["Timestamp"])
        requests = int(last["Total Request Count"]) - int(first["Total Request Count"])
    else:
        start, end, requests = sampler.machine[0][0], sampler.machine[-1][0], count
    _account(step, sampler, start, end, requests)
    return step


def profile(users: int, args: argparse.Namespace) -> dict[str, list[tuple[str, float, float]]]:
    """A run of ``users`` with py-spy on the mock and one worker; top functions of each."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        print("profile: py-spy is not installed in the virtualenv", flush=True)
        return {}
    cmd = ours_command(users, args)
    cmd[cmd.index("--duration") + 1] = f"{args.profile_seconds + 10}s"
    log = args.workdir / "profile-run.log"
    found: dict[str, list[tuple[str, float, float]]] = {}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, "harness")
        sampler.start()
        time.sleep(8)  # start-up and ramp
        spies = {}
        for kind in ("mock", "worker", "master", "harness"):
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


# -- the benchmark ---------------------------------------------------------------------------


def ladder(args: argparse.Namespace) -> list[Step]:
    """Our side alone at each of ``--ladder``'s users, until failures reach 1 % or the rate
    stops growing: its best step gives the users of the rounds."""
    steps: list[Step] = []
    best, flat = 0.0, 0
    for users in args.ladder:
        step = run_ours(users, args)
        step.label = "ladder"
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


def calibrate(capacity_rps: float, args: argparse.Namespace) -> dict[str, Any]:
    """Requests per second of one user at ``--calibrate-think-scale``, and the users that load
    the machine to half of the capacity measured above (the default campaign's size)."""
    scale = args.calibrate_think_scale
    step = run_ours(args.calibrate_users, args, scale)
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


def median_cpu(steps: list[Step]) -> dict[str, float]:
    """CPU microseconds per request of each process group: the median over ``steps``."""
    held = [s for s in steps if s.ok and s.requests]
    kinds = sorted({k for s in held for k in s.cpu_us})
    return {k: statistics.median(s.cpu_us.get(k, 0.0) for s in held) for k in kinds}


def median_cores(steps: list[Step]) -> dict[str, float]:
    held = [s for s in steps if s.ok and s.requests]
    kinds = sorted({k for s in held for k in s.core_share})
    return {k: statistics.median(s.core_share.get(k, 0.0) for s in held) for k in kinds}


def per_core(cpu_us: dict[str, float], cores: dict[str, float]) -> dict[str, Any]:
    """Requests per second one core sustains for the mock and for a Locust worker (1 / CPU
    seconds per request), and the cores of the national peak with its headroom: mock cores +
    worker cores, each rounded up. The master and the harness cost about the same at any rate
    (they merge and report every interval): their cores are stated as measured, beside."""
    rate = NATIONAL_PEAK_RPS * HEADROOM
    table: dict[str, Any] = {"peak_rps": NATIONAL_PEAK_RPS, "headroom": HEADROOM, "rps": rate}
    for group in ("mock", "worker"):
        us = cpu_us.get(group, 0.0)
        table[f"{group}_cpu_us"] = us
        table[f"{group}_rps_per_core"] = 1e6 / us if us else 0.0
        table[f"{group}_cores_exact"] = rate * us / 1e6
        table[f"{group}_cores"] = math.ceil(rate * us / 1e6)
    table["cores"] = table["mock_cores"] + table["worker_cores"]
    table["master_harness_cores_measured"] = cores.get("master", 0.0) + cores.get("harness", 0.0)
    return table


def print_report(report: dict[str, Any]) -> None:
    table = report["per_core"]
    print()
    print(f"rule: {report['rule']}")
    for r in report["rounds"]:
        print(
            f"round {r['round']}: ours {r['ours']:.0f} req/s, stock {r['stock']:.0f} req/s, "
            f"ratio {r['ratio']:.2f}; CPU per request ours {r['ours_cpu_us']:.0f} us, stock "
            f"{r['stock_cpu_us']:.0f} us, ratio {r['cpu_ratio']:.2f}"
        )
    print(
        f"stock locust (--processes {report['workers']}, FastHttpUser GET /): "
        f"{report['stock_rps']:.0f} req/s (median)"
    )
    print(f"ours (portal-load run, mixed journeys): {report['ours_rps']:.0f} req/s (median)")
    met = "met" if report["ratio"] >= TARGET_RATIO else "NOT met"
    print(
        f"ratio ours/stock: {report['ratio']:.2f} (median of {len(report['rounds'])} rounds; "
        f"target >= {TARGET_RATIO:.1f}: {met})"
    )
    print(
        f"ratio by CPU per request (stock's / ours, all processes): {report['cpu_ratio']:.2f} "
        "(median; the req/s ratio when both sides are CPU-bound on cores of their own)"
    )
    ours, stock = report["cpu_us"], report["stock_cpu_us"]
    print(
        "CPU per request, ours: "
        + ", ".join(f"{g} {ours.get(g, 0.0):.0f} us" for g in GROUPS)
        + f" (total {sum(ours.get(g, 0.0) for g in GROUPS):.0f} us)"
    )
    print(
        f"CPU per request, stock: server {stock.get('mock', 0.0):.0f} us, "
        f"worker {stock.get('worker', 0.0):.0f} us, master {stock.get('master', 0.0):.0f} us"
    )
    print("per core (1 / CPU-seconds per request, median of rounds):")
    for group in ("mock", "worker"):
        print(
            f"  {group:<6} {table[f'{group}_cpu_us']:6.0f} us/request -> "
            f"{table[f'{group}_rps_per_core']:7.0f} req/s per core"
        )
    print(
        f"  master + harness: {table['master_harness_cores_measured']:.2f} cores at "
        f"{report['ours_rps']:.0f} req/s (about the same at any rate)"
    )
    print(
        f"national peak {NATIONAL_PEAK_RPS:.0f} req/s x {HEADROOM:g} = {table['rps']:.0f} req/s "
        f"needs {table['mock_cores']} mock cores ({table['mock_cores_exact']:.2f}) + "
        f"{table['worker_cores']} worker cores ({table['worker_cores_exact']:.2f}) = "
        f"{table['cores']} cores, and 1 core beside for the master and the harness"
    )
    print(
        f"measured on this machine ({report['machine']['cores']} cores, load average "
        f"{report['machine']['load_average']:.1f} at the start, shared): the ratios and the CPU "
        "per request are the figures to read"
    )
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


def _users_list(text: str) -> list[int]:
    return [int(u) for u in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e_run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, help="stock/ours alternations (default 3)")
    parser.add_argument("--step-seconds", type=int, default=15, help="duration of each run")
    parser.add_argument(
        "--warmup-seconds", type=float, default=4.0,
        help="cut from the front of every run of both sides (users starting)",
    )  # fmt: skip
    parser.add_argument("--users", type=int, default=100, help="users of both sides")
    parser.add_argument(
        "--workers", type=int, default=placement().default_workers(1),
        help="Locust worker processes of both sides (default: one per core)",
    )  # fmt: skip
    parser.add_argument("--think-scale", type=float, default=0.0)
    parser.add_argument(
        "--ladder", type=_users_list, default=[],
        help="users of steps of ours before the rounds; the best gives the rounds' users",
    )  # fmt: skip
    parser.add_argument(
        "--calibrate-users", type=int, default=0,
        help="users of a run that sizes the default campaign (0: none)",
    )  # fmt: skip
    parser.add_argument("--calibrate-think-scale", type=float, default=0.05)
    parser.add_argument("--profile-seconds", type=int, default=0, help="0: no profile")
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--quick", "--tiny", action="store_true",
        help="runs of 6 s, 10 users, 2 rounds unless --rounds (smoke test)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.step_seconds, args.warmup_seconds, args.users = 6, 2.0, 10
        args.rounds = args.rounds or 2
        args.ladder, args.calibrate_users, args.profile_seconds = [], 0, 0
    args.rounds = args.rounds or 3
    if args.rounds < 1 or args.workers < 1 or args.warmup_seconds >= args.step_seconds:
        parser.error("--rounds and --workers must be >= 1, --warmup-seconds < --step-seconds")
    args.placement = placement()
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        args.workdir = Path(tmp)
        plan = args.placement
        where = (
            f"servers and workers on cores {sorted(plan.hot)}, master and harness on "
            f"{sorted(plan.cold)}"
            if plan.pinned and plan.hot is not None and plan.cold is not None
            else "placed by the OS"
        )
        rule = (
            f"both sides: {args.users} users, {args.step_seconds} s, first "
            f"{args.warmup_seconds:g} s cut, 1 server process + {args.workers} Locust workers "
            f"+ 1 master, {where}"
        )
        print(f"machine: {os.cpu_count()} cores, load average {load_average:.1f}")
        print("ours:  " + " ".join(ours_command(args.users, args)[1:-2]))
        print("stock: " + " ".join(stock_command("HOST", Path("PREFIX"), args.users, args)[1:]))
        steps = ladder(args) if args.ladder else []
        users = args.users
        if steps:
            peak = peak_of(steps)
            if peak is None:
                print("no step of the ladder held < 1 % failures", flush=True)
                return 1
            users = peak.users
            rule = rule.replace(f"{args.users} users", f"{users} users (the ladder's peak)")
        hello, host = start_hello(args.workdir, plan)
        rounds, stock_steps, ours_steps = [], [], []
        try:
            for n in range(1, args.rounds + 1):
                stock = run_stock(host, hello.pid, users, args)
                stock.label = f"stock {n}"
                print(stock.line(), flush=True)
                ours = run_ours(users, args)
                ours.label = f"ours {n}"
                print(ours.line(), flush=True)
                stock_steps.append(stock)
                ours_steps.append(ours)
                ratio = ours.rps / stock.rps if stock.rps else 0.0
                # What the req/s ratio is with the machine to itself: CPU per request of
                # every process of each side, stock's over ours (neighbours cancel out).
                ours_us = sum(ours.cpu_us.get(g, 0.0) for g in GROUPS)
                stock_us = sum(stock.cpu_us.get(g, 0.0) for g in GROUPS)
                cpu_ratio = stock_us / ours_us if ours_us else 0.0
                rounds.append({"round": n, "ours": ours.rps, "stock": stock.rps, "ratio": ratio,
                               "ours_cpu_us": ours_us, "stock_cpu_us": stock_us,
                               "cpu_ratio": cpu_ratio})  # fmt: skip
                print(
                    f"round {n}: ratio ours/stock {ratio:.2f} (by CPU per request {cpu_ratio:.2f})",
                    flush=True,
                )
        finally:
            hello.terminate()
            hello.wait(timeout=15)
        if not all(s.ok for s in ours_steps) or not all(s.ok for s in stock_steps):
            print("a run gave no figures; see the lines above", flush=True)
            return 1
        cpu_us = median_cpu(ours_steps)
        report: dict[str, Any] = {
            "machine": {"cores": os.cpu_count(), "load_average": load_average},
            "rule": rule,
            "users": users,
            "workers": args.workers,
            "step_seconds": args.step_seconds,
            "warmup_seconds": args.warmup_seconds,
            "think_scale": args.think_scale,
            "command": ours_command(users, args),
            "stock_command": stock_command("HOST", Path("PREFIX"), users, args),
            "ladder": [asdict(s) for s in steps],
            "rounds": rounds,
            "ours_rps": statistics.median(r["ours"] for r in rounds),
            "stock_rps": statistics.median(r["stock"] for r in rounds),
            "ratio": statistics.median(r["ratio"] for r in rounds),
            "cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
            "cpu_us": cpu_us,
            "stock_cpu_us": median_cpu(stock_steps),
            "per_core": per_core(cpu_us, median_cores(ours_steps)),
            "ours_steps": [asdict(s) for s in ours_steps],
            "stock_steps": [asdict(s) for s in stock_steps],
        }
        if args.calibrate_users:
            report["default_load"] = calibrate(report["ours_rps"], args)
        if args.profile_seconds:
            report["profile"] = profile(users, args)
        print_report(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
