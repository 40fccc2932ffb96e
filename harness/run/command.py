"""``portal-load run``: one campaign end to end.

1. Resolve the campaign (file, then flags) and refuse a remote target unless allowed.
2. Create ``results/<run-id>/`` with the campaign as run and its provenance.
3. Start the embedded mock (unless a host is given), the Locust master and one worker per core,
   and optionally a real Prometheus scraping both.
4. Show live progress from the load generator's ``/metrics`` until the master ends the run;
   SIGINT/SIGTERM stop it gracefully, and the results are still written, marked ``partial``.
5. Cross-check the load generator's request count against the mock's own, then print the
   summary and the path of the results.

While it runs, :class:`harness.run.watch.RunWatch` watches the target and the disk; what it
finds, a Locust master that died, and a failure ratio above ``max_failure_ratio`` are flags
of the run (``checks.flags``, ``checks.faults``), as ``docs/operations.md`` lists.

Exit codes (:class:`harness.errors.ExitCode`): 0 complete, 3 partial (interrupted, the disk
full, or the master died), 4 degraded (a worker or the target was lost, the generator was
CPU-bound, reports were rejected, too many requests failed, or the numbers disagree or could
not be checked), 1 a harness error, 2 a usage error. :func:`run_campaign` returns them in a
:class:`RunOutcome`, with the run's folder and status, for the commands that compose a run
with more (``run --gate``, ``gate-ab``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness.campaign import Campaign, check_target
from harness.errors import ExitCode, ProcessFailed, PrometheusError, ResultsError, WorkersMissing
from harness.observe import livestats
from harness.observe.mock_metrics import save_mock_metrics
from harness.observe.prometheus import (
    LOADGEN_JOB,
    MOCK_JOB,
    PrometheusConfig,
    PrometheusServer,
)
from harness.processes import Child, child_environment, locust_argv, start_mock
from harness.report.run_report import try_write_report
from harness.results.folder import (
    CAMPAIGN,
    PROVENANCE,
    SUMMARY,
    atomic_write,
    new_run_dir,
    provenance,
    read_summary,
    write_json,
)
from harness.run.checks import MockCount, cross_check, in_flight_bound, mock_request_count
from harness.run.cluster import JoinWatch, announce, listen_address
from harness.run.disk import check_room
from harness.run.options import WEB_LINGER_S, master_options, worker_options
from harness.run.progress import Progress
from harness.run.summary import print_summary
from harness.run.watch import Fault, RunWatch
from harness.system import Placement, free_port, pin, placement

PROGRESS_EVERY_S = 2.0
START_GRACE_S = 30.0  # locust's own start-up, and the workers' connection to the master
# From SIGTERM to the master's exit: its workers' last reports, its final write and the
# linger for Prometheus's last scrape (8 s at most) take a few seconds; past this it is stuck
# (Locust's shutdown fails on a full disk) and is killed, its last write kept.
MASTER_STOP_GRACE_S = 30.0
STOP_GRACE_S = 5.0
# Called with the run's folder while the run goes on; a reason it returns stops the run early
# (k6's abortOnFail), and the results are still written (``run --gate``: harness.gate.judge).
AbortCheck = Callable[[Path], "str | None"]
# `--prometheus`: scrape every second while a run is short enough that each point counts (a
# 20 s run still gets 20 of them), at the committed prometheus.yml's 2 s beyond.
PROMETHEUS_SHORT_RUN_S = 300.0
# Scrape intervals the master keeps /metrics up for after the run, until Prometheus has read
# the final values (--metrics-linger); and the harness waits for the mock's last scrape.
FINAL_SCRAPES = 3


class _Interrupted:
    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What a run left: its folder, its status (complete, partial, degraded), the reasons a
    complete run is in doubt, and the exit code."""

    run_id: str
    run_dir: Path
    status: str
    exit_code: ExitCode
    flags: tuple[str, ...] = ()
    abort_reason: str | None = None


