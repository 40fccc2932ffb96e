"""Absolute SLOs, written like k6 thresholds, and their evaluation on a run.

In a campaign file (``[slo]``) or a separate SLO file (the same table, or its keys at the
top level)::

    [slo]
    total = ["p95 < 300ms", "error_rate < 1%", "rps > 20"]
    "GET /api/v1/services" = ["p(99.9) < 1s", "avg < 50ms", "p99+co < 500ms"]
    "/api/v1/me" = [{ threshold = "p99 < 100ms", abort_on_fail = true, delay_abort_eval = "5s" }]
    "journey:login" = ["p95 < 2s", "error_rate < 0.5%"]
    "funnel:pay" = ["conversion(6) > 50%"]

Targets: ``total``; ``METHOD name`` (one request key); ``name`` (every method of that name,
histograms merged); ``journey:NAME`` (a ``JOURNEY`` row); ``funnel:NAME`` (the ``FUNNEL`` steps
``NAME/<n> ...``). Metrics: ``pNN`` or ``p(NN)`` (any percentile), ``avg``/``mean``, ``med``,
``min``, ``max`` (latency: ``us``, ``ms`` (default), ``s``, ``m``); ``error_rate`` (``%`` or a
fraction); ``failures``, ``count``; ``rps``; ``conversion`` (last step / first step) or
``conversion(N)`` (step N / first step) on a funnel. A malformed threshold raises
:class:`~harness.errors.UsageError` naming the file, the target and what is wrong.

A latency metric with ``+co`` (``p99+co``, ``p(99.9)+co``, ``avg+co``) reads the target's
corrected series instead of its service time: the open model's twins (``GET+CO``), timed from
when each request was due, coordinated omission removed. Only an open-model run
(``--arrival-rate``) has them; on another, such a threshold fails with "no corrected figures".
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.errors import UsageError
from harness.gate.baseline import RunData, Series
from harness.results import histograms as hdr
from harness.toml import read_toml
from harness.units import SECONDS_PER_UNIT, parse_duration_s, s_to_ms, us_to_ms

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# Live evaluation (abort on fail) waits until a target has this many requests, so that the
# first few requests of a cold start cannot stop a run.
ABORT_MIN_COUNT = 20
# A percentile is measured, not guessed, when at least this many requests lie beyond it: p99
# of 100 requests is one request's time. Fewer, and a met threshold is underpowered.
SLO_MIN_TAIL = 5
DEFAULT_DELAY_ABORT_EVAL_S = 5.0

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
CORRECTED = "+co"  # the metric suffix of a corrected series (coordinated omission removed)
CORRECTED_SUFFIX = "+CO"  # the request-type suffix of the open model's twins
_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[a-z_]+|p\d+(?:\.\d+)?)(?:\(\s*(?P<arg>[^)]*?)\s*\))?"
    r"(?P<co>\+co)?"
    r"\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[0-9]+(?:\.[0-9]+)?(?:e[-+]?\d+)?)"
    r"\s*(?P<unit>us|µs|ms|s|m|%)?\s*$",
    re.IGNORECASE,
)
_LATENCY = ("p", "avg", "med", "min", "max")
_ALIASES = {
    "mean": "avg",
    "median": "med",
    "error_rate": "error_rate",
    "failure_rate": "error_rate",
    "errors": "error_rate",
}
METRICS = (
    "pNN",
    "avg",
    "med",
    "min",
    "max",
    "error_rate",
    "failures",
    "count",
    "rps",
    "conversion",
)


@dataclass(frozen=True, kw_only=True)
class Threshold:
    """One parsed threshold; ``value`` in ms for latencies, a fraction for rates."""

    text: str
    metric: str  # p, avg, med, min, max, error_rate, failures, count, rps, conversion
    percentile: float | None
    step: int | None
    op: str
    value: float
    abort_on_fail: bool = False
    delay_abort_eval_s: float = DEFAULT_DELAY_ABORT_EVAL_S
    corrected: bool = False  # ``+co``: on the corrected series (open model)

    def holds(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.value)


@dataclass(frozen=True, kw_only=True)
class Target:
    text: str
    kind: str  # total, key, name, journey, funnel
    name: str = ""
    method: str = ""


@dataclass(frozen=True, kw_only=True)
class Objective:
    target: Target
    threshold: Threshold


@dataclass(frozen=True, kw_only=True)
class SloResult:
    target: str
    threshold: str
    observed: float | None
    unit: str
    passed: bool
    message: str
    underpowered: bool = False  # too few requests beyond the percentile to measure it

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "threshold": self.threshold,
            "observed": self.observed,
            "unit": self.unit,
            "passed": self.passed,
            "message": self.message,
            "underpowered": self.underpowered,
        }


def parse_threshold(text: str, where: str, target: Target) -> Threshold:
    """A threshold like ``p95 < 300ms``; raises :class:`UsageError` saying what is wrong."""
    m = _THRESHOLD.match(text)
    if not m:
        raise UsageError(
            f"{where}: malformed threshold {text!r}; expected METRIC OP VALUE[UNIT], "
            "e.g. 'p95 < 300ms', 'error_rate < 0.1%', 'rps > 900'"
        )
    raw, arg, op, unit = m["metric"].lower(), m["arg"], m["op"], m["unit"]
    unit = unit if unit in (None, "%", "µs") else unit.lower()
    corrected = m["co"] is not None
    value = float(m["value"])
    percentile: float | None = None
    step: int | None = None
    metric = _ALIASES.get(raw, raw)
    if raw.startswith("p") and raw[1:2].isdigit():
        metric, percentile = "p", float(raw[1:])
        if arg is not None:
            raise UsageError(f"{where}: {text!r}: write p95 or p(95), not both")
    elif raw == "p" and arg is not None:
        try:
            metric, percentile = "p", float(arg)
        except ValueError:
            raise UsageError(f"{where}: {text!r}: p(...) needs a number, e.g. p(99.9)") from None
    elif metric == "conversion" and arg is not None:
        if not arg.isdigit():
            raise UsageError(f"{where}: {text!r}: conversion(N) needs a step number")
        step = int(arg)
    elif arg is not None:
        raise UsageError(f"{where}: {text!r}: {raw} takes no argument")
    if metric == "p":
        assert percentile is not None
        if not 0 < percentile <= 100:
            raise UsageError(f"{where}: {text!r}: percentile must be in (0, 100]")
    elif metric not in METRICS[1:]:  # every metric but the percentile, handled above
        raise UsageError(
            f"{where}: {text!r}: unknown metric {raw!r}; expected one of {', '.join(METRICS)}"
        )
    if metric in _LATENCY:
        if unit == "%":
            raise UsageError(f"{where}: {text!r}: a latency takes us, ms, s or m, not %")
        value = s_to_ms(value * SECONDS_PER_UNIT[unit]) if unit else value  # ms by default
    elif metric in ("error_rate", "conversion"):
        if unit == "%":
            value /= 100
        elif unit is not None:
            raise UsageError(f"{where}: {text!r}: {metric} is a fraction or a percentage")
        if not 0 <= value <= 1:
            raise UsageError(f"{where}: {text!r}: {metric} must be within 0..1 (or 0..100%)")
    elif unit is not None:
        raise UsageError(f"{where}: {text!r}: {metric} is a plain number (no unit)")
    if corrected and metric not in _LATENCY:
        raise UsageError(
            f"{where}: {text!r}: +co (corrected for coordinated omission) applies to a "
            "latency: pNN, avg, med, min or max"
        )
    if target.kind == "funnel" and metric not in ("conversion", "count"):
        raise UsageError(f"{where}: {text!r}: a funnel has conversion and count only")
    if metric == "conversion" and target.kind != "funnel":
        raise UsageError(f"{where}: {text!r}: conversion applies to a funnel:NAME target")
    return Threshold(
        text=text.strip(),
        metric=metric,
        percentile=percentile,
        step=step,
        op=op,
        value=value,
        corrected=corrected,
    )


def parse_target(text: str, where: str) -> Target:
    if text in ("total", "overall", "*"):
        return Target(text=text, kind="total")
    kind, sep, rest = text.partition(":")
    if sep and kind in ("journey", "funnel"):
        if not rest.strip():
            raise UsageError(f"{where}: {text!r}: name the {kind}, e.g. {kind}:login")
        return Target(text=text, kind=kind, name=rest.strip())
    method, sep, name = text.partition(" ")
    if sep and method in HTTP_METHODS and name.strip():
        return Target(text=text, kind="key", name=name.strip(), method=method)
    if not text.strip():
        raise UsageError(f"{where}: empty target")
    return Target(text=text, kind="name", name=text.strip())


def parse_slo(table: Any, where: str) -> list[Objective]:
    """The ``[slo]`` table: target -> list of thresholds (strings or option tables)."""
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: expected a table of target = [thresholds]")
    objectives = []
    for target_text, items in table.items():
        at = f"{where}.{target_text}" if " " not in target_text else f'{where}."{target_text}"'
        target = parse_target(target_text, at)
        if isinstance(items, str | Mapping):
            items = [items]
        if not isinstance(items, list):
            raise UsageError(f"{at}: expected a list of thresholds like ['p95 < 300ms']")
        for item in items:
            objectives.append(Objective(target=target, threshold=_parse_item(item, at, target)))
    return objectives


def _parse_item(item: Any, where: str, target: Target) -> Threshold:
    if isinstance(item, str):
        return parse_threshold(item, where, target)
    if not isinstance(item, Mapping):
        raise UsageError(f"{where}: expected a threshold string or a table, got {item!r}")
    unknown = set(item) - {"threshold", "abort_on_fail", "delay_abort_eval"}
    if unknown:
        raise UsageError(
            f"{where}: unknown keys {', '.join(sorted(unknown))}; expected "
            "threshold, abort_on_fail, delay_abort_eval"
        )
    text = item.get("threshold")
    if not isinstance(text, str):
        raise UsageError(f"{where}: a table needs threshold = 'p95 < 300ms'")
    abort = item.get("abort_on_fail", False)
    if not isinstance(abort, bool):
        raise UsageError(f"{where}: abort_on_fail: expected true or false")
    delay = parse_duration_s(
        item.get("delay_abort_eval", f"{DEFAULT_DELAY_ABORT_EVAL_S}s"), f"{where}: delay_abort_eval"
    )
    parsed = parse_threshold(text, where, target)
    return Threshold(
        text=parsed.text,
        metric=parsed.metric,
        percentile=parsed.percentile,
        step=parsed.step,
        op=parsed.op,
        value=parsed.value,
        abort_on_fail=abort,
        delay_abort_eval_s=delay,
        corrected=parsed.corrected,
    )


def load_slo_file(path: Path) -> list[Objective]:
    """An SLO file: an ``[slo]`` table (a campaign file will do) or the targets at top level."""
    raw = read_toml(path, "SLO file")
    table = raw.get("slo", raw)
    return parse_slo(table, f"{path}: slo")


# -- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Data:
    count: int
    failures: int
    histogram: HdrHistogram


def is_corrected_http(method: str) -> bool:
    """``GET+CO`` and the like: the corrected twin of an HTTP request, not of a journey."""
    base = method.removesuffix(CORRECTED_SUFFIX)
    return base != method and base in HTTP_METHODS


def _select(run: RunData, target: Target, corrected: bool = False) -> _Data | None:
    if target.kind == "total" and not corrected:
        return _Data(run.total.count, run.total.failures, run.total.histogram)
    suffix = CORRECTED_SUFFIX if corrected else ""
    pool = run.section("corrected") if corrected else run.section("requests")
    chosen: list[Series]
    if target.kind == "total":
        chosen = [s for s in pool if is_corrected_http(s.method)]
    elif target.kind == "key":
        chosen = [s for s in pool if s.name == target.name and s.method == target.method + suffix]
    elif target.kind == "name":
        chosen = [
            s
            for s in pool
            if s.name == target.name and (not corrected or is_corrected_http(s.method))
        ]
    else:
        journeys = pool if corrected else run.section("journeys")
        chosen = [s for s in journeys if s.name == target.name and s.method == "JOURNEY" + suffix]
    if not chosen:
        return None
    merged = hdr.new_histogram()
    for s in chosen:
        merged.add(s.histogram)
    return _Data(sum(s.count for s in chosen), sum(s.failures for s in chosen), merged)


def _funnel_steps(run: RunData, name: str) -> dict[int, int]:
    steps: dict[int, int] = {}
    for s in run.section("journeys"):
        if s.method != "FUNNEL" or not s.name.startswith(f"{name}/"):
            continue
        number = s.name[len(name) + 1 :].split(" ", 1)[0]
        if number.isdigit():
            steps[int(number)] = steps.get(int(number), 0) + s.count
    return steps


def observe(run: RunData, objective: Objective) -> tuple[float | None, str, int]:
    """The observed value of an objective, its unit, and the sample count behind it."""
    t, target = objective.threshold, objective.target
    if target.kind == "funnel":
        steps = _funnel_steps(run, target.name)
        if not steps:
            return None, "", 0
        first = steps[min(steps)]
        if t.metric == "count":
            return float(first), "", first
        last = steps.get(t.step, 0) if t.step is not None else steps[max(steps)]
        return (last / first if first else None), "", first
    data = _select(run, target, t.corrected)
    if data is None:
        return None, "", 0
    n = data.count
    if t.metric == "count":
        return float(n), "", n
    if t.metric == "failures":
        return float(data.failures), "", n
    if t.metric == "rps":
        return (n / run.duration_s if run.duration_s > 0 else None), "req/s", n
    if t.metric == "error_rate":
        return (data.failures / n if n else None), "", n
    h = data.histogram
    if h.get_total_count() == 0:
        return None, "ms", n
    if t.metric == "p":
        assert t.percentile is not None
        return us_to_ms(hdr.percentile_us(h, t.percentile)), "ms", n
    stats = hdr.stats_ms(h)
    return (
        stats[{"avg": "mean_ms", "med": "p50_ms", "min": "min_ms", "max": "max_ms"}[t.metric]],
        "ms",
        n,
    )


def _fmt(value: float, unit: str, metric: str) -> str:
    if metric in ("error_rate", "conversion"):
        return f"{value * 100:.3g}%"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    return f"{value:.4g}{' ' + unit if unit else ''}"


def evaluate(run: RunData, objectives: Sequence[Objective]) -> list[SloResult]:
    """Every objective on a finished run; a target with no data fails (a misspelt name must
    not pass silently)."""
    results = []
    for o in objectives:
        observed, unit, n = observe(run, o)
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            no_twins = o.threshold.corrected and not any(
                is_corrected_http(s.method) for s in run.section("corrected")
            )
            results.append(
                SloResult(
                    target=o.target.text,
                    threshold=o.threshold.text,
                    observed=None,
                    unit=unit,
                    passed=False,
                    message=(
                        "no corrected figures (+co): only an open-model run (--arrival-rate) "
                        "has them"
                        if no_twins
                        else "no data for this target"
                    ),
                )
            )
            continue
        ok = o.threshold.holds(observed)
        shown = _fmt(observed, unit, o.threshold.metric)
        p = o.threshold.percentile
        thin = o.threshold.metric == "p" and p is not None and n * (1 - p / 100) < SLO_MIN_TAIL
        message = f"{shown}" if ok else f"{shown}: breached"
        if thin:
            message += f" (only {n} requests: too few beyond p{p:g} to measure it)"
        results.append(
            SloResult(
                target=o.target.text,
                threshold=o.threshold.text,
                observed=observed,
                unit=unit,
                passed=ok,
                message=message,
                underpowered=thin,
            )
        )
    return results


def abort_reason(run: RunData, objectives: Sequence[Objective], elapsed_s: float) -> str | None:
    """The first ``abort_on_fail`` objective breached on a live run (k6's ``abortOnFail``),
    once its ``delay_abort_eval`` has passed and its target has :data:`ABORT_MIN_COUNT`
    requests; None while all hold."""
    for o in objectives:
        t = o.threshold
        if not t.abort_on_fail or elapsed_s < t.delay_abort_eval_s:
            continue
        observed, unit, n = observe(run, o)
        if observed is None or n < ABORT_MIN_COUNT:
            continue
        if not t.holds(observed):
            return f"{o.target.text}: {t.text} breached ({_fmt(observed, unit, t.metric)})"
    return None
