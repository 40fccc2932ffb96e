"""Portal services (RED): rate, errors and duration per route, saturation and business flow."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.contract import LATENCY_SLO_THRESHOLD_LE, QUANTILES
from dashboards.panels import (
    PanelBuilder,
    Query,
    build_dashboard,
    heatmap_panel,
    query_variable,
    stat_panel,
    timeseries_panel,
)

UID = "portal-red"
JOB = 'job=~"$job"'
SEL = 'job=~"$job", route=~"$route"'
RATE = "[$__rate_interval]"
REQUESTS = "portal_http_requests_total"


def request_rate() -> PanelBuilder:
    return stat_panel(
        "Request rate",
        "Requests the portal answered per second.",
        [Query(f"sum(rate({REQUESTS}{{{SEL}}}{RATE}))", instant=True)],
        unit="reqps",
        width=6,
    )


def error_ratio() -> PanelBuilder:
    return stat_panel(
        "5xx ratio",
        "Share of answers with a 5xx status (load shedding's 503 included).",
        [
            Query(
                f'(sum(rate({REQUESTS}{{{SEL}, status=~"5.."}}{RATE})) or vector(0))'
                f" / sum(rate({REQUESTS}{{{SEL}}}{RATE}))",
                instant=True,
            )
        ],
        unit="percentunit",
        width=6,
        decimals=2,
        thresholds=((None, "green"), (0.001, "orange"), (0.01, "red")),
    )


def in_flight_now() -> PanelBuilder:
    return stat_panel(
        "In flight",
        "Requests being handled right now, all instances.",
        [Query(f"sum(portal_http_in_flight{{{JOB}}})", instant=True)],
        unit="none",
        width=6,
    )


def p99_now() -> PanelBuilder:
    return stat_panel(
        "p99 duration",
        "99th percentile of server-side duration of the selected routes.",
        [
            Query(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(portal_http_request_duration_seconds_bucket{{{SEL}}}{RATE})))",
                instant=True,
            )
        ],
        unit="s",
        width=6,
        thresholds=((None, "green"), (float(LATENCY_SLO_THRESHOLD_LE), "red")),
    )


def rate_by_route() -> PanelBuilder:
    return timeseries_panel(
        "Requests by route",
        "Rate per route template.",
        [Query(f"sum by (route) (rate({REQUESTS}{{{SEL}}}{RATE}))", "{{route}}")],
        unit="reqps",
    )


def rate_by_status() -> PanelBuilder:
    return timeseries_panel(
        "Responses by status",
        "Rate per HTTP status code.",
        [Query(f"sum by (status) (rate({REQUESTS}{{{SEL}}}{RATE}))", "{{status}}")],
        unit="reqps",
    )


def error_ratio_by_route() -> PanelBuilder:
    return timeseries_panel(
        "5xx ratio by route",
        "Share of 5xx answers per route, over the last minute (recorded).",
        [Query(f"job_route:portal_http_errors:ratio_rate1m{{{SEL}}}", "{{route}}")],
        unit="percentunit",
    )


def duration_by_route() -> PanelBuilder:
    return timeseries_panel(
        "Duration p50 / p95 / p99 by route",
        "Server-side duration quantiles per route, over the last minute (recorded).",
        [
            Query(
                f"job_route:portal_http_request_duration_seconds:{label}_1m{{{SEL}}}",
                f"{{{{route}}}} {label}",
            )
            for label, _ in QUANTILES
        ],
        unit="s",
        width=24,
        thresholds=((None, "green"), (float(LATENCY_SLO_THRESHOLD_LE), "red")),
    )


def duration_heatmap() -> PanelBuilder:
    return heatmap_panel(
        "Duration distribution",
        "Requests per duration bucket over time.",
        Query(
            f"sum by (le) (increase(portal_http_request_duration_seconds_bucket{{{SEL}}}{RATE}))",
            "{{le}}",
            heatmap=True,
        ),
    )


def in_flight() -> PanelBuilder:
    return timeseries_panel(
        "In-flight requests by instance",
        "Concurrency per mock instance; load shedding starts at its in-flight limit.",
        [Query(f"sum by (instance) (portal_http_in_flight{{{JOB}}})", "{{instance}}")],
        unit="none",
    )


def load_shed() -> PanelBuilder:
    return timeseries_panel(
        "Load shed",
        "Requests refused with 503 + Retry-After above the in-flight limit, per second.",
        [Query(f"sum(rate(portal_load_shed_total{{{JOB}}}{RATE}))", "shed")],
        unit="reqps",
    )


def queue_depth() -> PanelBuilder:
    return timeseries_panel(
        "Capacity queue depth by service",
        "Requests waiting for a clerk of the simulated back office.",
        [Query(f"sum by (service) (portal_capacity_queue_depth{{{JOB}}})", "{{service}}")],
        unit="none",
    )


def faults() -> PanelBuilder:
    return timeseries_panel(
        "Injected faults",
        "Faults injected by /admin/faults, per route and kind.",
        [
            Query(
                f"sum by (route, kind) (rate(portal_faults_injected_total{{{SEL}}}{RATE}))",
                "{{route}}: {{kind}}",
            )
        ],
        unit="short",
    )


def logins() -> PanelBuilder:
    return timeseries_panel(
        "Logins by result",
        "Login attempts per second by result.",
        [Query(f"sum by (result) (rate(portal_logins_total{{{JOB}}}{RATE}))", "{{result}}")],
        unit="short",
    )


def applications() -> PanelBuilder:
    return timeseries_panel(
        "Applications by category and status",
        "Service applications per second.",
        [
            Query(
                "sum by (service_category, status) "
                f"(rate(portal_applications_total{{{JOB}}}{RATE}))",
                "{{service_category}}: {{status}}",
            )
        ],
        unit="short",
    )


def payments() -> PanelBuilder:
    return timeseries_panel(
        "Payments by status",
        "Payments per second by status.",
        [Query(f"sum by (status) (rate(portal_payments_total{{{JOB}}}{RATE}))", "{{status}}")],
        unit="short",
    )


def payment_amount() -> PanelBuilder:
    return timeseries_panel(
        "Payment amount",
        "Roubles paid per second.",
        [Query(f"sum(rate(portal_payment_amount_roubles_total{{{JOB}}}{RATE}))", "roubles/s")],
        unit="currencyRUB",
    )


def store_size() -> PanelBuilder:
    return timeseries_panel(
        "Store size",
        "Entries held per store; bounded by age and size.",
        [Query(f"sum by (store) (portal_store_size{{{JOB}}})", "{{store}}")],
        unit="short",
    )


def store_evictions() -> PanelBuilder:
    return timeseries_panel(
        "Store evictions",
        "Entries evicted per second, per store.",
        [
            Query(
                f"sum by (store) (rate(portal_store_evictions_total{{{JOB}}}{RATE}))",
                "{{store}}",
            )
        ],
        unit="short",
    )


def slo_error_ratio() -> PanelBuilder:
    return timeseries_panel(
        "SLO error ratio (5 m) and budget",
        "Error ratio of each SLO over 5 minutes, against its error budget.",
        [
            Query(f"slo:sli_error:ratio_rate5m{{{JOB}}}", "{{slo}}"),
            Query("slo:error_budget:ratio", "budget {{slo}}"),
        ],
        unit="percentunit",
    )


def slo_burn_rate() -> PanelBuilder:
    return stat_panel(
        "Burn rate (1 h)",
        "Error ratio over 1 hour / error budget: 14.4 pages, 1 spends the budget in 30 days.",
        [
            Query(
                f"slo:sli_error:ratio_rate1h{{{JOB}}}"
                " / on (slo) group_left () slo:error_budget:ratio",
                "{{slo}}",
                instant=True,
            )
        ],
        unit="none",
        width=12,
        height=8,
        decimals=1,
        thresholds=((None, "green"), (1, "orange"), (6, "red")),
    )


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title="Portal load: portal services (RED)",
        description="Rate, errors and duration of the portal's services, server side.",
        tags=["portal-load", "red"],
        variables=[
            query_variable("job", "Portal job", f"label_values({REQUESTS}, job)"),
            query_variable("route", "Route", f'label_values({REQUESTS}{{job=~"$job"}}, route)'),
        ],
        rows=[
            (
                "Rate, errors, duration",
                [
                    request_rate(),
                    error_ratio(),
                    in_flight_now(),
                    p99_now(),
                    rate_by_route(),
                    rate_by_status(),
                    error_ratio_by_route(),
                    duration_heatmap(),
                    duration_by_route(),
                ],
            ),
            ("SLO", [slo_error_ratio(), slo_burn_rate()]),
            ("Saturation", [in_flight(), load_shed(), queue_depth(), faults()]),
            ("Business", [logins(), applications(), payments(), payment_amount()]),
            ("State", [store_size(), store_evictions()]),
        ],
    )
