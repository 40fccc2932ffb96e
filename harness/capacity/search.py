"""The measuring half of ``portal-load capacity``: arrival-rate steps against a live target.

It starts the embedded mock (or targets ``host``), a Locust master and its workers running
:class:`scenarios.probes.CapacityProbe` (Poisson arrivals, one ``GET`` each), and then steps the
arrival rate through the probe's control file. Each step is held until it is steady:

- the load generator's ``/live`` totals are read :data:`PHASE_S` after each 2 s boundary of Unix
  time, when every worker has reported the interval that just ended, so a window between two
  scrapes covers whole report intervals and its rate is exact, not chunked;
- after ``settle_s``, a step is *steady* when over its last ``window`` intervals the served
  rate equals the offered one (an open system in equilibrium serves what arrives) and does not
  vary between intervals, both within :data:`STEADY_CV` or three Poisson standard deviations
  (whichever is wider), and the mean latency is not still rising (its second half at most
  :data:`STEADY_RISE` times its first). It is *overloaded* when every interval serves less than
  it is offered and latency rises: the queue grows without bound, and the step ends at once.
  At ``max_hold_s`` a step is measured anyway and marked unsteady;
- the step's figures (throughput, errors, mean and percentile latency from the merged histogram
  buckets, the generator's CPU, dropped and late starts) are those of its last ``window``
  intervals.

The search stops after the SLO was breached (and ``after_breach`` more steps, to see the
plateau), when throughput stops growing with the offered rate, at ``max_rate``, or after
``max_steps``. The analysis is :mod:`harness.capacity.analysis`'s.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.campaign import SearchPlan
from harness.errors import ProcessFailed
from harness.observe.livestats import Sample, quantile, scrape
from harness.processes import Child, child_environment, locust_argv, start_mock
from harness.results.folder import atomic_write
from harness.system import free_port, pin, placement
from harness.units import s_to_ms

REPORT_INTERVAL_S = 2.0  # the workers' report period, cut on Unix-time boundaries
PHASE_S = 1.2  # scrape this long after a boundary: every worker's report has arrived by then
STEADY_CV = 0.10  # relative spread of per-interval throughput within a steady window
STEADY_RISE = 1.5  # the last interval's mean latency over the first one's, still steady
GROWTH_MIN = 0.5  # a step whose throughput grew by less than this share of the offered rise
START_TIMEOUT_S = 60.0  # Locust's start-up and the workers' connection to the master


def describe(step: Mapping[str, Any]) -> str:
    if step.get("users") is not None:
        return f"{step['users']:g} users"
    return f"{step['offered_rps']:g} req/s"


def window_figures(first: Sample, last: Sample) -> dict[str, float]:
    """Throughput, errors and latency between two scrapes (a step's measurement window)."""
    seconds = max(1e-9, last.at - first.at)
    count = last.requests - first.requests
    before = dict(first.buckets)
    delta = tuple((le, max(0.0, c - before.get(le, 0.0))) for le, c in last.buckets)
    mean_s = (last.latency_sum_s - first.latency_sum_s) / count if count > 0 else math.nan
    return {
        "seconds": seconds,
        "requests": count,
        "throughput_rps": count / seconds,
        "error_ratio": (last.failures - first.failures) / count if count > 0 else 0.0,
        "mean_ms": s_to_ms(mean_s),
        "p50_ms": s_to_ms(quantile(0.50, delta)),
        "p90_ms": s_to_ms(quantile(0.90, delta)),
        "p95_ms": s_to_ms(quantile(0.95, delta)),
        "p99_ms": s_to_ms(quantile(0.99, delta)),
        "dropped": last.dropped - first.dropped,
        "late": last.late - first.late,
        "worker_cpu_max": max(last.worker_cpu.values(), default=math.nan),
    }


def classify(intervals: list[dict[str, float]], offered_rps: float | None) -> str | None:
    """``"steady"``, ``"overloaded"``, or None (hold on); see the module docstring.

    ``offered_rps`` None: a closed model (user steps), steady when throughput is flat and
    latency is not rising; it cannot be overloaded (its users wait for their answers).
    """
    rates = [iv["throughput_rps"] for iv in intervals]
    mean = sum(rates) / len(rates)
    if mean <= 0:
        return None
    first, last = _halves(intervals)
    finite = math.isfinite(first) and math.isfinite(last)
    rising = finite and last > STEADY_RISE * first
    if offered_rps is None:
        per = max(1.0, mean * REPORT_INTERVAL_S)
        spread = math.sqrt(sum((r - mean) ** 2 for r in rates) / len(rates)) / mean
        return "steady" if spread <= max(STEADY_CV, 3.0 / math.sqrt(per)) and not rising else None
    if offered_rps <= 0:
        return None
    per_interval = max(1.0, offered_rps * REPORT_INTERVAL_S)
    spread_tol = max(STEADY_CV, 3.0 / math.sqrt(per_interval))
    level_tol = max(STEADY_CV, 3.0 / math.sqrt(per_interval * len(rates)))
    if all(r < offered_rps * (1 - level_tol) for r in rates) and finite and last > first:
        return "overloaded"
    spread = math.sqrt(sum((r - mean) ** 2 for r in rates) / len(rates)) / mean
    if spread <= spread_tol and abs(mean - offered_rps) <= level_tol * offered_rps and not rising:
        return "steady"
    return None


def _halves(intervals: list[dict[str, float]]) -> tuple[float, float]:
    """Mean latency of the first and of the second half of the intervals (request-weighted):
    near saturation single 2 s intervals swing too much to show a trend."""
    half = max(1, len(intervals) // 2)

    def mean_ms(ivs: list[dict[str, float]]) -> float:
        n = sum(iv["throughput_rps"] for iv in ivs if math.isfinite(iv["mean_ms"]))
        total = sum(
            iv["throughput_rps"] * iv["mean_ms"] for iv in ivs if math.isfinite(iv["mean_ms"])
        )
        return total / n if n > 0 else math.nan

    return mean_ms(intervals[:half]), mean_ms(intervals[-half:])


def _sleep_to_phase() -> None:
    now = time.time()
    nxt = math.floor(now / REPORT_INTERVAL_S) * REPORT_INTERVAL_S + PHASE_S
    while nxt <= now + 0.05:
        nxt += REPORT_INTERVAL_S
    time.sleep(nxt - now)


class StepController:
    """Sets the probe's rate (its control file) and measures one step at a time."""

    def __init__(self, control_path: Path, metrics_url: str, plan: SearchPlan) -> None:
        self.control_path = control_path
        self.metrics_url = metrics_url
        self.plan = plan

    def set_load(self, value: float, stop: bool = False) -> None:
        """Rate (req/s) or users, as the plan's mode says; ``stop`` ends the test."""
        key = "users" if self.plan.mode == "users" else "rate"
        setting = int(value) if key == "users" else value
        atomic_write(self.control_path, json.dumps({key: setting, "stop": stop}))

    def _aligned_scrape(self) -> Sample:
        _sleep_to_phase()
        for _ in range(3):
            s = scrape(self.metrics_url, clock=time.time)
            if s is not None:
                return s
            time.sleep(0.2)
        raise ProcessFailed(f"the load generator's {self.metrics_url} does not answer")

    def measure(self, load: float, alive: Callable[[], bool]) -> dict[str, Any]:
        plan = self.plan
        offered_rps = None if plan.mode == "users" else load
        self.set_load(load)
        started = time.time()
        time.sleep(plan.settle_s)
        scrapes = [self._aligned_scrape()]
        intervals: list[dict[str, float]] = []
        state: str | None = None
        while alive():
            scrapes.append(self._aligned_scrape())
            intervals.append(window_figures(scrapes[-2], scrapes[-1]))
            if len(intervals) >= plan.window:
                state = classify(intervals[-plan.window :], offered_rps)
                if state is not None or time.time() - started >= plan.max_hold_s:
                    break
        if len(scrapes) < plan.window + 1:
            raise ProcessFailed("the load generator stopped during a capacity step")
        figures = window_figures(scrapes[-plan.window - 1], scrapes[-1])
        return {
            "offered_rps": offered_rps,
            "users": load if plan.mode == "users" else None,
            "started_unix_s": started,
            "window_start_unix_s": scrapes[-plan.window - 1].at,
            "window_end_unix_s": scrapes[-1].at,
            "steady": state == "steady",
            "state": state or "unsteady",
            "intervals": [
                {k: iv[k] for k in ("throughput_rps", "mean_ms", "p95_ms", "error_ratio")}
                for iv in intervals
            ],
            **figures,
        }


def search(
    controller: StepController,
    plan: SearchPlan,
    within_slo: Callable[[dict[str, Any]], bool],
    alive: Callable[[], bool],
    on_step: Callable[[dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], str]:
    """Step the rate up until a stop rule fires; returns the steps and why it stopped."""
    steps: list[dict[str, Any]] = []
    breached_at: int | None = None
    for index in range(plan.max_steps):
        load = plan.load(index)
        if load > plan.max_rps:
            return steps, f"reached the highest load to try ({plan.max_rps:g})"
        step = controller.measure(load, alive)
        step["within_slo"] = bool(within_slo(step) and step["steady"])
        steps.append(step)
        on_step(step)
        if not step["within_slo"] and breached_at is None:
            breached_at = index
        if breached_at is not None and index - breached_at >= plan.after_breach:
            return steps, f"the SLO was breached at {describe(steps[breached_at])}"
        if len(steps) >= 2:
            prev = steps[-2]
            gained = step["throughput_rps"] - prev["throughput_rps"]
            if plan.mode == "users":
                # Linear scaling from the previous step would add this much.
                expected = prev["throughput_rps"] * (step["users"] / max(1.0, prev["users"]) - 1)
            else:
                expected = step["offered_rps"] - prev["offered_rps"]
            if expected > 0 and gained < GROWTH_MIN * expected:
                return steps, (
                    f"throughput stopped growing ({prev['throughput_rps']:.0f} -> "
                    f"{step['throughput_rps']:.0f} req/s from {describe(prev)} to "
                    f"{describe(step)})"
                )
    return steps, f"ran the most steps allowed ({plan.max_steps})"


@dataclass
class ProbeProcesses:
    """The mock (if embedded), the Locust master and its workers of one capacity run."""

    children: list[Child] = field(default_factory=list)
    master: Child | None = None
    metrics_url: str = ""
    host: str = ""
    own_cores: set[int] | None = None  # the harness's affinity before the run, if it moved

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.own_cores is not None:
            pin(0, self.own_cores)
            self.own_cores = None


def start_probe(
    run_dir: Path,
    *,
    host: str,
    mock_config: str,
    mock_workers: int,
    workers: int,
    plan: SearchPlan,
    control_path: Path,
    max_run_s: float,
    seed: int,
    allow_remote: bool = False,
) -> ProbeProcesses:
    """Start the processes; the probe idles at rate 0 until the first step."""
    procs = ProbeProcesses()
    # As `portal-load run` places its processes (harness.system.placement): above two cores,
    # the master and the harness on the first core, the mock and the workers on the others.
    cores = placement()
    if cores.pinned and hasattr(os, "sched_getaffinity"):
        procs.own_cores = set(os.sched_getaffinity(0))
        pin(0, cores.cold)
    try:
        if not host:
            mock, host, _admin = start_mock(
                run_dir, workers=mock_workers, config=mock_config, cores=cores.hot
            )
            procs.children.append(mock)
        procs.host = host
        atomic_write(control_path, json.dumps({"rate": 0.0, "stop": False}))
        metrics_port, master_port = free_port(), free_port()
        env = child_environment({"PORTAL_SEED": str(seed)})
        opts = [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            "30",
            "--headless",
            "--host",
            host,
            "--run-time",
            f"{math.ceil(max_run_s)}s",
            "--stop-timeout",
            "5",
            "--results-dir",
            str(run_dir),
            "--metrics-port",
            str(metrics_port),
            "--loglevel",
            "WARNING",
            "--probe-path",
            plan.probe_path,
            "--probe-control",
            str(control_path),
            "--open-executors",
            str(workers),
            "-u",
            str(workers),
            "-r",
            str(workers),
            *(["--allow-remote"] if allow_remote else []),  # the workers' own guard
            "CapacityProbe",
        ]
        procs.master = Child(
            "locust-master",
            locust_argv(opts),
            run_dir / "logs" / "locust-master.log",
            env,
            cores=cores.cold,
        )
        procs.children.append(procs.master)
        for i in range(workers):
            argv = locust_argv(
                [
                    *("--worker", "--master-host", "127.0.0.1"),
                    *("--master-port", str(master_port), "--loglevel", "WARNING"),
                ]
            )
            log = run_dir / "logs" / f"locust-worker-{i}.log"
            procs.children.append(Child(f"locust-worker-{i}", argv, log, env, cores=cores.hot))
        procs.metrics_url = f"http://127.0.0.1:{metrics_port}/live"
        deadline = time.monotonic() + START_TIMEOUT_S
        while scrape(procs.metrics_url) is None or not _workers_connected(procs, workers):
            if not procs.master.alive():
                raise ProcessFailed(f"the Locust master exited:\n{procs.master.tail()}")
            if time.monotonic() > deadline:
                raise ProcessFailed("the load generator did not start in time")
            time.sleep(0.5)
    except BaseException:
        procs.stop()
        raise
    return procs


def _workers_connected(procs: ProbeProcesses, workers: int) -> bool:
    sample = scrape(procs.metrics_url)
    return sample is not None and sample.users >= workers
