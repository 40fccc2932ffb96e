"""Read a campaign once: the file, then the flags, every key checked, one line per mistake.

A mistake anywhere (an unknown section or key, a wrong value, a threshold that does not
parse, a limit the machine cannot hold) is a :class:`UsageError` of one line that names the
file and the key, or the flag as the user typed it, before any process starts.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.campaign.model import (
    DEFAULT_CAPACITY_SLO,
    Campaign,
    CapacitySpec,
    SearchPlan,
)
from harness.campaign.schema import MAX_PROCESSES_PER_CORE, RUN_SECTIONS, SECTIONS, USER_CLASSES
from harness.campaign.target import check_target, check_url
from harness.campaign.values import Key, check
from harness.campaign.workers import check_workers
from harness.errors import UsageError
from harness.gate.compare import DEFAULT_TOLERANCE, METRICS, Policy
from harness.gate.policy import GateConfig
from harness.gate.slo import Target, Threshold, parse_slo, parse_threshold
from harness.system import usable_cores
from harness.toml import read_toml
from harness.units import s_to_ms
from scenarios.accounts import AccountsFileError, read_accounts
from scenarios.shape_specs import ShapeParamError, build_profile, build_rate_profile

# Descriptors a worker keeps besides its connections (logs, ZeroMQ, the results writer).
DESCRIPTORS_RESERVED = 64
# The soft descriptor limit Locust raises itself to at start, if the hard limit allows.
LOCUST_OPEN_FILES = 10_000
# Capacity steps are judged on these figures of a step (harness.capacity.search).
CAPACITY_SLO_METRICS = ("p", "avg", "med", "error_rate")
CAPACITY_PERCENTILES = (50.0, 90.0, 95.0, 99.0)
_TOLERANCE = Key("tolerance", "share", low=0)


@dataclass(frozen=True)
class Override:
    """One value from the command line: the campaign key it sets and the flag as typed."""

    key: str  # "section.key", e.g. "load.users"
    value: Any
    flag: str  # e.g. "--users"


DEFAULTS_FILE = "portal-load.toml"


def project_defaults(folder: Path) -> tuple[str, dict[str, Any]] | None:
    """A project's defaults for every campaign run in ``folder``: ``portal-load.toml``, or the
    ``[tool.portal-load]`` table of ``pyproject.toml`` (as tools such as ruff or pytest read
    theirs); None when there are none."""
    own = folder / DEFAULTS_FILE
    if own.is_file():
        return str(own), read_toml(own, "defaults file")
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        table = read_toml(pyproject).get("tool", {}).get("portal-load")
        if table is not None:
            if not isinstance(table, Mapping):
                raise UsageError(f"{pyproject}: tool.portal-load: expected a table")
            return f"{pyproject}: tool.portal-load", dict(table)
    return None


def load_campaign(
    path: str | os.PathLike[str] | None,
    overrides: Sequence[Override] = (),
    *,
    defaults: tuple[str, Mapping[str, Any]] | None = None,
    **fields: Any,
) -> Campaign:
    """The campaign of ``path`` (or the defaults), on top of a project's ``defaults`` (see
    :func:`project_defaults`), with ``overrides`` (flags) and ``fields`` (by field name, for
    callers in code) applied on top, checked as one."""
    source = str(path) if path is not None else "<defaults>"
    tables: dict[str, dict[str, Any]] = {}
    where: dict[tuple[str, str], str] = {}
    layers = [defaults] if defaults is not None else []
    if path is not None:
        layers.append((source, read_toml(Path(path), "campaign file")))
    for origin, raw in layers:
        for section, table in raw.items():
            if section not in SECTIONS:
                known = ", ".join(sorted(SECTIONS))
                raise UsageError(f"{origin}: [{section}]: unknown section; expected one of {known}")
            if not isinstance(table, Mapping):
                raise UsageError(f"{origin}: {section}: expected a table [{section}]")
            tables.setdefault(section, {}).update(table)
            for key in table:
                where[section, key] = f"{origin}: {section}.{key}"
    by_field = {k.field: (s, name) for s in RUN_SECTIONS for name, k in SECTIONS[s].items()}
    for name, value in fields.items():
        if value is None:
            continue
        if name not in by_field:
            raise TypeError(f"load_campaign: unknown field {name!r}")
        section, key = by_field[name]
        tables.setdefault(section, {})[key] = value
        where[section, key] = name
    for o in overrides:
        if o.value is None:
            continue
        section, _, key = o.key.partition(".")
        assert key in SECTIONS[section], o.key
        tables.setdefault(section, {})[key] = o.value
        where[section, key] = o.flag
    values = _check_keys(tables, where, source)
    campaign = Campaign(
        **values,
        gate=_gate(tables, where, source),
        capacity=_capacity(tables.get("capacity", {}), where),
        source=source,
        tables=tables,
    )
    _check_together(campaign, where, source)
    return campaign


def _check_keys(
    tables: dict[str, dict[str, Any]], where: Mapping[tuple[str, str], str], source: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for section in RUN_SECTIONS:
        for key, value in tables.get(section, {}).items():
            spec = SECTIONS[section].get(key)
            at = where[section, key]
            if spec is None:
                known = ", ".join(sorted(SECTIONS[section]))
                raise UsageError(f"{at}: unknown key; expected one of {known}")
            values[spec.field] = check(spec, value, at)
            tables[section][key] = _as_written(spec, value, values[spec.field])
    for section in ("gate", "capacity"):
        for key, value in tables.get(section, {}).items():
            spec = SECTIONS[section].get(key)
            if spec is None:
                known = ", ".join(sorted(SECTIONS[section]))
                raise UsageError(f"{where[section, key]}: unknown key; expected one of {known}")
            if spec.kind in _TYPED:
                tables[section][key] = _as_written(
                    spec, value, check(spec, value, where[section, key])
                )
    return values


# Kinds written back as their checked value (a flag's "200" is the number 200); durations
# and shares keep the text the user wrote ("90s", "10%").
_TYPED = ("int", "float", "bool", "choices", "names")


def _as_written(spec: Key, raw: Any, checked: Any) -> Any:
    if spec.kind not in _TYPED:
        return raw
    return list(checked) if isinstance(checked, tuple) else checked


def _gate(
    tables: Mapping[str, Mapping[str, Any]], where: Mapping[tuple[str, str], str], source: str
) -> GateConfig:
    table = tables.get("gate", {})
    values: dict[str, Any] = {}
    for key, value in table.items():
        spec = SECTIONS["gate"][key]
        at = where["gate", key]
        if key == "tolerance":
            values["tolerance"] = _tolerance(value, at)
        elif key == "min_effect":
            values["min_effect_ms"] = s_to_ms(check(spec, value, at))
        elif key != "baseline":
            values[spec.field] = check(spec, value, at)
    if "metrics" in values and not values["metrics"]:
        raise UsageError(f"{where['gate', 'metrics']}: expected at least one metric")
    baseline = None
    if "baseline" in table:
        baseline = check(SECTIONS["gate"]["baseline"], table["baseline"], where["gate", "baseline"])
    objectives = parse_slo(tables["slo"], f"{source}: slo") if "slo" in tables else []
    return GateConfig(objectives=tuple(objectives), policy=Policy(**values), baseline=baseline)


def _tolerance(value: Any, at: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{at}: expected a table like {{ p95 = '10%' }}")
    merged = dict(DEFAULT_TOLERANCE)
    for metric, given in value.items():
        where = f"{at}.{metric}"
        if metric not in METRICS:
            raise UsageError(f"{where}: unknown metric; expected one of {', '.join(METRICS)}")
        share = check(_TOLERANCE, given, where)
        if not isinstance(given, str) and share > 1:
            # 5 as "5 %" is the usual slip; it would be a gate that never fails
            raise UsageError(
                f"{where}: {given!r} is {share * 100:g} %; write a fraction up to 1, "
                f"or a percentage like '{given:g}%'"
            )
        if metric == "error_rate" and share > 1:
            raise UsageError(f"{where}: an error rate cannot grow by more than 100 points")
        merged[metric] = share
    return merged


def _capacity(table: Mapping[str, Any], where: Mapping[tuple[str, str], str]) -> CapacitySpec:
    plan_fields = {f.name for f in dataclasses.fields(SearchPlan)}
    plan: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    slo: tuple[Threshold, ...] = tuple(
        parse_threshold(t, "capacity.slo", _TOTAL) for t in DEFAULT_CAPACITY_SLO
    )
    for key, value in table.items():
        spec = SECTIONS["capacity"][key]
        at = where["capacity", key]
        if key == "slo":
            slo = capacity_slo(value, at)
            continue
        checked = check(spec, value, at)
        (plan if spec.field in plan_fields else rest)[spec.field] = checked
    if "probe_path" in plan and not plan["probe_path"].startswith("/"):
        raise UsageError(
            f"{where['capacity', 'probe_path']}: expected a path like /api/v1/services, "
            f"got {plan['probe_path']!r}"
        )
    return CapacitySpec(plan=SearchPlan(**plan), slo=slo, **rest)


_TOTAL = Target(text="total", kind="total")


def capacity_slo(value: Any, where: str) -> tuple[Threshold, ...]:
    """The capacity search's SLO, in the gate's threshold language: a list of thresholds, or
    one string of them separated by commas (``"p95 < 300ms, error_rate < 1%"``; the compact
    ``"p95<300ms,errors<1%"`` reads the same)."""
    if isinstance(value, str):
        items: list[Any] = [part for part in (p.strip() for p in value.split(",")) if part]
    elif isinstance(value, list):
        items = value
    else:
        raise UsageError(f"{where}: expected thresholds like 'p95 < 300ms, error_rate < 1%'")
    if not items:
        raise UsageError(f"{where}: no thresholds; e.g. 'p95 < 300ms, error_rate < 1%'")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"{where}: expected threshold strings, got {item!r}")
        threshold = parse_threshold(item, where, _TOTAL)
        if threshold.metric not in CAPACITY_SLO_METRICS or threshold.op not in ("<", "<="):
            raise UsageError(
                f"{where}: {item!r}: a capacity step is judged on an upper limit of pNN, avg, "
                "med or error_rate, e.g. 'p95 < 300ms'"
            )
        if threshold.corrected:
            raise UsageError(
                f"{where}: {item!r}: a capacity step is judged on service time; +co "
                "(corrected) thresholds belong in [slo]"
            )
        if threshold.metric == "p" and threshold.percentile not in CAPACITY_PERCENTILES:
            raise UsageError(
                f"{where}: {item!r}: a step measures p50, p90, p95 and p99 (not "
                f"p{threshold.percentile:g})"
            )
        if not threshold.value > 0:
            raise UsageError(f"{where}: {item!r}: the limit must be > 0")
        out.append(threshold)
    return tuple(out)


def _check_shapes(c: Campaign, at: Callable[[str, str], str]) -> None:
    """A shape or an arrival profile and their parameters, as Locust will build them."""
    if c.shape_params and not c.shape:
        raise UsageError(f"{at('load', 'shape_params')}: parameters without a shape")
    if (c.arrival_shape or c.arrival_params) and not c.open_model:
        key = "arrival_shape" if c.arrival_shape else "arrival_params"
        raise UsageError(f"{at('load', key)}: an arrival profile needs arrival_rate > 0")
    try:
        if c.shape:
            build_profile(c.shape, duration_s=c.duration_s, users=c.users, params=c.shape_params)
        if c.open_model:
            build_rate_profile(
                c.arrival_shape or "constant",
                rate=c.arrival_rate,
                duration_s=c.duration_s,
                params=c.arrival_params,
            )
    except ShapeParamError as exc:
        params = "shape_params" if c.shape else "arrival_params"
        keys = {"duration": "campaign.duration", "users": "load.users", "rate": "load.arrival_rate"}
        if exc.param in keys:
            section, _, name = keys[exc.param].partition(".")
            raise UsageError(f"{at(section, name)}: {exc}") from None
        where = at("load", params) + (f".{exc.param}" if exc.param else "")
        raise UsageError(f"{where}: {exc}") from None


def _check_together(c: Campaign, where: Mapping[tuple[str, str], str], source: str) -> None:
    def at(section: str, key: str) -> str:
        return where.get((section, key), f"{source}: {section}.{key}")

    if c.host:
        check_url(c.host, at("campaign", "host"))
        check_target(c.host, c.allow_remote, at("campaign", "host"))
    if c.locustfile:
        if not Path(c.locustfile).is_file():
            raise UsageError(f"{at('load', 'locustfile')}: no such file: {c.locustfile}")
        journeys = (("shape", c.shape), ("arrival_rate", c.open_model))
        for key, used in (*journeys, ("mfa_code", c.mfa_code), ("accounts", c.accounts)):
            if used:
                raise UsageError(
                    f"{at('load', key)}: an option of the portal's journeys; a locustfile of "
                    "your own brings its own (a LoadTestShape, its accounts)"
                )
    else:
        unknown = [name for name in c.user_classes if name not in USER_CLASSES]
        if unknown:
            raise UsageError(
                f"{at('load', 'user_classes')}: unknown user class {unknown[0]!r}; the "
                f"project's are {', '.join(USER_CLASSES)} (or give load.locustfile)"
            )
    if c.shape and c.open_model:
        raise UsageError(
            f"{at('load', 'shape')}: choose a shape (closed model) or arrival_rate "
            "(open model), not both"
        )
    _check_shapes(c, at)
    if c.accounts:
        try:
            read_accounts(c.accounts)
        except AccountsFileError as exc:
            raise UsageError(f"{at('load', 'accounts')}: {exc}") from None
    if c.mfa_code and not (c.mfa_code.isdigit() and 4 <= len(c.mfa_code) <= 10):
        raise UsageError(f"{at('load', 'mfa_code')}: expected 4 to 10 digits, got {c.mfa_code!r}")
    if c.mock_workers > 1 and not c.embedded:
        raise UsageError(
            f"{at('workers', 'mock_workers')}: applies to the embedded mock only "
            f"(the campaign's host is {c.host})"
        )
    check_workers(c, at)
    if c.mock_config and c.embedded:
        try:
            read_toml(Path(c.mock_config), "file")
        except UsageError as exc:  # the mock would exit with it, in its log only
            raise UsageError(f"{at('workers', 'mock_config')}: {exc}") from None
    cores = len(usable_cores()) or 1
    for key, count in (("count", c.workers), ("mock_workers", c.mock_workers)):
        if count > MAX_PROCESSES_PER_CORE * cores:
            raise UsageError(
                f"{at('workers', key)}: {count} processes on {cores} cores; at most "
                f"{MAX_PROCESSES_PER_CORE * cores} (more measure the scheduler, not the target)"
            )
    limit = worker_descriptors()
    if c.open_model:
        wanted = (c.open_connections or c.open_pool_size or 1000) + DESCRIPTORS_RESERVED
        if limit is not None and wanted > limit:
            key = "connections" if c.open_connections else "pool_size"
            raise UsageError(
                f"{at('load', key)}: {wanted - DESCRIPTORS_RESERVED} connections per worker "
                f"exceed this machine's descriptor limit ({limit}, ulimit -n)"
            )
    else:  # a closed-model user keeps one connection open
        per_worker = -(-c.users // c.worker_count())
        if limit is not None and per_worker + DESCRIPTORS_RESERVED > limit:
            raise UsageError(
                f"{at('load', 'users')}: {c.users} users on {c.worker_count()} workers are "
                f"{per_worker} connections per worker, beyond this machine's descriptor limit "
                f"({limit}, ulimit -n); add workers or hosts"
            )


def worker_descriptors() -> int | None:
    """Descriptors a Locust worker may open here: Locust raises its soft limit to 10,000
    when the hard limit allows. None: no limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    raised = LOCUST_OPEN_FILES if hard == resource.RLIM_INFINITY else min(LOCUST_OPEN_FILES, hard)
    return max(int(soft), int(raised))
