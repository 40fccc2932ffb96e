"""The load shapes and the open model's arrival profiles: names, parameters, units, defaults.

Pure (no Locust, no gevent): the harness checks a campaign's shape and its parameters with
:func:`resolve` (or :func:`build_profile`) before any process starts; Locust uses the same.

Closed model (:mod:`scenarios.shapes`): ``--shape NAME``; the peak is ``-u/--users``; the
duration is ``--shape-duration SECONDS`` (or ``-t/--run-time`` when it is not given), and the
test ends there; each parameter is ``--shape-<param>`` (``rise_s`` is ``--shape-rise-s``).

Open model (:mod:`scenarios.open_model`): ``--arrival-shape NAME``; the rate (the peak of a
ramp or a day) is ``--arrival-rate`` visits/s over all workers; the duration is
``--arrival-duration SECONDS`` (a constant rate without one runs until ``-t``); each parameter
is ``--arrival-<param>``. ``--arrival-profile "30s:0-100,60s:100"`` gives stages instead.

A parameter given that the chosen shape does not have, or out of its range, is an error
(:class:`ShapeParamError`, whose ``param`` names the key).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from scenarios.arrivals import OPEN_ENDED_S, RateProfile, Stage
from scenarios.profiles import NATIONAL_DAY_HOURLY, PROFILES, Profile, peak_to_average

__all__ = [
    "ARRIVAL_OPTION_PREFIX",
    "ARRIVAL_SHAPES",
    "NO_SHAPE",
    "SHAPES",
    "SHAPE_OPTION_PREFIX",
    "Param",
    "ShapeParamError",
    "Spec",
    "build_profile",
    "build_rate_profile",
    "markdown_table",
    "option_params",
    "profile_from_options",
    "rate_profile_from_options",
    "resolve",
]

SHAPE_OPTION_PREFIX = "--shape-"
ARRIVAL_OPTION_PREFIX = "--arrival-"
NO_SHAPE = "none"
CONSTANT = "constant"


class ShapeParamError(ValueError):
    """A shape, its duration or a parameter is wrong: ``param`` is the key (``duration``,
    ``users`` and ``rate`` for those; None when the shape itself is unknown)."""

    def __init__(self, message: str, *, shape: str, param: str | None = None) -> None:
        super().__init__(message)
        self.shape = shape
        self.param = param


@dataclass(frozen=True, kw_only=True)
class Param:
    """One parameter of a shape: its key, default, unit, meaning and range."""

    name: str
    default: float
    unit: str
    meaning: str
    integer: bool = False
    low: float = 0.0
    high: float | None = None
    high_open: bool = False
    """The upper bound itself is refused."""

    def option(self, prefix: str) -> str:
        return prefix + self.name.replace("_", "-")

    def check(self, value: object, shape: str) -> float:
        """``value`` as the parameter's type, or :class:`ShapeParamError` saying why not."""
        kind = "an integer" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ShapeParamError(
                f"{shape}: {self.name} must be {kind} ({self.unit}), got {value!r}",
                shape=shape,
                param=self.name,
            )
        if self.integer and value != int(value):
            raise ShapeParamError(
                f"{shape}: {self.name} must be an integer, got {value!r}",
                shape=shape,
                param=self.name,
            )
        number = int(value) if self.integer else float(value)
        too_high = self.high is not None and (
            number > self.high or (self.high_open and number == self.high)
        )
        if math.isnan(number) or number < self.low or too_high:
            closing = ")" if self.high_open else "]"
            span = f"[{self.low:g}, {self.high:g}{closing}" if self.high is not None else None
            where = f"in {span}" if span else f">= {self.low:g}"
            raise ShapeParamError(
                f"{shape}: {self.name} must be {where} ({self.unit}), got {value!r}",
                shape=shape,
                param=self.name,
            )
        return number


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A shape: its name, what it does, its parameters, and a check across them."""

    name: str
    meaning: str
    params: tuple[Param, ...] = ()
    constraint: Callable[[Mapping[str, float]], tuple[str, str] | None] | None = None
    """``(param, reason)`` when the parameters together are impossible, else None."""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_BASE_CURVE_PAR = round(peak_to_average(NATIONAL_DAY_HOURLY), 2)
_RAMP = Param(
    name="ramp",
    default=0.25,
    high=1.0,
    unit="fraction of the duration",
    meaning="time spent climbing to the peak; the rest of the run holds it",
)
_RISE = Param(
    name="rise_s",
    default=2.0,
    unit="seconds",
    meaning="time to start the users of one change (sets the spawn rate)",
)
_PAR = Param(
    name="par",
    default=_BASE_CURVE_PAR,
    low=1.0,
    high=float(len(NATIONAL_DAY_HOURLY)),
    high_open=True,
    unit="ratio",
    meaning="peak-to-average of the compressed day (default: the national curve as it is)",
)
_START_HOUR = Param(
    name="start_hour",
    default=3,
    integer=True,
    high=24,
    high_open=True,
    unit="hour of the day",
    meaning="where the compressed day begins (03:00, the quietest hour, climbs to the peak)",
)


def _spike_fits(values: Mapping[str, float]) -> tuple[str, str] | None:
    if values["at"] + values["length"] > 1.0:
        return "length", "at + length must be <= 1 (the spike ends within the run)"
    return None


SHAPES: Mapping[str, Spec] = MappingProxyType(
    {
        "ramp": Spec(
            name="ramp", meaning="climb linearly to the peak, then hold it", params=(_RAMP,)
        ),
        "step": Spec(
            name="step",
            meaning="equal stairs up to the peak (capacity search)",
            params=(
                Param(
                    name="steps",
                    default=5,
                    integer=True,
                    low=1,
                    unit="count",
                    meaning="stairs; each lasts duration / steps",
                ),
                _RISE,
            ),
        ),
        "spike": Spec(
            name="spike",
            meaning="rest, a sudden spike to the peak, recovery at rest",
            params=(
                Param(
                    name="base",
                    default=0.2,
                    high=1.0,
                    unit="fraction of the peak",
                    meaning="users at rest, before and after the spike",
                ),
                Param(
                    name="at",
                    default=0.4,
                    high=1.0,
                    high_open=True,
                    unit="fraction of the duration",
                    meaning="when the spike starts",
                ),
                Param(
                    name="length",
                    default=0.2,
                    high=1.0,
                    unit="fraction of the duration",
                    meaning="how long the spike lasts",
                ),
                _RISE,
            ),
            constraint=_spike_fits,
        ),
        "soak": Spec(
            name="soak",
            meaning="a gentle ramp, then the peak held for a long run (leaks, drift)",
            params=(replace(_RAMP, default=0.05),),
        ),
        "diurnal": Spec(
            name="diurnal",
            meaning="the national day compressed into the run, the peak at its busiest hour",
            params=(_PAR, _START_HOUR),
        ),
    }
)
"""Closed-model shapes: users follow the profile; the peak is ``-u/--users``."""

ARRIVAL_SHAPES: Mapping[str, Spec] = MappingProxyType(
    {
        CONSTANT: Spec(name=CONSTANT, meaning="the rate all along"),
        "ramp": Spec(
            name="ramp",
            meaning="the rate climbs linearly from its base to the full rate, then holds",
            params=(
                Param(
                    name="base",
                    default=0.0,
                    high=1.0,
                    unit="fraction of the rate",
                    meaning="rate at the start",
                ),
                replace(_RAMP, default=0.5, meaning="time spent climbing; the rest holds the rate"),
            ),
        ),
        "diurnal": Spec(
            name="diurnal",
            meaning="the national day compressed into the run, the rate at its busiest hour",
            params=(_PAR, _START_HOUR),
        ),
    }
)
"""Open-model arrival profiles: the rate is ``--arrival-rate`` (visits/s, all workers)."""


def resolve(table: Mapping[str, Spec], shape: str, given: Mapping[str, Any]) -> dict[str, float]:
    """Every parameter of ``shape``: those ``given`` checked, the others at their defaults."""
    spec = table.get(shape)
    if spec is None:
        raise ShapeParamError(
            f"unknown shape {shape!r}; choose one of {', '.join(table)}", shape=shape
        )
    values: dict[str, float] = {}
    for key, value in given.items():
        param = spec.param(key)
        if param is None:
            names = ", ".join(p.name for p in spec.params) or "none"
            raise ShapeParamError(
                f"{shape} has no parameter {key!r} (its parameters: {names})",
                shape=shape,
                param=key,
            )
        values[key] = param.check(value, shape)
    for param in spec.params:
        values.setdefault(param.name, param.default)
    problem = spec.constraint(values) if spec.constraint else None
    if problem is not None:
        raise ShapeParamError(f"{shape}: {problem[1]}", shape=shape, param=problem[0])
    return values


def build_profile(
    shape: str, *, duration_s: float, users: int, params: Mapping[str, Any] | None = None
) -> Profile:
    """The closed-model profile of ``shape``: ``users`` at the peak, over ``duration_s``."""
    values = resolve(SHAPES, shape, params or {})
    if not duration_s > 0:
        raise ShapeParamError(
            f"{shape}: needs a duration > 0 s (--shape-duration or --run-time)",
            shape=shape,
            param="duration",
        )
    if users < 1:
        raise ShapeParamError(f"{shape}: needs users >= 1 (-u)", shape=shape, param="users")
    return PROFILES[shape](duration_s=duration_s, users=users, **values)  # type: ignore[arg-type]


def build_rate_profile(
    shape: str, *, rate: float, duration_s: float, params: Mapping[str, Any] | None = None
) -> RateProfile:
    """The arrival schedule of ``shape`` at ``rate`` visits/s (its peak), over ``duration_s``
    (0: a constant rate with no end of its own)."""
    values = resolve(ARRIVAL_SHAPES, shape, params or {})
    if not rate > 0:
        raise ShapeParamError(
            f"{shape}: needs a rate > 0 (--arrival-rate)", shape=shape, param="rate"
        )
    if shape == CONSTANT:
        return RateProfile.constant(rate=rate, duration_s=duration_s or OPEN_ENDED_S)
    if not duration_s > 0:
        raise ShapeParamError(
            f"{shape}: needs a duration > 0 s (--arrival-duration)", shape=shape, param="duration"
        )
    if shape == "diurnal":
        return RateProfile.diurnal(
            peak_rate=rate,
            duration_s=duration_s,
            par=values["par"],
            start_hour=int(values["start_hour"]),
        )
    ramp_s = values["ramp"] * duration_s
    stages = [Stage(duration_s=ramp_s, start=rate * values["base"], end=rate)] if ramp_s else []
    if duration_s > ramp_s:
        stages.append(Stage(duration_s=duration_s - ramp_s, start=rate, end=rate))
    return RateProfile(stages=tuple(stages))


def option_params(table: Mapping[str, Spec]) -> dict[str, Param]:
    """Every parameter of the table's shapes by key: one command-line option each."""
    found: dict[str, Param] = {}
    for spec in table.values():
        for param in spec.params:
            seen = found.setdefault(param.name, param)
            if seen.integer != param.integer:
                raise AssertionError(f"parameter {param.name} changes type between shapes")
    return found


