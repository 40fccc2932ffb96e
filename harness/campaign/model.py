"""The campaign, fully resolved: what load to send where, for how long, what to keep, and how
the run is gated and its capacity searched. One frozen value, read and checked once by
:func:`harness.campaign.loader.load_campaign`, passed to every stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.campaign.schema import RUN_SECTIONS, SECTIONS
from harness.gate.policy import GateConfig
from harness.gate.slo import Threshold
from harness.system import placement
from harness.toml import toml_key, toml_value
from scenarios.workload import PORTAL_PEAK_RPS

# The embedded default: a minute of mixed journeys at a load two cores hold with headroom.
# 300 users with think times at 1/20 of the workload model's (each user stands for 20
# citizens) send about 900-1,000 req/s of mixed journeys: about 40 % of what the whole run
# (mock, master, two workers) sustains on 2 cores (benchmarks/RESULTS.md, e2e_run), so the
# default leaves headroom on a shared machine. think_scale = 1 is the model's real pace.
DEFAULT_DURATION_S = 60.0
DEFAULT_USERS = 300
DEFAULT_SPAWN_RATE = 50.0
DEFAULT_THINK_SCALE = 0.05
DEFAULT_CAPACITY_SLO = ("p95 < 300ms", "error_rate < 1%")
DEFAULT_JOIN_TIMEOUT_S = 60.0  # remote workers started by hand, one host after another
DEFAULT_HEADROOM = 0.3  # run each instance at most at 70 % of its SLO capacity
# A run with more of its requests failed than this is flagged (degraded, exit code 4): its
# latencies are those of errors. An injected fault's error rate stays well below it.
DEFAULT_MAX_FAILURE_RATIO = 0.05


@dataclass(frozen=True, kw_only=True)
class SearchPlan:
    """What the capacity search probes and how: rates, holds and stop rules
    (:mod:`harness.capacity.search`)."""

    start_rps: float = 50.0
    step_rps: float = 50.0
    max_rps: float = 20_000.0
    max_steps: int = 30
    settle_s: float = 2.0
    window: int = 3
    max_hold_s: float = 20.0
    after_breach: int = 1
    probe_path: str = "/api/v1/services"
    mode: str = "rate"  # "rate": arrivals per second (open model); "users": request loops

    def load(self, index: int) -> float:
        """The setting of step ``index``: req/s, or a number of users in ``users`` mode."""
        value = self.start_rps + index * self.step_rps
        return float(round(value)) if self.mode == "users" else value


@dataclass(frozen=True, kw_only=True)
class CapacitySpec:
    """The ``[capacity]`` table: the search plan, its SLO and the fleet projection's inputs."""

    plan: SearchPlan = field(default_factory=SearchPlan)
    slo: tuple[Threshold, ...] = ()
    peak_rps: float = PORTAL_PEAK_RPS
    headroom: float = DEFAULT_HEADROOM
    cores_per_instance: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Campaign:
    """A campaign, fully resolved: file, then flags."""

    name: str = "default"
    host: str = ""
    allow_remote: bool = False
    duration_s: float = DEFAULT_DURATION_S
    seed: int = 1
    max_failure_ratio: float = DEFAULT_MAX_FAILURE_RATIO
    users: int = DEFAULT_USERS
    spawn_rate: float = DEFAULT_SPAWN_RATE
    shape: str = ""
    shape_params: Mapping[str, float] = field(default_factory=dict)
    arrival_rate: float = 0.0
    arrival_shape: str = ""  # "": constant
    arrival_params: Mapping[str, float] = field(default_factory=dict)
    arrival_poisson: bool = False
    open_pool_size: int = 0
    open_connections: int = 0
    think_scale: float = DEFAULT_THINK_SCALE
    user_classes: tuple[str, ...] = ()
    locustfile: str = ""  # a team's own locustfile; empty: the portal's journeys
    mfa_code: str = ""  # the second factor's fixed code; empty: the journeys' default
    accounts: str = ""  # a CSV of test accounts (login, password, totp_secret)
    workers: int = 0
    remote_workers: int = 0
    master_only: bool = False
    master_bind: str = ""
    join_timeout_s: float = DEFAULT_JOIN_TIMEOUT_S
    mock_workers: int = 1
    mock_config: str = ""
    results_dir: str = "results"
    metrics_port: int = 0
    prometheus: bool = False
    web: bool = False
    gate: GateConfig = field(default_factory=GateConfig)
    capacity: CapacitySpec = field(default_factory=CapacitySpec)
    source: str = "<defaults>"
    # The file's tables as read, with the flags' values in place: written back as the
    # campaign as run (``campaign.toml`` of the run), which loads to this same campaign.
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return not self.host

    @property
    def open_model(self) -> bool:
        return self.arrival_rate > 0

    def local_worker_count(self) -> int:
        """Worker processes started on this host: ``count`` (0: one per core), none on a
        master-only host."""
        return 0 if self.master_only else self.workers or self.default_workers()

    def default_workers(self) -> int:
        """``count = 0``: one process per core of this host. Above two cores, the hot cores
        (all but the master's and the harness's) are shared one each by the embedded mock's
        processes and the workers (:meth:`harness.system.Placement.default_workers`)."""
        return placement().default_workers(self.mock_workers if self.embedded else 0)

    def worker_count(self) -> int:
        """Every worker of the run: the local ones and those joining from other hosts."""
        return self.local_worker_count() + self.remote_workers

    def to_toml(self) -> str:
        """The campaign as run, in the file format (so it can be run again as is): every key
        of the run's sections as resolved, and the ``[slo]``, ``[gate]`` and ``[capacity]``
        tables as given."""
        tables: dict[str, dict[str, Any]] = {}
        for section in RUN_SECTIONS:
            table = tables[section] = {}
            for key, spec in SECTIONS[section].items():
                value = getattr(self, spec.field)
                if spec.kind == "duration":
                    value = f"{value:g}s"
                elif spec.field == "workers":
                    value = self.workers or self.default_workers()
                if isinstance(value, tuple):
                    value = list(value)
                if value != {} or not _is_subtable(section, key):
                    table[key] = dict(value) if isinstance(value, Mapping) else value
        for section, given in self.tables.items():
            if section not in RUN_SECTIONS:
                tables[section] = dict(given)
        blocks: list[list[str]] = []
        for section, table in tables.items():
            plain = {k: v for k, v in table.items() if not _is_subtable(section, k)}
            blocks.append([f"[{section}]", *_lines(plain)])
            for key, value in table.items():
                if _is_subtable(section, key):
                    blocks.append([f"[{section}.{key}]", *_lines(value)])
        return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def _lines(table: Mapping[str, Any]) -> list[str]:
    return [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]


def _is_subtable(section: str, key: str) -> bool:
    return section == "load" and key in ("shape_params", "arrival_params")
