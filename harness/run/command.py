"""``portal-load run``: one campaign end to end.

1. Resolve the campaign (file, then flags) and refuse a remote target unless allowed.
2. Create ``results/<run-id>/`` with the campaign as run and its provenance.
3. Start the embedded mock (unless a host is given), the Locust master and one worker per core,
   and optionally a real Prometheus scraping both.
4. Show live progress from the load generator's ``/metrics`` until the master ends the run;
   SIGINT/SIGTERM stop it gracefully, and the results are still written, marked ``partial``.
5. Cross-check the load generator's request count against the mock's own, then print the
   summary and the path of the results.

Exit codes (:class:`harness.errors.ExitCode`): 0 complete, 3 partial (interrupted), 4 degraded
(a worker was lost, the generator was CPU-bound, reports were rejected, or the numbers
disagree), 1 a harness error, 2 a usage error. :func:`run_campaign` returns them in a
:class:`RunOutcome`, with the run's folder and status, for the commands that compose a run
with more (``run --gate``, ``gate-ab``).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness.campaign import Campaign, check_target
from harness.errors import ExitCode, ProcessFailed, PrometheusError
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
from harness.run.progress import Progress
from harness.run.summary import print_summary
from harness.system import free_port

PROGRESS_EVERY_S = 2.0
START_GRACE_S = 30.0  # locust's own start-up, and the workers' connection to the master
# The generator and the mock count independently; connection errors are counted by one side
# only, so they may differ a little. More than this is flagged.
COUNT_TOLERANCE = 0.01
OPEN_POOL_SIZE = 1000  # scenarios.open_model's default pool of concurrent visits per executor
# Routes of the mock that the load generator does not send (operations, not load).
_OPS_ROUTES = ("/metrics", "/healthz", "/readyz", "/admin/faults", "/admin/ledger", "/openapi.json")

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
    web_port: int | None = None,
) -> list[str]:
    opts = [
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(master_port),
        "--expect-workers",
        str(c.worker_count()),
        "--expect-workers-max-wait",
        "30",
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
        "--think-scale",
        f"{c.think_scale:g}",
        "--citizen-stride",
        str(max(64, c.worker_count())),
    ]
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
            opts += ["--shape", c.shape]
            for key, value in sorted(c.shape_params.items()):
                opts += [f"--shape-{key.replace('_', '-')}", f"{value:g}"]
        classes = c.user_classes or ("CitizenUser", "AnonymousVisitor")
    return [*opts, *classes]


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
            if s.labels.get("route") in _OPS_ROUTES:
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
    check_target(campaign.host, campaign.allow_remote)
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
    aborted: str | None = None
    progress = Progress(
        duration_s=campaign.duration_s, tty=out.isatty() if tty is None else tty, out=out
    )
    try:
        run_id, run_dir = new_run_dir(Path(campaign.results_dir), campaign.name)
        atomic_write(run_dir / CAMPAIGN, campaign.to_toml())
        write_json(run_dir / PROVENANCE, provenance(campaign.seed))
        print(f"portal-load: run {run_id} -> {run_dir}", file=out, flush=True)
        host = campaign.host
        if campaign.embedded:
            mock, host, _admin = start_mock(
                run_dir, workers=campaign.mock_workers, config=campaign.mock_config
            )
            children.append(mock)
        metrics_port = campaign.metrics_port or free_port()
        master_port = free_port()
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
                master_options(campaign, host, run_dir, master_port, metrics_port, web_port)
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
        for i in range(campaign.worker_count()):
            argv = locust_argv(
                [
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(master_port),
                    "--loglevel",
                    "WARNING",
                ]
            )
            children.append(
                Child(f"locust-worker-{i}", argv, run_dir / "logs" / f"locust-worker-{i}.log", env)
            )
        check = (lambda: abort_check(run_dir)) if abort_check else None
        aborted = _watch(campaign, master, metrics_port, progress, interrupted, check, out)
        if mock is not None:
            mock_count = _mock_request_count(host)
            save_mock_metrics(host, run_dir)  # the portal's own latency per route, for the report
        if prometheus is not None and mock is not None:
            _wait_for_final_scrape(prometheus, time.time(), out)
    finally:
        progress.close()
        if prometheus is not None:
            prometheus.stop()
        for child in reversed(children):
            child.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)

    if interrupted.signum is not None and not (run_dir / SUMMARY).exists():
        _write_empty_partial(run_dir)
    summary = read_summary(run_dir)
    in_flight_bound = campaign.users
    if campaign.open_model:  # visits started and not completed when the run ended
        visits = summary.get("open_model") or {}
        in_flight_bound = int(
            visits.get("started", 0) - visits.get("completed", 0)
            if "started" in visits
            else campaign.worker_count() * (campaign.open_pool_size or OPEN_POOL_SIZE)
        )
    summary = _cross_check(run_dir, summary, mock_count, in_flight_bound)
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
    abort_check: Callable[[], str | None] | None = None,
    out: Any = None,
) -> str | None:
    """Show progress until the master exits; returns the reason the run was aborted, if."""
    # Any path serves the metrics, but only "/metrics" counts as a scrape towards the master's
    # --metrics-linger: the live view must not stand in for Prometheus's final scrape.
    url = f"http://127.0.0.1:{metrics_port}/live"
    started = time.monotonic()
    rates = livestats.LiveRates()
    stop_sent = False
    aborted: str | None = None
    deadline = started + campaign.duration_s + START_GRACE_S + 30
    while master.alive():
        if interrupted.signum is not None and not stop_sent:
            master.signal(signal.SIGTERM)
            stop_sent = True
        if time.monotonic() > deadline and not stop_sent:
            master.signal(signal.SIGTERM)
            stop_sent = True
        reason = abort_check() if abort_check is not None and not stop_sent else None
        if reason:
            aborted = reason
            print(f"portal-load: aborting the run: {reason}", file=out or sys.stdout, flush=True)
            master.signal(signal.SIGTERM)
            stop_sent = True
        cur = livestats.scrape(url)
        elapsed = time.monotonic() - started
        note = "stopping" if stop_sent else ""
        progress.show(elapsed, rates.update(cur) if cur else None, note)
        master.wait(PROGRESS_EVERY_S)
    code = master.proc.returncode
    if code not in (0, 1) and not stop_sent:  # 1: locust's "the test had failures"
        raise ProcessFailed(f"the Locust master exited with {code}:\n{master.tail()}")
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
    run_dir: Path, summary: dict[str, Any], mock: MockCount | None, in_flight_bound: int
) -> dict[str, Any]:
    """Flag numbers that may be lies: a busy generator, or counts that disagree with the mock."""
    flags: list[str] = []
    checks: dict[str, Any] = {"flags": flags}
    total = summary.get("total", {}).get("count")
    if mock is not None and isinstance(total, int | float):
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
    telemetry_flags = summary.get("flags") or []
    if "loadgen_cpu_high" in telemetry_flags:
        flags.append(
            "a load generator worker was above 90 % CPU for 4 s or more: "
            "its latencies may be inflated"
        )
    if "reports_rejected" in telemetry_flags:
        flags.append("worker reports could not be merged: the counts are incomplete")
    summary["checks"] = checks
    if flags and summary.get("status") == "complete":
        # A run whose figures are in doubt is not complete: a baseline refuses it, the gate
        # says so, and the exit code is 4.
        summary["status"] = "degraded"
    write_json(run_dir / SUMMARY, summary)
    return summary
