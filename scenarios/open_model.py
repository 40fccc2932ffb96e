"""Open-model executor: visits start at a target arrival rate, whatever the response times.

A closed model (N users, think time) slows down when the portal does, and hides the latency
its users would have seen: coordinated omission. Here one Locust user per executor follows an
arrival schedule (:mod:`scenarios.arrivals`: constant, ramping or diurnal rate, evenly spaced or
Poisson) and starts each visit in a bounded gevent ``Pool``:

- a visit that starts after its intended time is *late* (lag above ``--late-after-ms``);
- a visit due while the pool is full is *dropped* (an open model never waits for room);
- every request, journey and visit is recorded twice: its service time (from the moment it
  has a connection), and with the visit's start lag and the request's wait for a free
  connection added (request type ``GET+CO`` etc.), the latency a user arriving on schedule
  would have seen, as wrk2 measures it. With ``--open-connections`` below the pool size, a
  server stall holds the few connections in flight while every request due meanwhile queues:
  the stall shows in the corrected tail, and in the service time of those few only.

The schedule is reported as request events of type ``SCHEDULE`` (``start lag`` for every start,
``late start``, ``dropped start`` as failures) and in the module-level :data:`SCHEDULE` counters,
which workers also send to the master (``SCHEDULE`` there is the sum over workers);
:func:`telemetry_counters` hands them, with the current target rate and the recent worst lag,
to the load generator's telemetry (``scenarios.telemetry``).

Select it with ``--arrival-rate`` (the rate, or the peak of ``--arrival-shape ramp|diurnal``,
whose parameters are ``--arrival-<param>``: :mod:`scenarios.shape_specs`) or with
``--arrival-profile``; the closed-model users are then not spawned::

    locust --host http://127.0.0.1:8080 --headless -t 60s \\
        --arrival-profile "20s:0-200,40s:200" --arrival-poisson --open-pool-size 500
    locust ... --arrival-shape diurnal --arrival-rate 300 --arrival-duration 240 --arrival-par 2

Every draw is seeded (``--seed``): each executor's arrival times come from one generator, and
each visit's choices from its own, made from the executor's number and the visit's index.
A visit leases a test account for its duration (never one another visit holds); when all are
held it fails at once (``ACCOUNTS`` ``no free account``) rather than wait and fall behind.
"""

from __future__ import annotations

import logging
import random
import time
import weakref
from typing import Any

import gevent
from gevent.pool import Pool
from locust import events, task
from locust.exception import StopUser
from locust.runners import LocalRunner, WorkerRunner

from scenarios import journeys
from scenarios.arrivals import ScheduleCounters, arrival_times
from scenarios.client import PortalUser
from scenarios.journeys.context import JourneyContext
from scenarios.runtime import runtime_for
from scenarios.settings import usage_error
from scenarios.shape_specs import (
    ARRIVAL_OPTION_PREFIX,
    ARRIVAL_SHAPES,
    CONSTANT,
    ShapeParamError,
    option_params,
    rate_profile_from_options,
)
from scenarios.workload import Assumptions

__all__ = ["SCHEDULE", "OpenModelVisits", "telemetry_counters"]

logger = logging.getLogger(__name__)

SCHEDULE_TYPE = "SCHEDULE"
ACCOUNTS_TYPE = "ACCOUNTS"
DEFAULT_POOL_SIZE = 1000  # concurrent visits per executor; far above what one core sustains
DEFAULT_LATE_AFTER_MS = 10.0  # gevent's scheduling jitter is ~1 ms; 10 ms means falling behind
STOP_TIMEOUT_S = 5.0  # how long stopping waits for killed visits to unwind


SCHEDULE = ScheduleCounters()
"""Counters of this process's executors; on the master, the sum of the workers' counters."""

_WORKER_SCHEDULES: dict[str, dict[str, float]] = {}
_RUNNING: weakref.WeakSet[OpenModelVisits] = weakref.WeakSet()
_window_lag_ms = 0.0  # worst start lag since the telemetry last read it


def telemetry_counters(environment: Any) -> dict[str, float]:
    """This process's schedule for the load generator's telemetry (``scenarios.telemetry``).

    The cumulative counters of :data:`SCHEDULE`, plus two gauges: ``target_rps``, the arrival
    rate the running executors aim at now, and ``schedule_lag_s``, the worst start lag since
    the previous call.
    """
    global _window_lag_ms
    values: dict[str, float] = dict(SCHEDULE.snapshot())
    values["target_rps"] = sum(executor.target_rate() for executor in _RUNNING)
    values["schedule_lag_s"] = _window_lag_ms / 1000.0
    _window_lag_ms = 0.0
    return values


