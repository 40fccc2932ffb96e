"""Capacity probe: one request per arrival at a rate the harness sets while the test runs.

``portal-load capacity`` needs an open model whose rate it can step up as it measures, one
step held until it is steady, without restarting Locust. :class:`CapacityProbe` is that
executor: Poisson arrivals (so a simulated M/M/c backend sees exactly an M/M/c queue), each a
single ``GET`` of ``--probe-path`` started in a bounded pool (an open model never waits for
room: a full pool drops the arrival and counts it, as :mod:`scenarios.open_model` does).

The rate comes from ``--probe-control FILE``, a JSON object ``{"rate": 300.0, "stop": false}``
that the harness rewrites atomically; ``{"users": 16}`` instead runs a closed model of that
many request loops over all executors, each sending its next ``GET`` as soon as the previous
one answered (user steps: concurrency set, throughput measured). The master (or a local
runner) reads it every :data:`POLL_S` and sends it to its workers with Locust's own message
protocol, so remote workers follow too; ``"stop": true`` ends the test cleanly (status
``complete``). Each executor (one per worker, ``--open-executors``) takes its share of the rate::

    locust --headless --host http://127.0.0.1:8080 --probe-path /api/v1/services \\
        --probe-control /tmp/rate.json --open-executors 1 -u 1 -r 1 -t 10m CapacityProbe
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import gevent
from gevent.pool import Pool
from locust import events, task
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from scenarios import open_model
from scenarios.client import PortalUser
from scenarios.runtime import runtime_for

__all__ = ["CapacityProbe"]

logger = logging.getLogger(__name__)

POLL_S = 0.2  # how often the master reads the control file: a step change lands within it
RESEND_S = 2.0  # the rate is sent again this often, so a worker that joined late follows
IDLE_SLEEP_S = 0.05  # at rate 0 an executor checks again this often
MESSAGE = "portal_probe_rate"
DEFAULT_POOL_SIZE = 1000  # concurrent requests per executor; far above what one core sustains


class _Control:
    rate = 0.0  # arrivals per second over all executors
    users = 0  # closed model: request loops over all executors (rate is then ignored)
    executors = 1


CONTROL = _Control()


class CapacityProbe(PortalUser):
    """One executor of the capacity probe (see the module docstring); selected only when
    ``--probe-path`` is given."""

    weight = 0
    fixed_count = 0
    concurrency = DEFAULT_POOL_SIZE

    def __init__(self, environment: Any) -> None:
        options = environment.parsed_options
        self.pool_size = getattr(options, "open_pool_size", DEFAULT_POOL_SIZE)
        self.concurrency = self.pool_size
        super().__init__(environment)
        self.path = getattr(options, "probe_path", "") or "/api/v1/services"
        self.name = self.path.split("?", 1)[0]
        self.late_after_ms = getattr(options, "late_after_ms", 10.0)
        runtime = runtime_for(environment)
        self.rng = runtime.rng("probe", runtime.next_number("probe"))  # arrival gaps (--seed)
        self.pool = Pool(self.pool_size)
        self._rate_now = 0.0
        self._loops: list[Any] = []

    def target_rate(self) -> float:
        return self._rate_now

    def _loops_wanted(self) -> int:
        executors = max(1, CONTROL.executors)
        share, extra = divmod(CONTROL.users, executors)
        index = getattr(self.environment.runner, "worker_index", 0) or 0
        return share + (1 if index % executors < extra else 0)

    def _set_loops(self, want: int) -> None:
        self._loops = [g for g in self._loops if not g.dead]
        while len(self._loops) < want and not self.pool.full():
            self._loops.append(self.pool.spawn(self._closed_loop))
        while len(self._loops) > want:
            self._loops.pop().kill(block=False)

    def _closed_loop(self) -> None:
        while True:
            resp = self.client.get(self.path, name=self.name)
            open_model.SCHEDULE.completed += 1
            if not resp.ok:
                open_model.SCHEDULE.failed += 1

    @task
    def run_schedule(self) -> None:
        schedule = open_model.SCHEDULE
        open_model._RUNNING.add(self)  # its target rate is then reported as loadgen_target_rps
        due = time.monotonic()
        while True:
            if CONTROL.users > 0:
                self._rate_now = 0.0
                self._set_loops(self._loops_wanted())
                gevent.sleep(IDLE_SLEEP_S)
                due = time.monotonic()
                continue
            if self._loops:
                self._set_loops(0)
            self._rate_now = rate = CONTROL.rate / max(1, CONTROL.executors)
            if rate <= 0:
                gevent.sleep(IDLE_SLEEP_S)
                due = time.monotonic()
                continue
            due += self.rng.expovariate(rate)
            delay = due - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            schedule.due += 1
            if self.pool.full():
                schedule.dropped += 1
                continue
            self.pool.spawn(self._request, due)

    def _request(self, intended: float) -> None:
        schedule = open_model.SCHEDULE
        lag_ms = max(0.0, (time.monotonic() - intended) * 1000.0)
        schedule.started += 1
        schedule.lag_ms_total += lag_ms
        schedule.lag_ms_max = max(schedule.lag_ms_max, lag_ms)
        if lag_ms > self.late_after_ms:
            schedule.late += 1
        resp = self.client.get(self.path, name=self.name)
        schedule.completed += 1
        if not resp.ok:
            schedule.failed += 1

    def on_stop(self) -> None:
        open_model._RUNNING.discard(self)
        self.pool.kill(block=True, timeout=open_model.STOP_TIMEOUT_S)
        super().on_stop()


def _read_control(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _follow_control(environment: Any, path: str) -> None:
    """Master or local runner: apply the control file, and pass the rate on to workers."""
    runner = environment.runner
    sent_at = 0.0
    sent: tuple[float, int] | None = None
    while True:
        control = _read_control(path)
        if control is not None:
            if control.get("stop"):
                CONTROL.rate = 0.0
                logger.info("capacity probe: stop requested")
                runner.quit()
                return
            CONTROL.rate = max(0.0, float(control.get("rate", 0.0)))
            CONTROL.users = max(0, int(control.get("users", 0)))
        now = time.monotonic()
        setting = (CONTROL.rate, CONTROL.users)
        if isinstance(runner, MasterRunner) and (setting != sent or now - sent_at > RESEND_S):
            runner.send_message(
                MESSAGE,
                {"rate": CONTROL.rate, "users": CONTROL.users, "executors": CONTROL.executors},
            )
            sent, sent_at = setting, now
        gevent.sleep(POLL_S)


class _SelectProbe(argparse.Action):
    """``--probe-path`` given: give the probe a count before Locust drops weightless classes."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, values)
        if values:
            CapacityProbe.fixed_count = max(1, CapacityProbe.fixed_count)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("capacity probe (scenarios.probes)")
    group.add_argument(
        "--probe-path",
        default="",
        action=_SelectProbe,
        env_var="PORTAL_PROBE_PATH",
        help="path of the one GET each arrival sends (selects the capacity probe)",
    )
    group.add_argument(
        "--probe-control",
        default="",
        env_var="PORTAL_PROBE_CONTROL",
        help='JSON file {"rate": R, "stop": false} the harness rewrites to set the rate',
    )


@events.init.add_listener
def _select_probe(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    options = environment.parsed_options
    if isinstance(runner, WorkerRunner):
        if CapacityProbe not in environment.user_classes:
            environment.user_classes.append(CapacityProbe)

        def on_rate(environment: Any, msg: Any, **_kw: Any) -> None:
            CONTROL.executors = max(1, int(msg.data.get("executors", 1)))
            CONTROL.rate = float(msg.data.get("rate", 0.0))
            CONTROL.users = int(msg.data.get("users", 0))

        runner.register_message(MESSAGE, on_rate)
        return
    if options is None or not getattr(options, "probe_path", ""):
        return
    executors = max(1, getattr(options, "open_executors", 1))
    CONTROL.executors = executors
    CapacityProbe.fixed_count = executors
    environment.user_classes[:] = [CapacityProbe]
    options.num_users = executors
    options.spawn_rate = executors
    if options.probe_control and isinstance(runner, MasterRunner | LocalRunner):
        gevent.spawn(_follow_control, environment, options.probe_control)
    logger.info("capacity probe selected: %d executor(s), GET %s", executors, options.probe_path)
