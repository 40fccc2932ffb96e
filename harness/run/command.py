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

import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
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
from harness.run.cluster import JoinWatch, announce, listen_address, master_cluster_options
from harness.run.disk import check_room
from harness.run.progress import Progress
from harness.run.summary import print_summary
from harness.run.watch import Fault, RunWatch
from harness.system import LOOPBACK, free_port
from mock_portal.routes import OPERATIONS_ROUTES

PROGRESS_EVERY_S = 2.0
START_GRACE_S = 30.0  # locust's own start-up, and the workers' connection to the master
# From SIGTERM to the master's exit: its workers' last reports, its final write and the
# linger for Prometheus's last scrape (8 s at most) take a few seconds; past this it is stuck
# (Locust's shutdown fails on a full disk) and is killed, its last write kept.
MASTER_STOP_GRACE_S = 30.0
STOP_GRACE_S = 5.0
# The generator and the mock count independently; connection errors are counted by one side
# only, so they may differ a little. More than this is flagged.
COUNT_TOLERANCE = 0.01
OPEN_POOL_SIZE = 1000  # scenarios.open_model's default pool of concurrent visits per executor

# Called with the run's folder while the run goes on; a reason it returns stops the run early
# (k6's abortOnFail), and the results are still written (``run --gate``: harness.gate.judge).
AbortCheck = Callable[[Path], "str | None"]
# `--prometheus`: scrape every second while a run is short enough that each point counts (a
# 20 s run still gets 20 of them), at the committed prometheus.yml's 2 s beyond.
PROMETHEUS_SHORT_RUN_S = 300.0
# Scrape intervals the master keeps /metrics up for after the run, until Prometheus has read
# the final values (--metrics-linger); and the harness waits for the mock's last scrape.
FINAL_SCRAPES = 3
# `--web`: the web UI stays up this long after the run (Locust's --autoquit), to read its
# final figures; well inside the watchdog's margin past the run time.
WEB_LINGER_S = 15


class _Interrupted:
    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum


def master_options(
    c: Campaign,
    host: str,
    run_dir: Path,
    master_port: int,
    metrics_port: int,
    bind_host: str = LOOPBACK,
    web_port: int | None = None,
) -> list[str]:
    opts = [
        "--master",
        *master_cluster_options(c, bind_host, master_port),
        "--host",
        host,
        "--run-time",
        f"{max(1, round(c.duration_s))}s",
        # No --stop-timeout: users (and the open model's executors, whose one task is the
        # whole schedule) stop when the run ends; what they sent after it would reach the mock
        # but not the results. At most the requests in flight at that instant differ.
        "--results-dir",
        str(run_dir),
        "--metrics-port",
        str(metrics_port),
        "--csv",
        str(run_dir / "locust"),
        "--loglevel",
        "WARNING",
    ]
    if not c.locustfile:  # options of the portal's journeys, unknown to another locustfile
        opts += journey_options(c)
    if c.web:
        opts += ["--autostart", "--autoquit", str(WEB_LINGER_S), "--web-host", "127.0.0.1",
                 "--web-port", str(web_port or free_port())]  # fmt: skip
    else:
        opts += ["--headless"]
    if c.open_model:
        opts += [
            "--arrival-rate",
            f"{c.arrival_rate:g}",
            "--arrival-duration",
            f"{c.duration_s:g}",
            "--open-executors",
            str(c.worker_count()),
            *(["--arrival-poisson"] if c.arrival_poisson else []),
            *(["--arrival-shape", c.arrival_shape] if c.arrival_shape else []),
            *_params("--arrival-", c.arrival_params),
            *(["--open-pool-size", str(c.open_pool_size)] if c.open_pool_size else []),
            *(["--open-connections", str(c.open_connections)] if c.open_connections else []),
            "-u",
            str(c.worker_count()),
            "-r",
            str(c.worker_count()),
        ]
        # The open model installs its executor itself when an arrival option is given; named
        # on the command line, its zero weight would make Locust drop it.
        classes: tuple[str, ...] = ()
    else:
        opts += ["-u", str(c.users), "-r", f"{c.spawn_rate:g}"]
        if c.shape:
            # The shape ends the run at its duration (Locust ignores --run-time under one);
            # its peak is -u.
            opts += ["--shape", c.shape, "--shape-duration", f"{c.duration_s:g}"]
            opts += _params("--shape-", c.shape_params)
        # A locustfile of the user's runs all its classes unless some are named.
        classes = c.user_classes or (() if c.locustfile else ("CitizenUser", "AnonymousVisitor"))
    return [*opts, *classes]