class OpenModelVisits(PortalUser):
    """One executor of the open model; see the module docstring. Spawned only when an
    arrival option is given (its weight is zero otherwise)."""

    weight = 0
    fixed_count = 0
    concurrency = DEFAULT_POOL_SIZE
    anonymous_share = Assumptions().anonymous_share

    def __init__(self, environment: Any) -> None:
        options = environment.parsed_options
        self.pool_size = getattr(options, "open_pool_size", DEFAULT_POOL_SIZE)
        # Keep-alive connections per host, shared by the executor's visits (none queues for
        # one by default); fewer make visits wait for a free one, as wrk2's fixed connections do.
        self.concurrency = getattr(options, "open_connections", 0) or self.pool_size
        super().__init__(environment)
        self.runtime = runtime_for(environment)
        self.settings = self.runtime.settings
        self.number = self.runtime.next_number("open")
        self.arrival_rng = self.runtime.rng("open", self.number, "arrivals")
        self.late_after_ms = getattr(options, "late_after_ms", DEFAULT_LATE_AFTER_MS)
        self.poisson = bool(getattr(options, "arrival_poisson", False))
        executors = max(1, getattr(options, "open_executors", 1))
        self.profile = rate_profile_from_options(options, executors) if options else None
        self.pool = Pool(self.pool_size)
        self._t0: float | None = None
        self._visits = 0

    @task
    def run_schedule(self) -> None:
        if self.profile is None:
            raise StopUser()
        t0 = self._t0 = time.monotonic()
        _RUNNING.add(self)
        for offset in arrival_times(self.profile, poisson=self.poisson, rng=self.arrival_rng):
            intended = t0 + offset
            delay = intended - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            SCHEDULE.due += 1
            if self.pool.full():
                SCHEDULE.dropped += 1
                self._event(
                    SCHEDULE_TYPE,
                    "dropped start",
                    0.0,
                    RuntimeError(f"pool of {self.pool_size} visits is full"),
                )
                continue
            self.pool.spawn(self._visit, self._visits, intended)
            self._visits += 1
        _RUNNING.discard(self)
        self.pool.join()
        logger.info("open model: schedule complete: %s", SCHEDULE.snapshot())
        if isinstance(self.environment.runner, LocalRunner):
            gevent.spawn_later(0, self.environment.runner.quit)
        raise StopUser()

    def target_rate(self) -> float:
        """Visits per second this executor's schedule asks for now."""
        if self.profile is None or self._t0 is None:
            return 0.0
        return self.profile.rate_at(time.monotonic() - self._t0)

    def visit_rng(self, index: int) -> random.Random:
        """The generator of this executor's visit number ``index``."""
        return self.runtime.rng("open", self.number, "visit", index)

    def _visit(self, index: int, intended: float) -> None:
        global _window_lag_ms
        lag_ms = max(0.0, (time.monotonic() - intended) * 1000.0)
        _window_lag_ms = max(_window_lag_ms, lag_ms)
        SCHEDULE.started += 1
        SCHEDULE.lag_ms_total += lag_ms
        SCHEDULE.lag_ms_max = max(SCHEDULE.lag_ms_max, lag_ms)
        self._schedule_event("start lag", lag_ms)
        if lag_ms > self.late_after_ms:
            SCHEDULE.late += 1
            self._schedule_event("late start", lag_ms)
        session = self.client.sibling()
        session.start_lag_ms = lag_ms
        rng = self.visit_rng(index)
        try:
            ok = self._journeys(session, rng)
        except Exception:
            # Journeys record their own failures; this is a defect, logged once per visit.
            logger.exception("open model: visit crashed")
            ok = False
        SCHEDULE.completed += 1
        if not ok:
            SCHEDULE.failed += 1

    def _journeys(self, session: Any, rng: random.Random) -> bool:
        """One visit: anonymous browsing, or a citizen's visit on a leased account."""
        pacing = self.settings.pacing
        if rng.random() < self.anonymous_share:
            return journeys.anonymous_visit(JourneyContext(session, pacing=pacing, rng=rng))
        account = self.runtime.try_lease()
        if account is None:
            self._event(ACCOUNTS_TYPE, "no free account", 0.0, RuntimeError("every account held"))
            return False
        try:
            ctx = JourneyContext(
                session, citizen=account, pacing=pacing, rng=rng, mfa_code=self.settings.mfa_code
            )
            return journeys.citizen_visit(ctx)
        finally:
            self.runtime.release(account)

    def _schedule_event(self, name: str, lag_ms: float) -> None:
        self._event(SCHEDULE_TYPE, name, lag_ms, None)

    def _event(self, kind: str, name: str, time_ms: float, exception: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=time_ms,
            response_length=0,
            response=None,
            context={},
            exception=exception,
            start_time=time.time(),
            url=None,
        )

    def on_stop(self) -> None:
        _RUNNING.discard(self)
        # Kill the visits before closing their connections, so none fails on a closed pool.
        self.pool.kill(block=True, timeout=STOP_TIMEOUT_S)
        super().on_stop()


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("open model (scenarios.open_model)")
    group.add_argument(
        "--arrival-rate",
        type=float,
        default=0.0,
        env_var="PORTAL_ARRIVAL_RATE",
        help="constant arrival rate, visits per second over all workers",
    )
    group.add_argument(
        "--arrival-shape",
        choices=list(ARRIVAL_SHAPES),
        default=CONSTANT,
        env_var="PORTAL_ARRIVAL_SHAPE",
        help="how the rate moves: constant, ramp (to --arrival-rate) or diurnal (peak "
        "--arrival-rate at the busiest hour)",
    )
    group.add_argument(
        "--arrival-duration",
        type=float,
        default=0.0,
        env_var="PORTAL_ARRIVAL_DURATION",
        help="seconds of the schedule (a constant rate without one runs until -t)",
    )
    for name, param in option_params(ARRIVAL_SHAPES).items():
        shapes = ", ".join(s.name for s in ARRIVAL_SHAPES.values() if s.param(name) is not None)
        group.add_argument(
            param.option(ARRIVAL_OPTION_PREFIX),
            dest="arrival_" + name,
            type=int if param.integer else float,
            default=None,
            env_var="PORTAL_ARRIVAL_" + name.upper(),
            help=f"{param.meaning} ({param.unit}; {shapes})",
        )
    group.add_argument(
        "--arrival-profile",
        default="",
        env_var="PORTAL_ARRIVAL_PROFILE",
        help='piecewise-linear rate instead of a shape, e.g. "30s:0-100,60s:100" (visits/s)',
    )
    group.add_argument(
        "--arrival-poisson",
        action="store_true",
        default=False,
        env_var="PORTAL_ARRIVAL_POISSON",
        help="Poisson arrivals instead of evenly spaced ones",
    )
    group.add_argument(
        "--open-pool-size",
        type=int,
        default=DEFAULT_POOL_SIZE,
        env_var="PORTAL_OPEN_POOL_SIZE",
        help="most visits in flight per executor; arrivals beyond it are dropped and counted",
    )
    group.add_argument(
        "--open-connections",
        type=int,
        default=0,
        env_var="PORTAL_OPEN_CONNECTIONS",
        help="keep-alive connections per executor and host, shared by its visits "
        "(0: as many as --open-pool-size); a request waiting for one counts the wait "
        "in its corrected (+CO) time only",
    )
    group.add_argument(
        "--open-executors",
        type=int,
        default=1,
        env_var="PORTAL_OPEN_EXECUTORS",
        help="executor users (one per worker in a distributed run); each takes its share",
    )
    group.add_argument(
        "--late-after-ms",
        type=float,
        default=DEFAULT_LATE_AFTER_MS,
        env_var="PORTAL_LATE_AFTER_MS",
        help="a visit starting later than this after its intended time counts as late",
    )


