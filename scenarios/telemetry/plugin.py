"""Locust wiring of the telemetry: :func:`install` (called once from a locustfile) enables it.

Importing this module changes nothing; ``install()`` registers the custom arguments below and
the ``init`` listener that starts the telemetry of each process::

    from scenarios.telemetry import plugin

    plugin.install()

Every load-generating process (a worker, or the single process of a local run) records each
``request`` event into an :class:`~scenarios.telemetry.recorder.IntervalRecorder` and, every
:data:`REPORT_INTERVAL_S` seconds (cut on Unix-time boundaries) and when its test stops,
sends the interval's HDR histograms to the master with
``runner.send_message("portal_hdr", report)``. The master (or the local process: Locust's
``LocalRunner`` delivers the same message to itself) merges them in a
:class:`~scenarios.telemetry.aggregate.RunAggregator`, watches worker heartbeats, writes the
results folder after every interval reported (every report near the end, at least every
:data:`WRITE_INTERVAL_S` seconds) and at the end, and serves
``/metrics``. ``--processes N`` is a master with N forked workers: the same path.

Custom arguments (also environment variables):

- ``--results-dir DIR`` (``PORTAL_RESULTS_DIR``): the run's folder, ``results/<run-id>``;
  nothing is written without it;
- ``--metrics-port N`` (``PORTAL_METRICS_PORT``): serve ``/metrics``; 0 picks a free port
  and writes it to ``DIR/metrics_port``; no server without it;
- ``--metrics-host H`` (``PORTAL_METRICS_HOST``, default ``127.0.0.1``);
- ``--metrics-linger S`` (``PORTAL_METRICS_LINGER``): at exit, keep serving up to S seconds
  until one scrape has read the final values (so Prometheus, or a test, sees them).

A run's status is ``complete`` when its test stopped by itself (run time, shape, web UI,
last worker gone) and no worker was lost, ``degraded`` when a worker went missing
(Locust's heartbeat) or left while the test ran, and ``partial`` when the process was
interrupted (SIGTERM, SIGINT) before its test stopped, or for every write before the end.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import events
from locust.env import Environment
from locust.event import EventHook
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, Runner, WorkerRunner

from scenarios import distributed
from scenarios.client.session import RESULTS_ONLY_EVENT
from scenarios.telemetry import results
from scenarios.telemetry.aggregate import RunAggregator
from scenarios.telemetry.exporter import (
    LiveGauges,
    LoadgenCollector,
    MetricsServer,
    live_totals,
    serve,
)
from scenarios.telemetry.recorder import IntervalRecorder
from scenarios.telemetry.sources import open_model_counters

__all__ = ["MESSAGE_TYPE", "REPORT_INTERVAL_S", "WRITE_INTERVAL_S", "MasterTelemetry", "install"]

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "portal_hdr"
# Prometheus scrapes every 2 s (dashboards/prometheus/prometheus.yml); reports at the same
# pace keep the live counters one scrape behind at most.
REPORT_INTERVAL_S = 2.0
# The results are written on the first tick after each merged report (a killed master loses
# at most one interval), and at least this often while nothing is reported.
WRITE_INTERVAL_S = 5.0
# Within this many seconds of the run time's end, and once the test stopped, a report is
# written as it arrives (the last ones are those a master killed at the end would lose), but
# not twice within NEAR_END_GAP_S: a write of 50 request keys takes about 0.1 s.
NEAR_END_S = 10.0
NEAR_END_GAP_S = 0.5
# Health checks on the master (missing workers, users): Locust's heartbeat is 1 s.
TICK_S = 1.0
# Event-loop lag probe: a greenlet that should wake every 50 ms; lateness is lag.
LOOP_PROBE_S = 0.05

_ACTIVE = (STATE_RUNNING, STATE_SPAWNING)


def _sleep_to_boundary(interval_s: float) -> None:
    gevent.sleep(interval_s - (time.time() % interval_s) + 0.001)


def _user_count(runner: Runner) -> int:
    try:
        return int(runner.user_count)
    except Exception:  # a runner between states may not know yet
        return 0


class WorkerTelemetry:
    """Records request events in this process and reports them to the master."""

    def __init__(self, environment: Environment, runner: Runner) -> None:
        self.environment = environment
        self.runner = runner
        self.recorder = IntervalRecorder()
        self.interval_start_s = time.time()
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._loop_lag_s = 0.0
        self._failed_sends = 0
        self._schedule_seen = (0.0, 0.0)  # open model (started, lag_ms_total) at the last report
        self._target_starts = 0.0  # the open model's target rate integrated over the test
        self._greenlets = [gevent.spawn(self._report_loop), gevent.spawn(self._probe_loop)]
        hooks = environment.events
        hooks.request.add_listener(self.on_request)
        # Timings for the results only (funnel steps), kept out of Locust's statistics.
        results_only = EventHook()
        results_only.add_listener(self.on_request)
        setattr(hooks, RESULTS_ONLY_EVENT, results_only)
        hooks.test_start.add_listener(self.on_test_start)
        hooks.test_stop.add_listener(self.on_test_stop)
        hooks.quitting.add_listener(self.on_quitting)
        if isinstance(runner, WorkerRunner):
            hooks.report_to_master.add_listener(self.on_report_to_master)

    @property
    def worker_id(self) -> str:
        return str(getattr(self.runner, "client_id", "local"))

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | str | None = None,
        **_kwargs: Any,
    ) -> None:
        try:
            self.recorder.record(name, request_type, response_time, exception)
        except Exception:
            logger.exception("telemetry could not record %s %s", request_type, name)

    def on_test_start(self, **_kwargs: Any) -> None:
        # Anything recorded before the start belongs to no test; send it anyway, but not the
        # CPU of start-up (imports, connecting): it is no measure of the load.
        self.flush(cpu=False)
        self.interval_start_s = time.time()
        self._schedule_seen = (0.0, 0.0)
        self._target_starts = 0.0

    def on_test_stop(self, **_kwargs: Any) -> None:
        self.flush()

    def on_quitting(self, **_kwargs: Any) -> None:
        if self.recorder:
            self.flush()

    def on_report_to_master(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """Ride along Locust's own final stats report with anything recorded after the stop."""
        if self.recorder and self.runner.state not in _ACTIVE:
            data[MESSAGE_TYPE] = self.take_report()

    def flush(self, *, cpu: bool = True) -> None:
        """Send the current interval's report to the master and start a new interval."""
        report = self.take_report()
        if not cpu:
            report["cpu_percent"] = None
        try:
            self.runner.send_message(MESSAGE_TYPE, report)
        except Exception:
            self._failed_sends += 1
            logger.exception("telemetry report lost (%d so far)", self._failed_sends)

    def take_report(self) -> dict[str, Any]:
        now = time.time()
        lag, self._loop_lag_s = self._loop_lag_s, 0.0
        report = self.recorder.take(
            start_s=self.interval_start_s,
            end_s=now,
            index=self.runner.worker_index if isinstance(self.runner, WorkerRunner) else None,
            users=_user_count(self.runner),
            cpu_percent=self._process.cpu_percent(None),
            loop_lag_s=lag,
            open_model=self._open_model(now - self.interval_start_s),
        )
        self.interval_start_s = now
        return report

    def _open_model(self, interval_s: float) -> dict[str, float] | None:
        """The open model's counters, with its mean start lag over this interval added
        (``schedule_lag_mean_s``). ``schedule_lag_s`` stays the worst start lag the source
        reports (one late start in hundreds is what an alert on it must see); a source that
        reports none gets the mean there. ``target_starts`` counts the visits the target rate
        asked for (``target_rps`` integrated over the reports' intervals), so that achieved
        and target compare as two counters of visits, over the same window."""
        counters = open_model_counters(self.environment)
        if counters is not None and "target_rps" in counters:
            self._target_starts += counters["target_rps"] * max(interval_s, 0.0)
            counters["target_starts"] = self._target_starts
        if counters is None or "started" not in counters or "lag_ms_total" not in counters:
            return counters
        started, lag_ms_total = counters["started"], counters["lag_ms_total"]
        seen_started, seen_lag_ms = self._schedule_seen
        mean_s = 0.0
        if started > seen_started:
            mean_s = (lag_ms_total - seen_lag_ms) / (started - seen_started) / 1e3
        counters["schedule_lag_mean_s"] = mean_s
        counters.setdefault("schedule_lag_s", mean_s)
        self._schedule_seen = (started, lag_ms_total)
        return counters

    def _report_loop(self) -> None:
        while True:
            _sleep_to_boundary(REPORT_INTERVAL_S)
            if self.recorder or self.runner.state in _ACTIVE:
                self.flush()

    def _probe_loop(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(LOOP_PROBE_S)
            lag = time.monotonic() - before - LOOP_PROBE_S
            self._loop_lag_s = max(self._loop_lag_s, lag)


class MasterTelemetry:
    """Merges reports, watches workers, writes results and serves ``/metrics``."""

    def __init__(self, environment: Environment, runner: Runner) -> None:
        self.environment = environment
        self.runner = runner
        self.distributed = isinstance(runner, MasterRunner)
        self.aggregator = RunAggregator(
            interval_s=REPORT_INTERVAL_S, mode="distributed" if self.distributed else "local"
        )
        options = environment.parsed_options
        directory = getattr(options, "results_dir", None)
        self.results_dir = Path(directory) if directory else None
        self.linger_s = float(getattr(options, "metrics_linger", 0.0) or 0.0)
        self.metrics: MetricsServer | None = None
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._known_workers: set[str] = set()
        self._last_write_s = 0.0
        self._written_update_s: float | None = None  # aggregator.last_update_s at the last write
        run_time = getattr(options, "run_time", None)
        self.run_time_s = float(run_time) if isinstance(run_time, int | float) else None
        self._final_written = False
        runner.register_message(MESSAGE_TYPE, self.on_report)
        hooks = environment.events
        hooks.test_start.add_listener(self.on_test_start)
        hooks.test_stop.add_listener(self.on_test_stop)
        hooks.quitting.add_listener(self.on_quitting)
        hooks.quit.add_listener(self.on_quit)
        hooks.worker_report.add_listener(self.on_worker_report)
        port = getattr(options, "metrics_port", None)
        if port is not None:
            self.start_exporter(str(getattr(options, "metrics_host", "127.0.0.1")), int(port))
        self._tick_greenlet = gevent.spawn(self._tick_loop)

    # -- exporter ----------------------------------------------------------------------------
    def live(self) -> LiveGauges:
        workers = self.runner.worker_count if self.distributed else 1  # type: ignore[attr-defined]
        target = getattr(self.runner, "target_user_count", 0) or 0
        return LiveGauges(
            users=_user_count(self.runner), workers=int(workers), target_users=int(target)
        )

    def start_exporter(self, host: str, port: int) -> None:
        collector = LoadgenCollector(lambda: self.aggregator, self.live)
        self.metrics = serve(
            collector,
            host=host,
            port=port,
            live=lambda: live_totals(self.aggregator, self.live()),
        )
        logger.info("loadgen metrics on http://%s:%d/metrics", host, self.metrics.port)
        if self.results_dir is not None:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            results.atomic_write(
                self.results_dir / results.METRICS_PORT_FILE, f"{self.metrics.port}\n".encode()
            )

    # -- events ------------------------------------------------------------------------------
    def on_report(self, environment: Environment, msg: Any, **_kwargs: Any) -> None:
        self.merge("local" if not self.distributed else str(msg.node_id), msg.data)
        self.write_if_near_end(time.time())

    def write_if_near_end(self, now_s: float) -> None:
        agg = self.aggregator
        if agg.start_s is None or now_s - self._last_write_s < NEAR_END_GAP_S:
            return
        ending = self.run_time_s is not None and now_s >= agg.start_s + self.run_time_s - NEAR_END_S
        if ending or agg.stop_s is not None:
            self.write(final=False)

    def merge(self, worker_id: str, report: Any) -> None:
        try:
            self.aggregator.add_report(worker_id, report, received_s=time.time())
        except Exception:
            self.aggregator.rejected_reports += 1
            logger.exception("telemetry report from %s could not be merged", worker_id)

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        report = data.get(MESSAGE_TYPE)
        if report is not None:
            self.merge(str(client_id), report)
            self.write_if_near_end(time.time())

    def on_test_start(self, **_kwargs: Any) -> None:
        self.aggregator.start(time.time())
        self._final_written = False
        self.write(final=False)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.aggregator.started:
            self.aggregator.stop(time.time())
            self.write(final=False)

    def on_quitting(self, **_kwargs: Any) -> None:
        self.aggregator.interrupt()

    def on_quit(self, **_kwargs: Any) -> None:
        self._tick_greenlet.kill(block=False)
        if not self.aggregator.started:
            # Stopped before any test began (a signal while waiting for workers): the folder
            # still gets its files, empty and marked partial.
            self.aggregator.interrupt()
        self.write(final=True)
        self.linger()

    # -- periodic work -----------------------------------------------------------------------
    def _tick_loop(self) -> None:
        while True:
            gevent.sleep(TICK_S)
            try:
                self.tick(time.time())
            except Exception:
                logger.exception("telemetry tick failed")

    def tick(self, now_s: float) -> None:
        if not self.aggregator.started:
            return
        live = self.live()
        self.aggregator.sample(
            now_s,
            users=live.users,
            workers=live.workers,
            master_cpu_percent=self._process.cpu_percent(None),
        )
        if self.distributed:
            self.watch_workers(now_s)
        reported = self.aggregator.last_update_s != self._written_update_s
        if reported or now_s - self._last_write_s >= WRITE_INTERVAL_S:
            self.write(final=False)

    def watch_workers(self, now_s: float) -> None:
        """Mark the run degraded for a worker Locust finds missing, or that left mid-test."""
        clients = self.runner.clients  # type: ignore[attr-defined]
        active = self.runner.state in _ACTIVE and self.aggregator.stop_s is None
        current = set(clients.keys())
        for worker_id in current:
            node = clients.get(worker_id)
            missing = node is not None and node.state == "missing"
            if missing and self.aggregator.mark_degraded(worker_id, at_s=now_s, reason="missing"):
                logger.warning("worker %s missed its heartbeats: run degraded", worker_id)
        if active:
            for worker_id in self._known_workers - current:
                if self.aggregator.mark_degraded(worker_id, at_s=now_s, reason="left"):
                    logger.warning("worker %s left during the test: run degraded", worker_id)
        self._known_workers = current if active else set()

    def write(self, *, final: bool) -> None:
        self._last_write_s = time.time()
        self._written_update_s = self.aggregator.last_update_s
        if self.results_dir is None or self._final_written:
            return
        total = self.runner.stats.total
        try:
            results.write_results(
                self.results_dir,
                self.aggregator,
                final=final,
                locust_stats={"requests": total.num_requests, "failures": total.num_failures},
            )
        except OSError:
            logger.exception("could not write results to %s", self.results_dir)
            return
        self._final_written = final

    def linger(self) -> None:
        """Keep ``/metrics`` up until one scrape after the final write, or ``linger_s``."""
        if self.metrics is None or self.linger_s <= 0:
            return
        seen = self.metrics.scrapes
        deadline = time.monotonic() + self.linger_s
        while self.metrics.scrapes == seen and time.monotonic() < deadline:
            gevent.sleep(0.05)
        gevent.sleep(0.05)  # let the scrape's response finish


_state: dict[str, Any] = {}


def install(hooks: Any = events) -> None:
    """Enable the telemetry in this process: its arguments and its ``init`` listener.

    ``hooks`` is Locust's global ``events`` (what a locustfile wants); calling it again with
    the same hooks changes nothing.
    """
    if id(hooks) in _installed:
        return
    _installed.add(id(hooks))
    hooks.init_command_line_parser.add_listener(_add_arguments)
    hooks.init.add_listener(_install)


_installed: set[int] = set()


def _add_arguments(parser: Any) -> None:
    distributed.add_arguments(parser)
    group = parser.add_argument_group("telemetry (scenarios.telemetry)")
    group.add_argument(
        "--results-dir",
        default=None,
        env_var="PORTAL_RESULTS_DIR",
        help="folder of this run's results (results/<run-id>); nothing is written without it",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        env_var="PORTAL_METRICS_PORT",
        help="serve the loadgen_* Prometheus metrics on this port (0: any free port)",
    )
    group.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        env_var="PORTAL_METRICS_HOST",
        help="address the metrics server binds (default 127.0.0.1)",
    )
    group.add_argument(
        "--metrics-linger",
        type=float,
        default=0.0,
        env_var="PORTAL_METRICS_LINGER",
        help="seconds to keep /metrics up at exit until the final values are scraped",
    )


def _install(environment: Environment, runner: Runner | None = None, **_kwargs: Any) -> None:
    runner = runner or environment.runner
    if runner is None:
        return
    # First, so that its checks (identity, target, the workers' joins) run before any test
    # start of the telemetry's; it reaches the master's telemetry once created.
    distributed.install(environment, runner, lambda: _state.get("master"))
    if not isinstance(runner, MasterRunner):
        _state["worker"] = WorkerTelemetry(environment, runner)
    if not isinstance(runner, WorkerRunner):
        _state["master"] = MasterTelemetry(environment, runner)
