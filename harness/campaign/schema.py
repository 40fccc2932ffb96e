"""Every key of the campaign file, in one table: section -> key -> :class:`Key`.

The limits are what one machine of the harness can sensibly start (cores and descriptors
are checked against the machine itself in :mod:`harness.campaign.loader`), so that a slip
such as ``users = 1e9`` is one line before any process starts, not a machine brought down.
"""

from __future__ import annotations

from harness.campaign.values import Key
from harness.gate.compare import METHODS, METRICS
from scenarios import shape_specs

SHAPES = tuple(shape_specs.SHAPES)  # ramp, step, spike, soak, diurnal
ARRIVAL_SHAPES = tuple(shape_specs.ARRIVAL_SHAPES)  # constant, ramp, diurnal
USER_CLASSES = ("CitizenUser", "AnonymousVisitor", "OpenModelVisits")
CAPACITY_MODES = ("rate", "users")

MAX_DURATION_S = 7 * 86_400.0  # a week: longer is a mistake, not a soak
MAX_USERS = 1_000_000  # the design's test-citizen pool: no more users than citizens
MAX_RATE = 1_000_000.0  # visits or requests per second
MAX_PROCESSES_PER_CORE = 4  # more processes than this per core measure the scheduler
MAX_POOL = 100_000  # visits in flight per worker
MAX_REMOTE_WORKERS = 10_000  # Locust's own master has been run with a few thousand workers
MAX_JOIN_TIMEOUT_S = 3600.0  # an hour for hosts to join is a forgotten host, not a slow one

# The sections that say what a run does; [gate], [capacity] and [slo] say what follows it.
RUN_SECTIONS = ("campaign", "load", "workers", "output")

SECTIONS: dict[str, dict[str, Key]] = {
    "campaign": {
        "name": Key("name", "str"),
        "host": Key("host", "str"),
        "allow_remote": Key("allow_remote", "bool"),
        "duration": Key("duration_s", "duration", high=MAX_DURATION_S),
        "seed": Key("seed", "int", low=0, high=2**63 - 1),
        "max_failure_ratio": Key("max_failure_ratio", "share", low=0, high=1),
    },
    "load": {
        "users": Key("users", "int", low=1, high=MAX_USERS),
        "spawn_rate": Key("spawn_rate", "float", low=0.001, high=MAX_RATE),
        "shape": Key("shape", "choice", choices=("", *SHAPES), what="shape"),
        "arrival_rate": Key("arrival_rate", "float", low=0, high=MAX_RATE),
        "arrival_shape": Key(
            "arrival_shape", "choice", choices=("", *ARRIVAL_SHAPES), what="arrival shape"
        ),
        "arrival_params": Key("arrival_params", "numbers"),
        "poisson": Key("arrival_poisson", "bool"),
        "pool_size": Key("open_pool_size", "int", low=0, high=MAX_POOL),
        "connections": Key("open_connections", "int", low=0, high=MAX_POOL),
        "think_scale": Key("think_scale", "float", low=0, high=1000),
        "user_classes": Key("user_classes", "names"),
        "locustfile": Key("locustfile", "str"),
        "mfa_code": Key("mfa_code", "str"),
        "accounts": Key("accounts", "str"),
        "shape_params": Key("shape_params", "numbers"),
    },
    "workers": {
        "count": Key("workers", "int", low=0),
        # Runs across hosts (harness.campaign.workers): remote workers joining this master.
        "remote": Key("remote_workers", "int", low=0, high=MAX_REMOTE_WORKERS),
        "master_only": Key("master_only", "bool"),
        "master_bind": Key("master_bind", "str"),
        "join_timeout": Key("join_timeout_s", "duration", low=1, high=MAX_JOIN_TIMEOUT_S),
        "mock_workers": Key("mock_workers", "int", low=1),
        "mock_config": Key("mock_config", "str"),
    },
    "output": {
        "dir": Key("results_dir", "str"),
        "metrics_port": Key("metrics_port", "int", low=0, high=65535),
        "prometheus": Key("prometheus", "bool"),
        "web": Key("web", "bool"),
    },
    "gate": {
        "baseline": Key("baseline", "str"),
        "confidence": Key("confidence", "share", low=0.5, high=0.999999),
        "method": Key("method", "choice", choices=METHODS, what="method"),
        "tolerance": Key("tolerance", "table"),
        "min_effect": Key("min_effect_s", "duration"),
        "metrics": Key("metrics", "choices", choices=METRICS),
        "fail_on_inconclusive": Key("fail_on_inconclusive", "bool"),
        "require_power": Key("require_power", "bool"),
        "bootstrap_samples": Key("bootstrap_samples", "int", low=100, high=1_000_000),
        "seed": Key("seed", "int", low=0),
    },
    "capacity": {
        "slo": Key("slo", "table"),
        "start_rps": Key("start_rps", "float", low=0.001, high=MAX_RATE),
        "step_rps": Key("step_rps", "float", low=0.001, high=MAX_RATE),
        "max_rps": Key("max_rps", "float", low=0.001, high=MAX_RATE),
        "max_steps": Key("max_steps", "int", low=1, high=1000),
        "settle": Key("settle_s", "duration", high=3600),
        "window": Key("window", "int", low=1, high=100),
        "max_hold": Key("max_hold_s", "duration", high=86_400),
        "after_breach": Key("after_breach", "int", low=0, high=100),
        "probe_path": Key("probe_path", "str"),
        "mode": Key("mode", "choice", choices=CAPACITY_MODES, what="mode"),
        "peak_rps": Key("peak_rps", "float", low=0.001, high=MAX_RATE),
        "headroom": Key("headroom", "float", low=0, high=0.99),
        "cores_per_instance": Key("cores_per_instance", "float", low=0.001, high=1024),
    },
    # target -> thresholds, in the threshold language of harness.gate.slo
    "slo": {},
}