@events.init.add_listener
def _select_open_model(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # The master decides what runs; a worker only needs to know the class by name.
        if not any(issubclass(c, OpenModelVisits) for c in environment.user_classes):
            environment.user_classes.append(OpenModelVisits)
        return
    options = environment.parsed_options
    if options is None or not hasattr(options, "arrival_rate"):
        return
    try:
        selected = rate_profile_from_options(options) is not None
    except ShapeParamError as error:
        usage_error(f"open model: {error}")
    if not selected:
        return
    executors = max(1, options.open_executors)
    # A locustfile's own subclass of the executor (with a fixed_count, so that Locust keeps it)
    # runs instead of this one.
    executor = next(
        (c for c in environment.user_classes if issubclass(c, OpenModelVisits)), OpenModelVisits
    )
    executor.fixed_count = executors
    environment.user_classes[:] = [executor]
    options.num_users = executors
    options.spawn_rate = executors
    logger.info("open model selected: %d executor(s)", executors)


@events.test_start.add_listener
def _reset_schedule(environment: Any, **_kwargs: Any) -> None:
    SCHEDULE.reset()
    _WORKER_SCHEDULES.clear()


@events.report_to_master.add_listener
def _send_schedule(client_id: str, data: dict[str, Any]) -> None:
    data["open_model_schedule"] = SCHEDULE.snapshot()


@events.worker_report.add_listener
def _merge_schedule(client_id: str, data: dict[str, Any]) -> None:
    snapshot = data.get("open_model_schedule")
    if snapshot is None:
        return
    _WORKER_SCHEDULES[client_id] = snapshot
    totals = ScheduleCounters.merge(_WORKER_SCHEDULES.values())
    for key, value in totals.snapshot().items():
        setattr(SCHEDULE, key, value)
