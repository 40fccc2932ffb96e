"""Runs across hosts: Locust's own master/worker protocol, with three checks of its own.

1. **One version of the journeys.** A worker says hello as soon as it has joined
   (``portal_hello``: its version, the fingerprint of its scenario code, its host facts). The
   master refuses a worker whose identity differs from its own (``portal_refused``) and the
   worker quits with exit code 2; each side logs one line. The master's identity also rides
   along every spawn message (Locust forwards the master's custom options to its workers),
   and a worker compares it before it starts a single user, so a worker that joins while a
   test runs cannot send load from other code either.
2. **The target guard, on every process that sends load.** A worker (or a local run) refuses
   a target outside loopback unless the master's campaign allows remote targets
   (``--allow-remote``, forwarded from the master); it tells the master and quits with exit
   code 2, before any request.
3. **Joins and losses.** The master's first test start waits until ``--expect-workers``
   workers have said hello and none is still unknown. A worker that stops sending heartbeats
   (Locust's, one a second) for :data:`LOST_AFTER_S` marks the run degraded at once, and the
   master's log names its host.

The master keeps ``workers.json`` (:data:`scenarios.hosts.WORKERS_JSON`) in the run's folder:
each worker that joined with its host facts, each refused one and why, each lost one, the
number expected and when the test started. The harness reads it to wait for remote workers,
to say which never joined, and to put every worker's facts into ``provenance.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import (
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    Runner,
    WorkerRunner,
)

from scenarios.hosts import (
    WORKERS_JSON,
    Identity,
    address_towards,
    host_facts,
    identity,
    is_loopback_url,
)
from scenarios.telemetry.results import atomic_write

__all__ = ["EXIT_REFUSED", "HELLO", "LOST_AFTER_S", "REFUSED", "install"]

logger = logging.getLogger(__name__)

HELLO = "portal_hello"
REFUSED = "portal_refused"
# An attribute of the master's parsed options: Locust sends every option that is not one of
# its own to the workers with each spawn message, so the workers learn the master's identity.
FORWARDED_IDENTITY = "portal_master_identity"
EXIT_REFUSED = 2  # a usage error, as the harness's own: the run was not the one asked for
# A worker of this project says hello within milliseconds of joining; one silent this long
# does not run this project's plugin, and is asked to quit.
HELLO_WAIT_S = 10.0
# Workers send a heartbeat every second; three missed is a lost worker. Locust itself calls a
# worker missing a little later (four to five seconds), too late to name it within five.
LOST_AFTER_S = 3.0
WATCH_S = 0.5
# A watch that woke this late saw a stalled master: heartbeats may be queued, not missing.
STALL_S = 1.0
GATE_POLL_S = 0.05


@dataclass
class WorkerRecord:
    """What the master knows of one worker: ``joined``, ``refused``, ``lost``."""

    id: str
    index: int | None
    state: str
    at_unix_s: float
    facts: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, str] | None = None
    reason: str | None = None

    def where(self) -> str:
        host = self.facts.get("host") or self.id
        address = self.facts.get("address")
        return f"{host} ({address})" if address else str(host)


def _locustfiles(environment: Environment) -> list[str]:
    files = getattr(environment, "parsed_locustfiles", None) or []
    return [f for f in files if isinstance(f, str) and os.path.isfile(f)]


def _forwarded(options: Any) -> Identity | None:
    text = getattr(options, FORWARDED_IDENTITY, None)
    if not isinstance(text, str):
        return None
    try:
        return Identity.from_dict(json.loads(text))
    except ValueError:
        return None


def _quit(environment: Environment, runner: Runner) -> None:
    """Quit with exit code 2 from inside a test start: no user is spawned after it."""
    environment.process_exit_code = EXIT_REFUSED
    runner.quit()
    raise gevent.GreenletExit  # ends the greenlet that was starting the test


class WorkerSide:
    """A process that sends load: says hello, checks identity and target at each start."""

    def __init__(self, environment: Environment, runner: Runner) -> None:
        self.environment = environment
        self.runner = runner
        self.identity = identity(_locustfiles(environment))
        self.distributed = isinstance(runner, WorkerRunner)
        environment.events.test_start.add_listener(self.on_test_start)
        if isinstance(runner, WorkerRunner):
            runner.register_message(REFUSED, self.on_refused)
            facts = {
                **host_facts(),
                "pid": os.getpid(),
                "address": address_towards(runner.master_host, runner.master_port),
            }
            runner.send_message(HELLO, {"identity": self.identity.as_dict(), "facts": facts})

    def _master(self) -> str:
        runner = self.runner
        return f"{getattr(runner, 'master_host', '?')}:{getattr(runner, 'master_port', '?')}"

    def on_refused(self, environment: Environment, msg: Any, **_kwargs: Any) -> None:
        reason = (msg.data or {}).get("reason", "no reason given")
        logger.error("portal-load worker: the master at %s refused this worker: %s",
                     self._master(), reason)  # fmt: skip
        _quit(self.environment, self.runner)

    def on_test_start(self, **_kwargs: Any) -> None:
        reason = self.refusal()
        if reason is None:
            return
        logger.error("portal-load: refusing to send load: %s", reason)
        if self.distributed:
            try:
                self.runner.send_message(REFUSED, {"reason": reason})
            except Exception:
                logger.exception("could not tell the master why")
        _quit(self.environment, self.runner)

    def refusal(self) -> str | None:
        """Why this process must not start its users now; None if it may."""
        options = self.environment.parsed_options
        if self.distributed:
            master = _forwarded(options)
            if master is None:
                return (
                    "the master sent no scenario identity: it does not run this project's "
                    "locustfile and plugin"
                )
            differs = self.identity.difference(master)
            if differs is not None:
                return f"this worker runs {differs}"
        if getattr(options, "allow_remote", False):
            return None
        whose = "the master's campaign" if self.distributed else "this run"
        for host in self.targets():
            if not is_loopback_url(host):
                return (
                    f"the target {host} is not on loopback and {whose} does not allow remote "
                    "targets (allow_remote = true, --allow-remote)"
                )
        return None

    def targets(self) -> list[str]:
        if self.environment.host:
            return [self.environment.host]
        classes = getattr(self.runner, "user_classes", None) or []
        return sorted({c.host for c in classes if getattr(c, "host", None)})


class MasterSide:
    """The master: checks hellos, gates the first start, watches heartbeats, keeps the record."""

    def __init__(
        self, environment: Environment, runner: MasterRunner, telemetry: Callable[[], Any]
    ) -> None:
        self.environment = environment
        self.runner = runner
        self.telemetry = telemetry
        self.identity = identity(_locustfiles(environment))
        options = environment.parsed_options
        if options is not None:
            setattr(options, FORWARDED_IDENTITY, json.dumps(self.identity.as_dict()))
        directory = getattr(options, "results_dir", None)
        self.results_dir = Path(directory) if directory else None
        self.records: dict[str, WorkerRecord] = {}
        self.connected_at: dict[str, float] = {}
        self.heartbeat_at: dict[str, float] = {}
        self.started_s: float | None = None
        runner.register_message(HELLO, self.on_hello)
        runner.register_message(REFUSED, self.on_refused)
        hooks = environment.events
        hooks.worker_connect.add_listener(self.on_connect)
        hooks.heartbeat_sent.add_listener(self.on_heartbeat)
        hooks.test_start.add_listener(self.on_test_start)
        self._greenlet = gevent.spawn(self._watch_loop)
        self.write()

    # -- messages --------------------------------------------------------------------------
    def on_connect(self, client_id: str, **_kwargs: Any) -> None:
        self.connected_at[client_id] = time.monotonic()

    def on_heartbeat(self, client_id: str, **_kwargs: Any) -> None:
        self.heartbeat_at[client_id] = time.monotonic()

    def on_hello(self, environment: Environment, msg: Any, **_kwargs: Any) -> None:
        data = msg.data if isinstance(msg.data, dict) else {}
        facts = data.get("facts") if isinstance(data.get("facts"), dict) else {}
        theirs = Identity.from_dict(data.get("identity"))
        record = self._record(msg.node_id, "joined", facts, theirs)
        differs = "no identity" if theirs is None else theirs.difference(self.identity)
        if differs is not None:
            self.refuse(record, f"it runs {differs}")
            return
        self.heartbeat_at[record.id] = time.monotonic()
        logger.info("worker %s joined from %s", record.id, record.where())
        self.write()

    def on_refused(self, environment: Environment, msg: Any, **_kwargs: Any) -> None:
        record = self.records.get(msg.node_id) or self._record(msg.node_id, "joined", {}, None)
        reason = str((msg.data or {}).get("reason", "no reason given"))
        logger.error("portal-load master: worker %s on %s refused to run: %s",
                     record.id, record.where(), reason)  # fmt: skip
        record.state, record.reason, record.at_unix_s = "refused", reason, time.time()
        # A worker refuses the master's own campaign (its target): the run is not the one
        # asked for, whatever the other workers do.
        self.environment.process_exit_code = EXIT_REFUSED
        self.write()

    def _record(
        self, client_id: str, state: str, facts: dict[str, Any], ident: Identity | None
    ) -> WorkerRecord:
        record = WorkerRecord(
            id=client_id,
            index=self.runner.get_worker_index(client_id),
            state=state,
            at_unix_s=time.time(),
            facts=dict(facts),
            identity=ident.as_dict() if ident else None,
        )
        self.records[client_id] = record
        return record

    def refuse(self, record: WorkerRecord, reason: str) -> None:
        logger.error("portal-load master: refusing worker %s on %s: %s; the master runs %s",
                     record.id, record.where(), reason, self.identity)  # fmt: skip
        record.state, record.reason, record.at_unix_s = "refused", reason, time.time()
        self.runner.send_message(REFUSED, {"reason": f"{reason}"}, client_id=record.id)
        self.write()

    # -- the first start ---------------------------------------------------------------------
    def on_test_start(self, **_kwargs: Any) -> None:
        self.gate()
        self.started_s = time.time()
        self.write()

    def _connected(self) -> list[str]:
        return [n.id for n in self.runner.clients.all if n.state != STATE_MISSING]

    def gate(self) -> None:
        """Wait until the expected workers have said hello and every connected one is known."""
        options = self.environment.parsed_options
        automatic = bool(getattr(options, "headless", False) or getattr(options, "autostart", 0))
        expected = int(getattr(options, "expect_workers", 1) or 1) if automatic else 1
        max_wait_s = float(getattr(options, "expect_workers_max_wait", 0) or 0)
        began = time.monotonic()
        while True:
            now = time.monotonic()
            connected = self._connected()
            states = {c: self.records[c].state for c in connected if c in self.records}
            unknown = [c for c in connected if c not in states]
            refused = [c for c in connected if states.get(c) == "refused"]
            joined = [c for c in connected if states.get(c) == "joined"]
            if not unknown and not refused and len(joined) >= expected:
                return
            for client_id in unknown:
                if now - self.connected_at.get(client_id, began) > HELLO_WAIT_S:
                    record = self._record(client_id, "refused", {}, None)
                    record.reason = "it said no hello: it does not run this project's plugin"
                    logger.error("portal-load master: refusing worker %s: %s",
                                 client_id, record.reason)  # fmt: skip
                    self.runner.send_message("quit", client_id=client_id)  # Locust's own
                    self.write()
            if max_wait_s and now - began > max_wait_s:
                logger.error("portal-load master: %s", self.missing_line(expected, max_wait_s))
                _quit(self.environment, self.runner)
            gevent.sleep(GATE_POLL_S)

    def missing_line(self, expected: int, waited_s: float) -> str:
        joined = [r for r in self.records.values() if r.state == "joined"]
        refused = [r for r in self.records.values() if r.state == "refused"]
        line = f"{len(joined)} of {expected} workers joined within {waited_s:g} s"
        if refused:
            line += "; refused: " + "; ".join(f"{r.where()}: {r.reason}" for r in refused)
        return line

    # -- losses ------------------------------------------------------------------------------
    def _watch_loop(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(WATCH_S)
            if time.monotonic() - before - WATCH_S > STALL_S:
                continue
            try:
                self.watch(time.monotonic())
            except Exception:
                logger.exception("watching the workers failed")

    def watch(self, now_mono: float) -> None:
        """Mark the run degraded for a joined worker silent for :data:`LOST_AFTER_S`."""
        if self.started_s is None or self.runner.state not in (STATE_RUNNING, STATE_SPAWNING):
            return
        telemetry = self.telemetry()
        aggregator = getattr(telemetry, "aggregator", None)
        if aggregator is None or aggregator.stop_s is not None:
            return
        for client_id in list(self.runner.clients.keys()):
            record = self.records.get(client_id)
            last = self.heartbeat_at.get(client_id)
            if record is None or record.state != "joined" or last is None:
                continue
            if now_mono - last <= LOST_AFTER_S:
                continue
            record.state, record.at_unix_s = "lost", time.time()
            record.reason = f"no heartbeat for {LOST_AFTER_S:g} s"
            logger.warning("portal-load master: worker %s on %s lost: %s; the run is degraded",
                           client_id, record.where(), record.reason)  # fmt: skip
            if aggregator.mark_degraded(client_id, at_s=record.at_unix_s, reason="missing"):
                telemetry.write(final=False)
            self.write()

    # -- the record ----------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        options = self.environment.parsed_options
        return {
            "schema": 1,
            "master": self.identity.as_dict(),
            "expected": int(getattr(options, "expect_workers", 1) or 1),
            "started_unix_s": self.started_s,
            "written_unix_s": time.time(),
            "workers": [asdict(r) for r in sorted(self.records.values(), key=_order)],
        }

    def write(self) -> None:
        if self.results_dir is None:
            return
        try:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.document(), indent=2, sort_keys=True) + "\n"
            atomic_write(self.results_dir / WORKERS_JSON, text.encode())
        except OSError:
            logger.exception("could not write %s", WORKERS_JSON)


def _order(record: WorkerRecord) -> tuple[bool, int, float]:
    return (record.index is None, record.index or 0, record.at_unix_s)


def add_arguments(parser: Any) -> None:
    """Its options, added by the telemetry's ``init_command_line_parser`` listener (importing
    this module installs nothing)."""
    group = parser.add_argument_group("distributed runs (scenarios.distributed)")
    group.add_argument(
        "--allow-remote",
        action="store_true",
        default=False,
        env_var="PORTAL_ALLOW_REMOTE",
        help="allow a target outside loopback; a master forwards it to its workers, which "
        "refuse such a target without it",
    )


_sides: dict[str, Any] = {}


def install(environment: Environment, runner: Runner, telemetry: Callable[[], Any]) -> None:
    """Wire this process's side in; ``telemetry`` returns the master's telemetry (its
    aggregator and ``write``), created after this so that the start gate runs first."""
    if isinstance(runner, MasterRunner):
        _sides["master"] = MasterSide(environment, runner, telemetry)
    else:
        _sides["worker"] = WorkerSide(environment, runner)