def journey_options(c: Campaign) -> list[str]:
    """The options of the portal's journeys: pace, citizens, seed, second factor, accounts."""
    opts = [
        "--think-scale",
        f"{c.think_scale:g}",
        "--citizen-stride",
        str(max(64, c.worker_count())),
    ]
    opts += ["--seed", str(c.seed)]
    if c.mfa_code:
        opts += ["--mfa-code", c.mfa_code]
    if c.accounts:
        opts += ["--accounts", c.accounts]
    return opts


def _params(prefix: str, params: Mapping[str, float]) -> list[str]:
    return [
        arg
        for key, value in sorted(params.items())
        for arg in (f"{prefix}{key.replace('_', '-')}", f"{value:g}")
    ]


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


@dataclass(frozen=True)
class MockCount:
    """The embedded mock's own count of the requests it answered, and of those it cut off
    with an injected reset or lost response (not in its request count; a retried GET then
    reaches it twice, a POST is counted by the generator as one failed request)."""

    answered: float
    cut_off: float = 0.0


def _mock_request_count(base_url: str) -> MockCount | None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/metrics", timeout=5) as resp:
            text = resp.read().decode("utf-8")
    except OSError:
        return None
    total = cut_off = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("route") in OPERATIONS_ROUTES:
                continue
            if s.name == "portal_http_requests_total":
                total += s.value
            elif s.name == "portal_faults_injected_total" and s.labels.get("kind") in (
                "reset",
                "lost_response",
            ):
                cut_off += s.value
    return MockCount(total, cut_off)


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
    children: list[Child] = []
    mock: Child | None = None
    prometheus: Any = None
    mock_count: MockCount | None = None
    watch: RunWatch | None = None
    aborted: str | None = None
    joins: JoinWatch | None = None
    progress = Progress(
        duration_s=campaign.duration_s, tty=out.isatty() if tty is None else tty, out=out
    )
    try:
        run_id, run_dir = new_run_dir(Path(campaign.results_dir), campaign.name)
        try:
            atomic_write(run_dir / CAMPAIGN, campaign.to_toml())
            write_json(run_dir / PROVENANCE, provenance(campaign.seed))
        except OSError as exc:
            raise ResultsError(f"{run_dir}: cannot write the run's files: {exc.strerror}") from None
        print(f"portal-load: run {run_id} -> {run_dir}", file=out, flush=True)
        host = campaign.host
        if campaign.embedded:
            mock, host, _admin = start_mock(
                run_dir, workers=campaign.mock_workers, config=campaign.mock_config
            )
            children.append(mock)
        metrics_port = campaign.metrics_port or free_port()
        bind_host, master_port = listen_address(campaign)
        announce(campaign, bind_host, master_port, host, out)
        extra_env = {"PORTAL_SEED": str(campaign.seed)}
        if campaign.prometheus:
            prometheus = _start_prometheus(campaign, run_dir, host, metrics_port, out)
            linger_s = FINAL_SCRAPES * prometheus.config.scrape_interval_s + 2.0
            extra_env["PORTAL_METRICS_LINGER"] = f"{linger_s:g}"
        env = child_environment(extra_env)
        web_port = free_port() if campaign.web else None
        master = Child(
            "locust-master",
            locust_argv(
                master_options(
                    campaign, host, run_dir, master_port, metrics_port, bind_host, web_port
                ),
                campaign.locustfile,
            ),
            run_dir / "logs" / "locust-master.log",
            env,
        )
        children.append(master)
        if web_port is not None:
            print(
                f"portal-load: Locust web UI at http://127.0.0.1:{web_port}/ "
                f"(until {WEB_LINGER_S} s after the run)",
                file=out,
                flush=True,
            )
        local_master = LOOPBACK if bind_host in ("*", "0.0.0.0", "::") else bind_host
        for i in range(campaign.local_worker_count()):
            argv = locust_argv(
                [
                    "--worker",
                    "--master-host",
                    local_master,
                    "--master-port",
                    str(master_port),
                    "--loglevel",
                    "WARNING",
                ],
                campaign.locustfile,
            )
            children.append(
                Child(f"locust-worker-{i}", argv, run_dir / "logs" / f"locust-worker-{i}.log", env)
            )
        check = (lambda: abort_check(run_dir)) if abort_check else None
        local_pids = {c.pid for c in children if c.name.startswith("locust-worker-")}
        joins = JoinWatch(campaign, run_dir, local_pids, out)
        watch = RunWatch(host=host, mock=mock, run_dir=run_dir, out=out)
        aborted = _watch(
            campaign, master, metrics_port, progress, interrupted, watch, check, out, joins
        )
        if mock is not None:
            mock_count = _mock_request_count(host)
            try:  # the portal's own latency per route, for the report
                save_mock_metrics(host, run_dir)
            except OSError as exc:  # a full disk: the run's results matter more
                print(f"portal-load: no mock-metrics.json: {exc.strerror or exc}", file=out)
        if prometheus is not None and mock is not None:
            _wait_for_final_scrape(prometheus, time.time(), out)
    finally:
        progress.close()
        if watch is not None:
            watch.close()
        if prometheus is not None:
            prometheus.stop()
        for child in reversed(children):
            child.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)

    missing = joins.missing if joins is not None else None
    faults = tuple(watch.faults) if watch is not None else ()
    stopped = interrupted.signum is not None or faults or missing
    if stopped and not (run_dir / SUMMARY).exists():
        _write_empty_partial(run_dir)
    summary = read_summary(run_dir)
    if joins is not None:
        joins.finish(summary)
    if missing:
        write_json(run_dir / SUMMARY, summary)
        raise WorkersMissing(f"{missing}; the run's folder: {run_dir}")
    in_flight_bound = campaign.users
    if campaign.open_model:  # visits started and not completed when the run ended
        visits = summary.get("open_model") or {}
        in_flight_bound = int(
            visits.get("started", 0) - visits.get("completed", 0)
            if "started" in visits
            else campaign.worker_count() * (campaign.open_pool_size or OPEN_POOL_SIZE)
        )
    summary = _cross_check(
        run_dir,
        summary,
        mock_count,
        in_flight_bound,
        mock_expected=mock is not None,
        max_failure_ratio=campaign.max_failure_ratio,
        faults=faults,
    )
    if "not_written" in summary["checks"]:
        print(f"portal-load: {summary['checks']['not_written']}", file=out, flush=True)
    try_write_report(run_dir, warn=lambda message: print(message, file=out))
    print_summary(summary, run_dir, out=out)
    status = str(summary.get("status"))
    flags = tuple(summary.get("checks", {}).get("flags") or ())
    if status == "partial" or interrupted.signum is not None:
        code = ExitCode.PARTIAL
    elif status == "degraded":
        code = ExitCode.DEGRADED
    else:
        code = ExitCode.OK
    return RunOutcome(
        run_id=run_id,
        run_dir=run_dir,
        status=status,
        exit_code=code,
        flags=flags,
        abort_reason=aborted,
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
    if joins is not None and joins.refused_exit(code):
        return aborted
    if code not in (0, 1) and stop_sent_at is None:  # 1: locust's "the test had failures"
        if not (watch.run_dir / SUMMARY).exists():
            raise ProcessFailed(f"the Locust master exited with {code}:\n{master.tail()}")
        how = f"signal {-code}" if code < 0 else f"status {code}"
        watch.record(Fault("master_died", time.time(), f"the Locust master died ({how})"))
    return aborted


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


def _cross_check(
    run_dir: Path,
    summary: dict[str, Any],
    mock: MockCount | None,
    in_flight_bound: int,
    *,
    mock_expected: bool = False,
    max_failure_ratio: float = 1.0,
    faults: Sequence[Fault] = (),
) -> dict[str, Any]:
    """Flag numbers that may be lies: a busy generator, counts that disagree with the mock or
    could not be checked, too many failures, and the faults seen while the run ran."""
    flags: list[str] = []
    checks: dict[str, Any] = {"flags": flags}
    cut_short = _fault_flags(summary, faults, checks)  # first: the cause of what follows
    total = summary.get("total", {}).get("count")
    if cut_short:
        pass  # the generator's count ends before the run did: no count to compare
    elif mock is not None and isinstance(total, int | float):
        mock_count = mock.answered
        checks["mock_request_count"] = mock_count
        checks["loadgen_request_count"] = total
        if mock.cut_off:
            checks["mock_cut_off_count"] = mock.cut_off
        # Requests in flight when the run stops reach the mock but are never reported: at
        # most one per user (closed model) or per pool slot (open model). Requests the mock
        # cut off by an injected fault may be counted on one side only.
        allowed = max(COUNT_TOLERANCE * max(total, mock_count), in_flight_bound + 10.0)
        allowed += mock.cut_off
        checks["counts_agree"] = abs(total - mock_count) <= allowed
        if not checks["counts_agree"]:
            flags.append(
                f"the load generator counted {total:.0f} requests, the mock {mock_count:.0f}"
            )
    elif mock_expected:
        checks["counts_agree"] = None
        flags.append(
            "the embedded mock's own request count could not be read: "
            "the load generator's count is unchecked"
        )
    failed = summary.get("total", {}).get("failures")
    if isinstance(total, int | float) and isinstance(failed, int | float) and total > 0:
        checks["failure_ratio"] = round(failed / total, 6)
        checks["max_failure_ratio"] = max_failure_ratio
        if failed / total > max_failure_ratio:
            flags.append(
                f"{failed:,.0f} of {total:,.0f} requests failed ({failed / total:.1%}), above "
                f"max_failure_ratio ({max_failure_ratio:.1%})"
            )
    telemetry_flags = summary.get("flags") or []
    if "loadgen_cpu_high" in telemetry_flags:
        flags.append(
            "a load generator worker was above 90 % CPU for 4 s or more: "
            "its latencies may be inflated"
        )
    if "reports_rejected" in telemetry_flags:
        flags.append("worker reports could not be merged: the counts are incomplete")
    summary["checks"] = checks
    if cut_short:
        # The load generator's results end before the run did: no claim beyond them.
        summary["status"] = "partial"
    elif flags and summary.get("status") == "complete":
        # A run whose figures are in doubt is not complete: a baseline refuses it, the gate
        # says so, and the exit code is 4.
        summary["status"] = "degraded"
    try:
        write_json(run_dir / SUMMARY, summary)
    except OSError as exc:
        checks["not_written"] = f"{run_dir / SUMMARY} keeps the load generator's last write: {exc}"
    return summary


def _fault_flags(summary: dict[str, Any], faults: Sequence[Fault], checks: dict[str, Any]) -> bool:
    """The faults as flags, with the time into the run; True if the results were cut short
    (the disk filled up, or the master died before its final write)."""
    if not faults:
        return False
    start = summary.get("start_unix_s") or faults[0].at_unix_s
    checks["faults"] = [f.as_dict(start) for f in faults]
    flags: list[str] = checks["flags"]
    cut_short = False
    for fault, entry in zip(faults, checks["faults"], strict=True):
        at = f"{entry['at_s']:.0f} s into the run"
        if fault.kind == "master_died":
            covers = summary.get("covers_until_unix_s")
            covered = (
                f"the results cover its first {max(covers - start, 0.0):.0f} s"
                if isinstance(covers, int | float)
                else "the results cover an unknown part of it"
            )
            flags.append(f"{fault.reason} {at}; {covered} (covers_until_unix_s), no more")
            cut_short = cut_short or not summary.get("final")
        elif fault.kind == "disk_full":
            flags.append(f"{fault.reason} ({at})")
            cut_short = True
        else:
            flags.append(f"{fault.reason} {at}")
    return cut_short
