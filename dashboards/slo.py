"""SLOs with multi-window, multi-burn-rate alerts (Google SRE workbook, "Alerting on SLOs").

Each SLO records its error ratio over every window the alerts need, as
``slo:sli_error:ratio_rate<window>{slo="...", job="..."}``, plus its objective and error budget
as ``slo:objective:ratio`` and ``slo:error_budget:ratio``. Two alerts cover every SLO:

- ``SLOErrorBudgetBurnFast`` (severity ``page``): 2 % of a 30-day budget in 1 h (burn rate 14.4,
  checked over 1 h and 5 m) or 5 % in 6 h (burn rate 6, over 6 h and 30 m);
- ``SLOErrorBudgetBurnSlow`` (severity ``ticket``): 10 % in 1 d (burn rate 3, over 1 d and 2 h)
  or 10 % in 3 d (burn rate 1, over 3 d and 6 h).

The short window of each pair makes an alert stop soon after the burn stops. A load campaign
is short, so the long windows hold only the campaign; the ratios are then those of the campaign.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dashboards.contract import LATENCY_SLO_THRESHOLD_LE, SERVER_ERROR_STATUS
from dashboards.rules import AlertingRule, RecordingRule, Rule, RuleFile, RuleGroup, expr


@dataclass(frozen=True, kw_only=True)
class Slo:
    name: str
    objective: float
    description: str
    #: PromQL of the ratio of bad events to all events by job, over a window such as "5m".
    error_ratio: Callable[[str], str]


@dataclass(frozen=True, kw_only=True)
class BurnRateWindow:
    long: str
    short: str
    burn_rate: float


#: (alert, severity, windows) from the SRE workbook's recommended parameters.
BURN_RATE_ALERTS = (
    (
        "SLOErrorBudgetBurnFast",
        "page",
        (
            BurnRateWindow(long="1h", short="5m", burn_rate=14.4),
            BurnRateWindow(long="6h", short="30m", burn_rate=6),
        ),
    ),
    (
        "SLOErrorBudgetBurnSlow",
        "ticket",
        (
            BurnRateWindow(long="1d", short="2h", burn_rate=3),
            BurnRateWindow(long="3d", short="6h", burn_rate=1),
        ),
    ),
)

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def _availability_ratio(window: str) -> str:
    selector = f'portal_http_requests_total{{status=~"{SERVER_ERROR_STATUS}"}}'
    errors = f"sum by (job) (rate({selector}[{window}]))"
    total = f"sum by (job) (rate(portal_http_requests_total[{window}]))"
    return expr(
        f"""
        (
          {errors}
            or
          0 * {total}
        )
          /
        {total}
        """
    )


def _latency_ratio(window: str) -> str:
    metric = "portal_http_request_duration_seconds"
    total = f"sum by (job) (rate({metric}_count[{window}]))"
    fast = f'sum by (job) (rate({metric}_bucket{{le="{LATENCY_SLO_THRESHOLD_LE}"}}[{window}]))'
    return expr(
        f"""
        (
          {total}
            -
          {fast}
        )
          /
        {total}
        """
    )


def _loadgen_success_ratio(window: str) -> str:
    total = f"sum by (job) (rate(loadgen_requests_total[{window}]))"
    return expr(
        f"""
        (
          sum by (job) (rate(loadgen_failures_total[{window}]))
            or
          0 * {total}
        )
          /
        {total}
        """
    )


SLOS = (
    Slo(
        name="portal-availability",
        objective=0.999,
        description="99.9 % of requests the portal answers are not 5xx (load shedding included).",
        error_ratio=_availability_ratio,
    ),
    Slo(
        name="portal-latency",
        objective=0.99,
        description=(
            f"99 % of requests are answered within {LATENCY_SLO_THRESHOLD_LE} s, server side."
        ),
        error_ratio=_latency_ratio,
    ),
    Slo(
        name="loadgen-success",
        objective=0.999,
        description="99.9 % of requests the load generator sends succeed, as citizens see them.",
        error_ratio=_loadgen_success_ratio,
    ),
)


def slo_group() -> RuleGroup:
    """SLI recording rules, then the alerts that read them.

    One group, because Prometheus evaluates the rules of a group in order at one timestamp;
    alerts in a separate group would read ratios one evaluation old.
    """
    rules: list[Rule] = []
    for slo in SLOS:
        labels = {"slo": slo.name}
        rules += [
            RecordingRule(
                record="slo:objective:ratio", expr=f"vector({slo.objective})", labels=labels
            ),
            RecordingRule(
                record="slo:error_budget:ratio", expr=f"vector(1 - {slo.objective})", labels=labels
            ),
        ]
        rules += [
            RecordingRule(
                record=f"slo:sli_error:ratio_rate{window}",
                expr=slo.error_ratio(window),
                labels=labels,
            )
            for window in WINDOWS
        ]
    rules += _burn_rate_alerts()
    return RuleGroup(name="slo", rules=rules)


def _burn_condition(window: BurnRateWindow) -> str:
    budget = f"on (slo) group_left () ({window.burn_rate:g} * slo:error_budget:ratio)"
    return (
        f"(\n"
        f"  slo:sli_error:ratio_rate{window.long} > {budget}\n"
        f"    and\n"
        f"  slo:sli_error:ratio_rate{window.short} > {budget}\n"
        f")"
    )


def _burn_rate_alerts() -> list[Rule]:
    rules: list[Rule] = []
    for alert, severity, windows in BURN_RATE_ALERTS:
        pairs = ", ".join(f"{w.burn_rate:g}x over {w.long} and {w.short}" for w in windows)
        rules.append(
            AlertingRule(
                alert=alert,
                expr="\nor\n".join(_burn_condition(w) for w in windows),
                labels={"severity": severity},
                annotations={
                    "summary": "SLO {{ $labels.slo }} of {{ $labels.job }} burns its error budget",
                    "description": (
                        "The error ratio of SLO {{ $labels.slo }} (job {{ $labels.job }}) is "
                        "{{ $value | humanizePercentage }}, above the burn-rate threshold "
                        f"({pairs})."
                    ),
                },
            )
        )
    return rules


def loadgen_health_group() -> RuleGroup:
    """Alerts that say the load generator's numbers cannot be trusted right now."""
    return RuleGroup(
        name="campaign_health",
        rules=[
            AlertingRule(
                alert="ScrapeTargetDown",
                expr='up{job=~"mock_portal|loadgen"} == 0',
                for_="10s",
                labels={"severity": "page"},
                annotations={
                    "summary": "{{ $labels.job }} target {{ $labels.instance }} is down",
                    "description": "Prometheus cannot scrape {{ $labels.instance }}.",
                },
            ),
            AlertingRule(
                alert="LoadgenWorkerCpuSaturated",
                # Locust itself warns above 90 % CPU: response times then include the client.
                expr="loadgen_worker_cpu_percent > 90",
                for_="30s",
                labels={"severity": "ticket"},
                annotations={
                    "summary": "Load generator worker {{ $labels.worker }} is CPU bound",
                    "description": (
                        "Worker {{ $labels.worker }} runs at {{ $value }} % CPU; measured response "
                        "times include time spent waiting for the generator. Add workers."
                    ),
                },
            ),
            AlertingRule(
                alert="LoadgenScheduleLagHigh",
                # Users starting 100 ms late no longer follow the load shape's arrival times.
                expr="loadgen_schedule_lag_seconds > 0.1",
                for_="30s",
                labels={"severity": "ticket"},
                annotations={
                    "summary": "Load generator falls behind its schedule",
                    "description": "Users start {{ $value | humanizeDuration }} late.",
                },
            ),
            AlertingRule(
                alert="LoadgenDroppingStarts",
                expr="sum by (job) (rate(loadgen_dropped_starts_total[1m])) > 0",
                for_="30s",
                labels={"severity": "ticket"},
                annotations={
                    "summary": "Load generator drops scheduled starts",
                    "description": "{{ $value | humanize }} starts per second are dropped.",
                },
            ),
        ],
    )


def slo_rule_file() -> RuleFile:
    lines = ["SLOs and their multi-window, multi-burn-rate alerts (Google SRE workbook)."]
    lines += [f"{slo.name}: {slo.description}" for slo in SLOS]
    return RuleFile(
        filename="slo.yml",
        description="\n".join(lines),
        groups=[slo_group()],
    )


def health_rule_file() -> RuleFile:
    return RuleFile(
        filename="campaign_health.yml",
        description="Alerts on whether a campaign's numbers can be trusted.",
        groups=[loadgen_health_group()],
    )
