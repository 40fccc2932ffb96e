"""Every PromQL query the rules and dashboards run, and a helper that evaluates them all.

Grafana cannot be installed on the build machines (docs/observability.md), so dashboards are
validated by running each panel's query, with its template variables substituted as Grafana
would, against a real Prometheus that scraped real metrics. ``evaluate_all`` does that for a
test that scraped a fake exporter and for one that scraped a real campaign alike::

    with PrometheusServer(config) as prom:
        ...
        report = evaluate_all(prom)
        assert not report.failures, report.describe()
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dashboards.generate import DASHBOARDS, GRAFANA_DIR
from dashboards.rules import AlertingRule, RecordingRule, RuleFile, red_rule_file
from dashboards.slo import health_rule_file, slo_rule_file
from harness.observe.prometheus import PrometheusQueryError, Sample

#: Substitutes of Grafana's built-in interval variables: 1 m spans enough scrapes at any
#: scrape interval up to 15 s, as $__rate_interval would.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "__range_s": "300"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*),\s*)?(\w+)\s*\)\s*$", re.DOTALL)
_REGEX_SPECIAL = set("\\^$.|?*+()[]{}")


class QueryClient(Protocol):
    def query(self, expr: str, *, at_s: float | None = None) -> list[Sample]: ...


@dataclass(frozen=True)
class RuleQuery:
    file: str
    group: str
    name: str
    kind: str  # "record" or "alert"
    expr: str


@dataclass(frozen=True)
class Variable:
    name: str
    query: str


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str


def rule_files() -> list[RuleFile]:
    return [red_rule_file(), slo_rule_file(), health_rule_file()]


def rule_queries() -> list[RuleQuery]:
    """Every recording and alerting rule expression, in file and group order."""
    found = []
    for rule_file in rule_files():
        for group in rule_file.groups:
            for rule in group.rules:
                if isinstance(rule, RecordingRule):
                    found.append(
                        RuleQuery(rule_file.filename, group.name, rule.record, "record", rule.expr)
                    )
                elif isinstance(rule, AlertingRule):
                    found.append(
                        RuleQuery(rule_file.filename, group.name, rule.alert, "alert", rule.expr)
                    )
    return found


def load_dashboards(grafana_dir: Path = GRAFANA_DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboards' JSON by file name: what Grafana will load."""
    return {
        name: json.loads((grafana_dir / name).read_text(encoding="utf-8")) for name in DASHBOARDS
    }


def iter_panels(board: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Every panel, rows included, and panels nested in collapsed rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(board_name: str, board: Mapping[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(
            board_name, int(panel["id"]), str(panel["title"]), target["refId"], target["expr"]
        )
        for panel in iter_panels(board)
        for target in panel.get("targets", [])
    ]


def variables(board: Mapping[str, Any]) -> list[Variable]:
    return [
        Variable(str(v["name"]), str(v.get("query", "")))
        for v in board.get("templating", {}).get("list", [])
    ]


def used_variables(expr: str) -> set[str]:
    """Names of the ``$var``, ``${var}`` and ``[[var]]`` references in ``expr``."""
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(expr)}


def regex_escape(value: str) -> str:
    """Escape a label value for ``=~"..."`` as Grafana's Prometheus datasource does."""
    return "".join(f"\\\\{c}" if c in _REGEX_SPECIAL else c for c in value)


def multi_value(values: Sequence[str]) -> str:
    """What Grafana substitutes for several selected values of a multi-value variable."""
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace template variables by ``values`` (and Grafana's built-ins by ``BUILTINS``)."""
    known = {**BUILTINS, **values}

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in known:
            raise KeyError(f"template variable ${name} has no value")
        return known[name]

    return _VARIABLE.sub(replace, expr)


def label_values_promql(query: str) -> tuple[str, str]:
    """``label_values(selector, label)`` -> (PromQL giving one series per value, label)."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"unsupported variable query {query!r}: use label_values(...)")
    selector, label = match.group(1), match.group(2)
    if not selector:
        selector = f'{{{label}!=""}}'
    return f"group by ({label}) ({selector})", label


def resolve_variables(client: QueryClient, board: Mapping[str, Any]) -> dict[str, list[str]]:
    """Values of every variable, in order, each query using the values resolved before it."""
    resolved: dict[str, list[str]] = {}
    for variable in variables(board):
        current = {name: multi_value(vals) for name, vals in resolved.items() if vals}
        promql, label = label_values_promql(substitute(variable.query, current))
        resolved[variable.name] = sorted(
            {s.labels[label] for s in client.query(promql) if label in s.labels}
        )
    return resolved


@dataclass
class Evaluation:
    """What one query returned: ``samples``, or ``error`` when Prometheus refused it."""

    source: str
    expr: str
    samples: list[Sample] = field(default_factory=list)
    error: str = ""

    @property
    def has_data(self) -> bool:
        return any(not math.isnan(s.value) for s in self.samples)


@dataclass
class Report:
    evaluations: list[Evaluation]
    #: Evaluations that failed: an error, or (when data is required) no numeric sample.
    failures: list[Evaluation]

    def describe(self) -> str:
        lines = [f"{len(self.failures)} of {len(self.evaluations)} queries failed:"]
        for e in self.failures:
            lines.append(f"- {e.source}: {e.error or 'no data'}\n    {e.expr}")
        return "\n".join(lines)


def _evaluate(client: QueryClient, source: str, expr: str) -> Evaluation:
    evaluation = Evaluation(source, expr)
    try:
        evaluation.samples = client.query(expr)
    except PrometheusQueryError as exc:
        evaluation.error = str(exc)
    return evaluation


def evaluate_all(client: QueryClient, grafana_dir: Path = GRAFANA_DIR) -> Report:
    """Run every variable, recording rule, alert expression and panel query.

    Variables, recording rules and panel queries must return at least one numeric sample;
    alert expressions must only be valid (they return data only while an alert fires).
    """
    evaluations: list[Evaluation] = []
    failures: list[Evaluation] = []

    def record(evaluation: Evaluation, *, need_data: bool) -> None:
        evaluations.append(evaluation)
        if evaluation.error or (need_data and not evaluation.has_data):
            failures.append(evaluation)

    for rule in rule_queries():
        source = f"rules/{rule.file} {rule.group}/{rule.name}"
        record(_evaluate(client, source, rule.expr), need_data=rule.kind == "record")
        if rule.kind == "record":
            record(_evaluate(client, f"{source} (recorded)", rule.name), need_data=True)

    for board_name, board in load_dashboards(grafana_dir).items():
        try:
            resolved = resolve_variables(client, board)
        except PrometheusQueryError as exc:
            record(Evaluation(f"{board_name} variables", "", error=str(exc)), need_data=True)
            continue
        for name, found in resolved.items():
            evaluation = Evaluation(f"{board_name} ${name}", name)
            evaluation.samples = [Sample({name: v}, 1.0, 0.0) for v in found]
            record(evaluation, need_data=True)
        values = {name: multi_value(found) for name, found in resolved.items() if found}
        for query in panel_queries(board_name, board):
            source = f"{board_name} panel {query.panel_id} {query.panel_title!r} {query.ref_id}"
            try:
                expr = substitute(query.expr, values)
            except KeyError as exc:
                record(Evaluation(source, query.expr, error=str(exc)), need_data=True)
                continue
            record(_evaluate(client, source, expr), need_data=True)
    return Report(evaluations, failures)
