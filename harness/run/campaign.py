"""The campaign: what load to send where, for how long, and what to keep.

A campaign file is TOML; every key is optional and command-line flags override the file::

    [campaign]
    name = "peak-hour"
    host = ""                 # empty: start the embedded mock portal on a free loopback port
    allow_remote = false      # load goes to loopback unless this is true
    duration = "60s"
    seed = 1

    [load]
    users = 300               # closed model: concurrent users ...
    spawn_rate = 50           # ... started per second
    shape = ""                # or ramp, step, spike, soak, diurnal (scenarios/shapes.py)
    arrival_rate = 0.0        # open model: visits per second (replaces users)
    poisson = false           # open model: Poisson arrivals instead of evenly spaced ones
    pool_size = 0             # open model: most visits in flight per worker (0: 1000)
    connections = 0           # open model: keep-alive connections per worker (0: pool_size)
    think_scale = 0.05        # multiplier of the workload model's think times (1: real pace)
    user_classes = []         # default: the workload model's mix

    [load.shape_params]       # passed as --shape-<name> to Locust
    peak_users = 200

    [workers]
    count = 0                 # Locust worker processes; 0: one per core
    mock_workers = 1          # processes of the embedded mock

    [output]
    dir = "results"
    metrics_port = 0          # the load generator's /metrics; 0 picks a free port
    prometheus = false        # start a real Prometheus for the run

A mistake gives one line naming the file, the key and what is wrong (exit code 2).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import UsageError

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
SHAPES = ("ramp", "step", "spike", "soak", "diurnal")
USER_CLASSES = ("CitizenUser", "AnonymousVisitor", "OpenModelVisits")

# The embedded default: a minute of mixed journeys at a load two cores hold with headroom.
# 300 users with think times at 1/20 of the workload model's (each user stands for 20
# citizens) send about 900-1,000 req/s of mixed journeys: about 40 % of what the whole run
# (mock, master, two workers) sustains on 2 cores (benchmarks/RESULTS.md, e2e_run), so the
# default leaves headroom on a shared machine. think_scale = 1 is the model's real pace.
DEFAULT_DURATION_S = 60.0
DEFAULT_USERS = 300
DEFAULT_SPAWN_RATE = 50.0
DEFAULT_THINK_SCALE = 0.05


def parse_duration(value: Any, where: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"1.5m"``, ``"250ms"``, ``"1h"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise UsageError(
            f"{where}: expected a duration like 90, '90s', '2m' or '1h'; got {value!r}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{where}: a duration must be > 0")
    return seconds


@dataclass(frozen=True, kw_only=True)
class Campaign:
    """A campaign, fully resolved: file, then flags."""

    name: str = "default"
    host: str = ""
    allow_remote: bool = False
    duration_s: float = DEFAULT_DURATION_S
    seed: int = 1
    users: int = DEFAULT_USERS
    spawn_rate: float = DEFAULT_SPAWN_RATE
    shape: str = ""
    shape_params: Mapping[str, float] = field(default_factory=dict)
    arrival_rate: float = 0.0
    arrival_poisson: bool = False
    open_pool_size: int = 0
    open_connections: int = 0
    think_scale: float = DEFAULT_THINK_SCALE
    user_classes: tuple[str, ...] = ()
    workers: int = 0
    mock_workers: int = 1
    mock_config: str = ""
    results_dir: str = "results"
    metrics_port: int = 0
    prometheus: bool = False
    web: bool = False
    source: str = "<defaults>"
    # The file's [slo] and [gate] tables, kept as read and written back with the campaign as
    # run, so that ``portal-load gate RUN`` finds them (harness.gate reads them).
    gating: Mapping[str, Any] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return not self.host

    @property
    def open_model(self) -> bool:
        return self.arrival_rate > 0

    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    def to_toml(self) -> str:
        """The campaign as run, in the file format (so it can be run again as is)."""
        lines = ["[campaign]"]
        lines += _kv(
            name=self.name,
            host=self.host,
            allow_remote=self.allow_remote,
            duration=f"{self.duration_s:g}s",
            seed=self.seed,
        )
        lines += ["", "[load]"]
        lines += _kv(
            users=self.users,
            spawn_rate=self.spawn_rate,
            shape=self.shape,
            arrival_rate=self.arrival_rate,
            poisson=self.arrival_poisson,
            pool_size=self.open_pool_size,
            connections=self.open_connections,
            think_scale=self.think_scale,
            user_classes=list(self.user_classes),
        )
        if self.shape_params:
            lines += ["", "[load.shape_params]"]
            lines += _kv(**dict(sorted(self.shape_params.items())))
        lines += ["", "[workers]"]
        lines += _kv(count=self.worker_count(), mock_workers=self.mock_workers)
        if self.mock_config:
            lines += _kv(mock_config=self.mock_config)
        lines += ["", "[output]"]
        lines += _kv(
            dir=self.results_dir, metrics_port=self.metrics_port, prometheus=self.prometheus
        )
        for section in ("slo", "gate"):
            if section in self.gating:
                lines += ["", f"[{section}]"]
                lines += [
                    f"{_toml_key(k)} = {_toml_value(v)}" for k, v in self.gating[section].items()
                ]
        return "\n".join(lines) + "\n"


def _kv(**values: Any) -> list[str]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elif isinstance(value, list):
            text = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        else:
            text = repr(value)
        out.append(f"{key} = {text}")
    return out


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    """TOML for the values a [slo] or [gate] table holds (strings, numbers, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise UsageError(f"cannot write {value!r} back as TOML")


# section -> key -> (field name, converter)
_SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "campaign": {
        "name": ("name", "str"),
        "host": ("host", "str"),
        "allow_remote": ("allow_remote", "bool"),
        "duration": ("duration_s", "duration"),
        "seed": ("seed", "int"),
    },
    "load": {
        "users": ("users", "posint"),
        "spawn_rate": ("spawn_rate", "posfloat"),
        "shape": ("shape", "shape"),
        "arrival_rate": ("arrival_rate", "nonnegfloat"),
        "poisson": ("arrival_poisson", "bool"),
        "pool_size": ("open_pool_size", "nonnegint"),
        "connections": ("open_connections", "nonnegint"),
        "think_scale": ("think_scale", "nonnegfloat"),
        "user_classes": ("user_classes", "classes"),
        "shape_params": ("shape_params", "params"),
    },
    "workers": {
        "count": ("workers", "nonnegint"),
        "mock_workers": ("mock_workers", "posint"),
        "mock_config": ("mock_config", "str"),
    },
    "output": {
        "dir": ("results_dir", "str"),
        "metrics_port": ("metrics_port", "port"),
        "prometheus": ("prometheus", "bool"),
    },
}
# Sections that belong to later stages (gating) and are carried, not interpreted, here.
_PASSTHROUGH = ("slo", "gate", "capacity")