def _given(options: Any, table: Mapping[str, Spec], attr_prefix: str) -> dict[str, float]:
    names = option_params(table)
    values = {name: getattr(options, attr_prefix + name, None) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def profile_from_options(options: Any) -> Profile | None:
    """The profile ``--shape`` asks for (None without one), from Locust's parsed options."""
    shape = getattr(options, "shape", None) or NO_SHAPE
    if shape == NO_SHAPE:
        return None
    duration_s = getattr(options, "shape_duration", None) or getattr(options, "run_time", None)
    users = getattr(options, "num_users", None) or 1  # Locust's own default
    params = _given(options, SHAPES, "shape_")
    return build_profile(shape, duration_s=float(duration_s or 0), users=users, params=params)


def rate_profile_from_options(options: Any, executors: int = 1) -> RateProfile | None:
    """The arrival schedule of ONE executor (the run's rate divided by ``executors``), or None
    when no option asks for the open model."""
    shape = getattr(options, "arrival_shape", None) or CONSTANT
    params = _given(options, ARRIVAL_SHAPES, "arrival_")
    stages = getattr(options, "arrival_profile", "")
    rate = getattr(options, "arrival_rate", 0.0)
    if stages:
        if shape != CONSTANT or params:
            raise ShapeParamError(
                "--arrival-profile gives the stages itself: leave out --arrival-shape and its "
                "parameters",
                shape=shape,
                param="profile",
            )
        total = RateProfile.parse(stages)
    elif rate:
        duration_s = float(getattr(options, "arrival_duration", 0.0) or 0.0)
        total = build_rate_profile(shape, rate=rate, duration_s=duration_s, params=params)
    elif shape != CONSTANT or params:
        raise ShapeParamError(
            f"{shape}: needs a rate > 0 (--arrival-rate)", shape=shape, param="rate"
        )
    else:
        return None
    return total.scaled(1.0 / executors)


def markdown_table(table: Mapping[str, Spec], prefix: str) -> str:
    """The table as Markdown (``docs/scenarios.md`` embeds it; a test keeps them equal)."""
    lines = [
        "| shape | parameter | option | default | unit | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for spec in table.values():
        lines.append(f"| `{spec.name}` | | | | | {spec.meaning} |")
        for p in spec.params:
            default = f"{int(p.default)}" if p.integer else f"{p.default:g}"
            lines.append(
                f"| | `{p.name}` | `{p.option(prefix)}` | {default} | {p.unit} | {p.meaning} |"
            )
    return "\n".join(lines) + "\n"
