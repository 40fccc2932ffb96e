"""Capacity and headroom: current load against measured capacity and the national peak."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.contract import LATENCY_SLO_THRESHOLD_LE, NATIONAL_PEAK_RPS
from dashboards.panels import (
    PanelBuilder,
    Query,
    bargauge_panel,
    build_dashboard,
    gauge_panel,
    query_variable,
    stat_panel,
    timeseries_panel,
)

UID = "portal-capacity"
LG = 'job=~"$job"'
RATE = "[$__rate_interval]"
#: Server-side load: what the portal answered, all mock instances.
LOAD = f"sum(rate(portal_http_requests_total{RATE}))"
SLO_CAPACITY = f"max(loadgen_capacity_slo_rps{{{LG}}})"
MAX_CAPACITY = f"max(loadgen_capacity_max_rps{{{LG}}})"
PEAK = f"vector({NATIONAL_PEAK_RPS})"


def current_load() -> PanelBuilder:
    return stat_panel(
        "Current load",
        "Requests per second the portal answers now.",
        [Query(LOAD, instant=True)],
        unit="reqps",
    )


def slo_capacity() -> PanelBuilder:
    return stat_panel(
        "Capacity within SLO",
        "Highest rate the capacity search measured with latency and errors within the SLO.",
        [Query(SLO_CAPACITY, instant=True)],
        unit="reqps",
    )


def max_capacity() -> PanelBuilder:
    return stat_panel(
        "Maximum throughput",
        "Highest rate the capacity search measured at all (SLO or not).",
        [Query(MAX_CAPACITY, instant=True)],
        unit="reqps",
    )


def national_peak() -> PanelBuilder:
    return stat_panel(
        "National peak",
        "Peak load of the national portal, as its operators published it.",
        [Query(PEAK, instant=True)],
        unit="reqps",
    )


def utilisation() -> PanelBuilder:
    return gauge_panel(
        "Load / capacity within SLO",
        "Current load as a share of the SLO capacity of this deployment.",
        [Query(f"{LOAD} / {SLO_CAPACITY}", instant=True)],
        unit="percentunit",
        min_val=0,
        max_val=1.2,
        thresholds=((None, "green"), (0.7, "orange"), (0.9, "red")),
    )


def headroom() -> PanelBuilder:
    return stat_panel(
        "Headroom to SLO capacity",
        "Requests per second this deployment can still take within its SLO.",
        [Query(f"{SLO_CAPACITY} - {LOAD}", instant=True)],
        unit="reqps",
        thresholds=((None, "red"), (0, "green")),
    )


def instances_for_peak() -> PanelBuilder:
    return stat_panel(
        "Deployments for the national peak",
        f"ceil({NATIONAL_PEAK_RPS} / capacity within SLO): copies of this deployment "
        "the national peak needs, without spare.",
        [Query(f"ceil({NATIONAL_PEAK_RPS} / {SLO_CAPACITY})", instant=True)],
        unit="none",
        decimals=0,
    )


def share_of_peak() -> PanelBuilder:
    return stat_panel(
        "Capacity / national peak",
        "Share of the national peak this deployment holds within its SLO.",
        [Query(f"{SLO_CAPACITY} / {NATIONAL_PEAK_RPS}", instant=True)],
        unit="percentunit",
        decimals=1,
        thresholds=((None, "red"), (1, "green")),
    )


def load_vs_capacity() -> PanelBuilder:
    return timeseries_panel(
        "Load vs capacity vs national peak",
        "Server-side load, the generator's target, the measured capacities and the peak.",
        [
            Query(LOAD, "load (server)"),
            # The running generator's target, not the capacity job's ($job lists the latter).
            Query('sum(loadgen_target_rps{job="loadgen"})', "target (generator)"),
            Query(SLO_CAPACITY, "capacity within SLO"),
            Query(MAX_CAPACITY, "maximum throughput"),
            Query(PEAK, "national peak"),
        ],
        unit="reqps",
        width=24,
        height=10,
    )


def latency_under_load() -> PanelBuilder:
    return timeseries_panel(
        "p99 duration against the SLO threshold",
        "Server-side p99 as load rises; the capacity within SLO is where it crosses the line.",
        [
            Query(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(portal_http_request_duration_seconds_bucket{RATE})))",
                "p99 (server)",
            ),
            Query(f"vector({LATENCY_SLO_THRESHOLD_LE})", "SLO threshold"),
        ],
        unit="s",
    )


def queue_by_service() -> PanelBuilder:
    return bargauge_panel(
        "Queue depth by service",
        "Requests waiting for a clerk: the first service to queue is the bottleneck.",
        [
            Query(
                'sum by (service) (portal_capacity_queue_depth{service=~"$service"})',
                "{{service}}",
                instant=True,
            )
        ],
        unit="none",
    )


def shed_and_errors() -> PanelBuilder:
    return timeseries_panel(
        "Load shed and 5xx",
        "Past capacity the portal sheds load and fails: both per second.",
        [
            Query(f"sum(rate(portal_load_shed_total{RATE}))", "shed"),
            Query(f'sum(rate(portal_http_requests_total{{status=~"5.."}}{RATE}))', "5xx"),
        ],
        unit="reqps",
    )


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title="Portal load: capacity and headroom",
        description=(
            f"Current load against the measured capacity and the national peak "
            f"of {NATIONAL_PEAK_RPS:,} requests per second."
        ),
        tags=["portal-load", "capacity"],
        variables=[
            query_variable(
                "job", "Load generator job", "label_values(loadgen_capacity_slo_rps, job)"
            ),
            query_variable(
                "service", "Service", "label_values(portal_capacity_queue_depth, service)"
            ),
        ],
        rows=[
            (
                "Now",
                [
                    current_load(),
                    slo_capacity(),
                    max_capacity(),
                    national_peak(),
                    headroom(),
                    share_of_peak(),
                    utilisation(),
                    instances_for_peak(),
                ],
            ),
            ("Over time", [load_vs_capacity(), latency_under_load(), shed_and_errors()]),
            ("Bottleneck", [queue_by_service()]),
        ],
    )