def convert(kind: str, value: Any, where: str) -> Any:
    """Check and convert one value; raises :class:`UsageError` naming ``where``."""
    if kind == "str":
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind == "duration":
        return parse_duration(value, where)
    if kind in ("int", "posint", "nonnegint", "port"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{where}: expected an integer, got {value!r}")
        low = {"int": -(2**63), "posint": 1, "nonnegint": 0, "port": 0}[kind]
        if value < low or (kind == "port" and value > 65535):
            raise UsageError(f"{where}: {value} is out of range")
        return value
    if kind in ("posfloat", "nonnegfloat"):
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise UsageError(f"{where}: expected a number, got {value!r}")
        if value < 0 or (kind == "posfloat" and value == 0):
            raise UsageError(f"{where}: must be {'> 0' if kind == 'posfloat' else '>= 0'}")
        return float(value)
    if kind == "shape":
        if value not in ("", *SHAPES):
            raise UsageError(
                f"{where}: unknown shape {value!r}; expected one of {', '.join(SHAPES)}"
            )
        return value
    if kind == "classes":
        if not isinstance(value, list) or not all(v in USER_CLASSES for v in value):
            raise UsageError(f"{where}: expected a list of {', '.join(USER_CLASSES)}")
        return tuple(value)
    if kind == "params":
        if not isinstance(value, Mapping):
            raise UsageError(f"{where}: expected a table of numbers")
        for k, v in value.items():
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise UsageError(f"{where}.{k}: expected a number, got {v!r}")
        return {str(k): float(v) for k, v in value.items()}
    raise AssertionError(kind)


def load_campaign(path: str | os.PathLike[str] | None, **overrides: Any) -> Campaign:
    """The campaign of ``path`` (or the defaults) with flag overrides applied and checked."""
    values: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{source}: no such campaign file") from None
        except OSError as exc:
            raise UsageError(f"{source}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{source}: not valid TOML: {exc}") from None
        values = _from_file(raw, source)
    for key, value in overrides.items():
        if value is None:
            continue
        kind = _KIND_OF_FIELD[key]
        values[key] = convert(kind, value, f"--{key.replace('_', '-')}")
    campaign = Campaign(source=source, **values)
    _check(campaign)
    return campaign


_KIND_OF_FIELD = {fname: kind for sec in _SCHEMA.values() for fname, kind in sec.values()}
_KIND_OF_FIELD.update(web="bool")


def _from_file(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section in ("slo", "gate") and isinstance(table, Mapping):
            values.setdefault("gating", {})[section] = dict(table)
        if section in _PASSTHROUGH:
            continue
        if section not in _SCHEMA:
            known = ", ".join(sorted([*_SCHEMA, *_PASSTHROUGH]))
            raise UsageError(f"{source}: [{section}]: unknown section; expected one of {known}")
        if not isinstance(table, Mapping):
            raise UsageError(f"{source}: {section}: expected a table [{section}]")
        for key, value in table.items():
            spec = _SCHEMA[section].get(key)
            if spec is None:
                known = ", ".join(sorted(_SCHEMA[section]))
                raise UsageError(f"{source}: {section}.{key}: unknown key; expected one of {known}")
            fname, kind = spec
            values[fname] = convert(kind, value, f"{source}: {section}.{key}")
    return values


def _check(c: Campaign) -> None:
    if c.host:
        check_url(c.host, "host")
    if c.shape and c.open_model:
        raise UsageError(
            "load: choose a shape (closed model) or arrival_rate (open model), not both"
        )
    if c.mock_workers > 1 and not c.embedded:
        raise UsageError("workers.mock_workers applies to the embedded mock only (host is set)")
    known = {f.name for f in dataclasses.fields(Campaign)}
    assert known >= set(_KIND_OF_FIELD)


def check_url(url: str, where: str) -> None:
    """Refuse what is not ``http(s)://HOST[:PORT][/PATH]`` with one line naming ``where``."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise UsageError(f"{where}: expected http(s)://HOST[:PORT], got {url!r}")


def is_loopback_target(host_url: str) -> bool:
    """True if every address the host resolves to is on loopback (127.0.0.0/8, ::1)."""
    try:
        hostname = urlsplit(host_url).hostname or ""
    except ValueError:  # a malformed URL: check_url names the mistake
        return False
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_target(campaign: Campaign) -> None:
    """Refuse a remote target unless the campaign explicitly allows it."""
    if campaign.embedded or is_loopback_target(campaign.host):
        return
    if not campaign.allow_remote:
        raise UsageError(
            f"host {campaign.host} is not on loopback: refusing to send load there without "
            "--allow-remote (or allow_remote = true in [campaign])"
        )