def run_campaign(
    campaign: Campaign,
    *,
    tty: bool | None = None,
    out: Any = None,
    abort_check: AbortCheck | None = None,
) -> RunOutcome:
    """Run one campaign; returns its outcome (see the module docstring)."""
    out = out or sys.stdout
    check_target(campaign.host, campaign.allow_remote, f"{campaign.source}: campaign.host")
    check_room(campaign)
    if not campaign.embedded:
        load = (
            f"{campaign.arrival_rate:g} visits/s"
            if campaign.open_model
            else f"{campaign.users} users"
        )
        print(
            f"portal-load: sending {load} of portal journeys to {campaign.host} "
            f"for {campaign.duration_s:g} s",
            file=out,
            flush=True,
        )
    # From here on a signal stops the run gracefully: installed before the run's folder exists,
    # so that a run with a folder always ends with results in it.
    interrupted = _Interrupted()
    previous = {s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(
        duration_s=campaign.duration_s, tty=out.isatty() if tty is None else tty, out=out
    )
    run = _Run(campaign, out)
    try:
        run.create_folder()
        run.start()
        run.watch(progress, interrupted, abort_check)
        run.read_the_mock()
    finally:
        progress.close()
        run.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return run.finish(interrupted.signum is not None)


class _Run:
    """One run's processes and what they left, in the order :func:`run_campaign` goes."""

    def __init__(self, campaign: Campaign, out: Any) -> None:
        self.campaign = campaign
        self.out = out
        self.children: list[Child] = []
        self.mock: Child | None = None
        self.master: Child | None = None
        self.prometheus: Any = None
        self.runwatch: RunWatch | None = None
        self.joins: JoinWatch | None = None
        self.mock_count: MockCount | None = None
        self.aborted: str | None = None
        self.host = campaign.host
        self.placement = Placement()
        self._own_cores: set[int] | None = None  # the harness's affinity before the run

    def _say(self, line: str) -> None:
        print(f"portal-load: {line}", file=self.out, flush=True)

    def create_folder(self) -> None:
        c = self.campaign
        self.run_id, self.run_dir = new_run_dir(Path(c.results_dir), c.name)
        try:
            atomic_write(self.run_dir / CAMPAIGN, c.to_toml())
            write_json(self.run_dir / PROVENANCE, provenance(c.seed))
        except OSError as exc:
            raise ResultsError(
                f"{self.run_dir}: cannot write the run's files: {exc.strerror}"
            ) from None
        self._say(f"run {self.run_id} -> {self.run_dir}")

    def start(self) -> None:
        """The embedded mock, Prometheus, the Locust master and the local workers, each on its
        placement's cores (:func:`harness.system.placement`)."""
        c, run_dir = self.campaign, self.run_dir
        self._place()
        hot = self.placement.hot
        if c.embedded:
            self.mock, self.host, _admin = start_mock(
                run_dir, workers=c.mock_workers, config=c.mock_config, cores=hot
            )
            self.children.append(self.mock)
        self.metrics_port = c.metrics_port or free_port()
        bind_host, master_port = listen_address(c)
        announce(c, bind_host, master_port, self.host, self.out)
        extra_env = {"PORTAL_SEED": str(c.seed)}
        if c.prometheus:
            self.prometheus = _start_prometheus(c, run_dir, self.host, self.metrics_port, self.out)
            linger_s = FINAL_SCRAPES * self.prometheus.config.scrape_interval_s + 2.0
            extra_env["PORTAL_METRICS_LINGER"] = f"{linger_s:g}"
        env = child_environment(extra_env)
        web_port = free_port() if c.web else None
        options = master_options(
            c, self.host, run_dir, master_port, self.metrics_port, bind_host, web_port
        )
        self.master = Child(
            "locust-master",
            locust_argv(options, c.locustfile),
            run_dir / "logs" / "locust-master.log",
            env,
            cores=self.placement.cold,
        )
        self.children.append(self.master)
        if web_port is not None:
            self._say(
                f"Locust web UI at http://127.0.0.1:{web_port}/ "
                f"(until {WEB_LINGER_S} s after the run)"
            )
        for i in range(c.local_worker_count()):
            argv = locust_argv(worker_options(bind_host, master_port), c.locustfile)
            log = run_dir / "logs" / f"locust-worker-{i}.log"
            self.children.append(Child(f"locust-worker-{i}", argv, log, env, cores=hot))

    def _place(self) -> None:
        """Above two cores the harness keeps to the master's core, off the hot ones (and
        Prometheus, started by it, with it); the run's placement is said once."""
        self.placement = placement()
        if not self.placement.pinned or not hasattr(os, "sched_getaffinity"):
            return
        self._own_cores = set(os.sched_getaffinity(0))
        pin(0, self.placement.cold)
        self._say(
            f"cores: mock and workers on {_cores(self.placement.hot)}, master and harness "
            f"on {_cores(self.placement.cold)}"
        )

    def watch(
        self, progress: Progress, interrupted: _Interrupted, abort_check: AbortCheck | None
    ) -> None:
        """Until the master ends the run (or is stopped): the live view and every watch."""
        assert self.master is not None
        run_dir = self.run_dir
        check = (lambda: abort_check(run_dir)) if abort_check else None
        local_pids = {c.pid for c in self.children if c.name.startswith("locust-worker-")}
        self.joins = JoinWatch(self.campaign, run_dir, local_pids, self.out)
        self.runwatch = RunWatch(host=self.host, mock=self.mock, run_dir=run_dir, out=self.out)
        self.aborted = _watch(
            self.campaign,
            self.master,
            self.metrics_port,
            progress,
            interrupted,
            self.runwatch,
            check,
            self.out,
            self.joins,
        )

    def read_the_mock(self) -> None:
        """The embedded mock's own counts and latency, before it stops."""
        if self.mock is None:
            return
        self.mock_count = mock_request_count(self.host)
        try:  # the portal's own latency per route, for the report
            save_mock_metrics(self.host, self.run_dir)
        except OSError as exc:  # a full disk: the run's results matter more
            self._say(f"no mock-metrics.json: {exc.strerror or exc}")
        if self.prometheus is not None:
            _wait_for_final_scrape(self.prometheus, time.time(), self.out)

    def stop(self) -> None:
        if self.runwatch is not None:
            self.runwatch.close()
        if self.prometheus is not None:
            self.prometheus.stop()
        for child in reversed(self.children):
            child.stop()
        if self._own_cores is not None:  # a later run in this process places itself again
            pin(0, self._own_cores)
            self._own_cores = None

    def finish(self, interrupted: bool) -> RunOutcome:
        """Results checked and marked, the report written, the summary printed."""
        c, run_dir = self.campaign, self.run_dir
        missing = self.joins.missing if self.joins is not None else None
        faults = tuple(self.runwatch.faults) if self.runwatch is not None else ()
        if (interrupted or faults or missing) and not (run_dir / SUMMARY).exists():
            _write_empty_partial(run_dir)
        summary = read_summary(run_dir)
        if self.joins is not None:
            self.joins.finish(summary)
        if missing:
            write_json(run_dir / SUMMARY, summary)
            raise WorkersMissing(f"{missing}; the run's folder: {run_dir}")
        summary = cross_check(
            run_dir,
            summary,
            self.mock_count,
            in_flight_bound(c, summary),
            mock_expected=self.mock is not None,
            max_failure_ratio=c.max_failure_ratio,
            faults=faults,
        )
        if "not_written" in summary["checks"]:
            self._say(summary["checks"]["not_written"])
        try_write_report(run_dir, warn=lambda message: print(message, file=self.out))
        print_summary(summary, run_dir, out=self.out)
        status = str(summary.get("status"))
        if status == "partial" or interrupted:
            code = ExitCode.PARTIAL
        elif status == "degraded":
            code = ExitCode.DEGRADED
        else:
            code = ExitCode.OK
        return RunOutcome(
            run_id=self.run_id,
            run_dir=run_dir,
            status=status,
            exit_code=code,
            flags=tuple(summary.get("checks", {}).get("flags") or ()),
            abort_reason=self.aborted,
        )


def _watch(
    campaign: Campaign,
    master: Child,
    metrics_port: int,
    progress: Progress,
    interrupted: _Interrupted,
    watch: RunWatch,
    abort_check: Callable[[], str | None] | None = None,
    out: Any = None,
    joins: JoinWatch | None = None,
) -> str | None:
    """Show progress until the master exits; returns the reason the run was aborted, if. A
    master that dies leaves a ``master_died`` fault in ``watch``; one that died before it
    wrote any results is a :class:`ProcessFailed`."""
    # Any path serves the metrics, but only "/metrics" counts as a scrape towards the master's
    # --metrics-linger: the live view must not stand in for Prometheus's final scrape.
    url = f"http://127.0.0.1:{metrics_port}/live"
    started = time.monotonic()
    rates = livestats.LiveRates()
    stop_sent_at: float | None = None
    aborted: str | None = None
    deadline = started + campaign.duration_s + START_GRACE_S + 30
    if campaign.remote_workers:
        deadline += campaign.join_timeout_s
    while master.alive():
        watch.poll()
        missing = joins.poll(time.monotonic() - started) if joins is not None else None
        reason = abort_check() if abort_check is not None and stop_sent_at is None else None
        if reason:
            aborted = reason
            print(f"portal-load: aborting the run: {reason}", file=out or sys.stdout, flush=True)
        # missing remote workers: the line is the run's error (WorkersMissing)
        stop = interrupted.signum is not None or time.monotonic() > deadline or bool(missing)
        if (stop or watch.stop_reason or reason) and stop_sent_at is None:
            master.signal(signal.SIGTERM)
            stop_sent_at = time.monotonic()
        elif stop_sent_at is not None and time.monotonic() - stop_sent_at > MASTER_STOP_GRACE_S:
            master.signal(signal.SIGKILL)  # a master stuck in its shutdown (a full disk)
            master.wait(STOP_GRACE_S)
            watch.record(
                Fault(
                    "master_died",
                    time.time(),
                    f"the Locust master did not stop within {MASTER_STOP_GRACE_S:g} s of "
                    "SIGTERM and was killed",
                )
            )
            break
        cur = livestats.scrape(url)
        elapsed = time.monotonic() - started
        note = "stopping" if stop_sent_at is not None else ""
        progress.show(elapsed, rates.update(cur) if cur else None, note)
        master.wait(PROGRESS_EVERY_S)
    code = master.proc.returncode
    if joins is not None and joins.refused_exit(code, stopped=stop_sent_at is not None):
        return aborted
    if code not in (0, 1) and stop_sent_at is None:  # 1: locust's "the test had failures"
        if not (watch.run_dir / SUMMARY).exists():
            raise ProcessFailed(f"the Locust master exited with {code}:\n{master.tail()}")
        how = f"signal {-code}" if code < 0 else f"status {code}"
        watch.record(Fault("master_died", time.time(), f"the Locust master died ({how})"))
    return aborted


def _cores(cores: frozenset[int] | None) -> str:
    """``1-15`` or ``0,2,5``: a set of cores as ``taskset -c`` writes it."""
    ordered = sorted(cores or ())
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(str(c) for c in ordered)


def _start_prometheus(
    campaign: Campaign, run_dir: Path, host: str, metrics_port: int, out: Any
) -> Any:
    """Start Prometheus before the load, its configuration and TSDB kept in the run folder."""
    from urllib.parse import urlsplit

    mock_target = urlsplit(host).netloc if campaign.embedded else None
    work_dir = run_dir / "prometheus"
    server = PrometheusServer(
        PrometheusConfig(
            work_dir=work_dir,
            data_dir=work_dir / "data",
            scrape_interval_s=1.0 if campaign.duration_s <= PROMETHEUS_SHORT_RUN_S else 2.0,
            targets={
                MOCK_JOB: [mock_target] if mock_target else [],
                LOADGEN_JOB: [f"127.0.0.1:{metrics_port}"],
            },
        )
    )
    try:
        server.start()
    except PrometheusError as exc:
        raise ProcessFailed(f"Prometheus did not start: {exc}") from exc
    print(f"portal-load: Prometheus at {server.url} (kept in {work_dir})", file=out, flush=True)
    return server


def _wait_for_final_scrape(prometheus: Any, since_s: float, out: Any) -> None:
    """Wait until Prometheus has scraped the mock once after the load stopped."""
    expr = f'min(timestamp(up{{job="{MOCK_JOB}"}} == 1))'
    timeout_s = FINAL_SCRAPES * prometheus.config.scrape_interval_s + 2.0
    try:
        prometheus.wait_until(
            lambda: any(s.value >= since_s for s in prometheus.query(expr)),
            timeout_s=timeout_s,
            what="a scrape of the mock after the run",
        )
    except PrometheusError as exc:
        print(f"portal-load: Prometheus may lack the final values: {exc}", file=out, flush=True)


def _write_empty_partial(run_dir: Path) -> None:
    """Results of a run interrupted before its load generator wrote any: no requests, marked
    partial, in the generator's own format (its writer, which imports nothing of Locust)."""
    from scenarios.telemetry.aggregate import RunAggregator
    from scenarios.telemetry.results import write_results

    aggregator = RunAggregator(interval_s=2.0, mode="distributed")
    aggregator.interrupt()
    write_results(run_dir, aggregator, final=True)
