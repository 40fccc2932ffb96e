"""Campaign (live): what the load generator does and sees, and whether to trust it."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.campaign_latency import (
    client_vs_server_by_route,
    corrected_p99,
    difference_by_route,
    p95_difference_by_route,
    service_vs_corrected,
)
from dashboards.panels import (
    PanelBuilder,
    Query,
    build_dashboard,
    query_variable,
    stat_panel,
    timeseries_panel,
)

UID = "portal-campaign"
LG = 'job=~"$job"'
LG_NAME = 'job=~"$job", name=~"$name"'
RATE = "[$__rate_interval]"


def users() -> PanelBuilder:
    return stat_panel(
        "Users",
        "Simulated citizens running journeys now.",
        [Query(f"sum(loadgen_users{{{LG}}})", instant=True)],
        unit="none",
    )


def workers() -> PanelBuilder:
    return stat_panel(
        "Workers",
        "Locust workers connected to the master (one per core).",
        [Query(f"sum(loadgen_workers{{{LG}}})", instant=True)],
        unit="none",
    )


VISITS_PER_S = "suffix: visits/s"


def target_rate() -> PanelBuilder:
    return stat_panel(
        "Target arrival rate",
        "Visits (journey starts) per second the open model aims at; 0 in the closed model. "
        "A visit makes several requests: compare it with the started visits, not req/s.",
        [Query(f"sum(loadgen_target_rps{{{LG}}})", instant=True)],
        unit=VISITS_PER_S,
    )


def achieved_rate() -> PanelBuilder:
    return stat_panel(
        "Achieved rate",
        "Requests sent per second, over the last minute.",
        [Query(f"sum(job:loadgen_requests:rate1m{{{LG}}})", instant=True)],
        unit="reqps",
    )


def failure_ratio() -> PanelBuilder:
    return stat_panel(
        "Failure ratio",
        "Failed requests / all requests, client side, over the last minute.",
        [
            Query(
                f"sum(job:loadgen_failures:rate1m{{{LG}}})"
                f" / sum(job:loadgen_requests:rate1m{{{LG}}})",
                instant=True,
            )
        ],
        unit="percentunit",
        decimals=2,
        thresholds=((None, "green"), (0.001, "orange"), (0.01, "red")),
    )


def p95_response_time() -> PanelBuilder:
    return stat_panel(
        "p95 response time",
        "95th percentile of all responses, as the load generator measured them.",
        [Query(f"max(job:loadgen_response_time_seconds:p95_1m{{{LG}}})", instant=True)],
        unit="s",
        thresholds=((None, "green"), (0.25, "orange"), (0.5, "red")),
    )


def throughput() -> PanelBuilder:
    return timeseries_panel(
        "Throughput",
        "HTTP requests sent per second, and those that failed.",
        [
            Query(f"sum(rate(loadgen_requests_total{{{LG}}}{RATE}))", "requests"),
            Query(f"sum(rate(loadgen_failures_total{{{LG}}}{RATE}))", "failed"),
        ],
        unit="reqps",
    )


def arrivals() -> PanelBuilder:
    return timeseries_panel(
        "Arrivals: target vs started (open model)",
        "Visits per second the open model aims at, those it started and those it dropped; a "
        "gap between the first two means the generator, not the portal, limits the load.",
        [
            Query(f"sum(rate(loadgen_target_starts_total{{{LG}}}{RATE}))", "target"),
            Query(f"sum(rate(loadgen_starts_total{{{LG}}}{RATE}))", "started"),
            Query(f"sum(rate(loadgen_dropped_starts_total{{{LG}}}{RATE}))", "dropped"),
        ],
        unit=VISITS_PER_S,
    )


def users_over_time() -> PanelBuilder:
    return timeseries_panel(
        "Users",
        "Simulated citizens over time, and how many the run (or its load shape) asks for.",
        [
            Query(f"sum(loadgen_users{{{LG}}})", "users"),
            Query(f"sum(loadgen_target_users{{{LG}}})", "target"),
        ],
        unit="none",
    )


def rate_by_name() -> PanelBuilder:
    return timeseries_panel(
        "Request rate by name",
        "Requests per second for each request name of the journeys.",
        [Query(f"sum by (name) (rate(loadgen_requests_total{{{LG_NAME}}}{RATE}))", "{{name}}")],
        unit="reqps",
    )


def failures_by_name() -> PanelBuilder:
    return timeseries_panel(
        "Failures by name and reason",
        "Failed requests per second, by request name and failure reason.",
        [
            Query(
                f"sum by (name, reason) (rate(loadgen_failures_total{{{LG_NAME}}}{RATE}))",
                "{{name}}: {{reason}}",
            )
        ],
        unit="reqps",
    )


def p95_by_name() -> PanelBuilder:
    return timeseries_panel(
        "Response time p95 by name",
        "95th percentile response time per request name, client side.",
        [
            Query(
                "histogram_quantile(0.95, sum by (name, le) "
                f"(rate(loadgen_response_time_seconds_bucket{{{LG_NAME}}}{RATE})))",
                "{{name}}",
            )
        ],
        unit="s",
    )


def quantiles_all() -> PanelBuilder:
    return timeseries_panel(
        "Response time p50 / p95 / p99",
        "Quantiles of the selected request names together, client side.",
        [
            Query(
                f"histogram_quantile({q}, sum by (le) "
                f"(rate(loadgen_response_time_seconds_bucket{{{LG_NAME}}}{RATE})))",
                label,
            )
            for label, q in (("p50", "0.50"), ("p95", "0.95"), ("p99", "0.99"))
        ],
        unit="s",
    )


def client_vs_server_p95() -> PanelBuilder:
    return timeseries_panel(
        "p95: client vs server",
        "The same load seen from the generator and from the portal; the difference is "
        "network, connection queues and the generator itself.",
        [
            Query(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(loadgen_response_time_seconds_bucket{{{LG}}}{RATE})))",
                "client (loadgen)",
            ),
            Query(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(portal_http_request_duration_seconds_bucket{RATE})))",
                "server (portal)",
            ),
        ],
        unit="s",
    )


def client_overhead() -> PanelBuilder:
    return timeseries_panel(
        "Client overhead (mean client - mean server)",
        "Mean response time at the generator minus mean duration in the portal.",
        [Query("portal:client_minus_server_latency_seconds:mean_1m", "overhead")],
        unit="s",
        min_val=None,
    )


def client_server_ratio() -> PanelBuilder:
    return timeseries_panel(
        "Client / server latency ratio",
        "Client quantile divided by server quantile; far above 1 means the client adds time.",
        [
            Query(f"portal:client_to_server_latency_{label}:ratio_1m", label)
            for label in ("p50", "p95", "p99")
        ],
        unit="none",
    )


def worker_cpu() -> PanelBuilder:
    return timeseries_panel(
        "Worker CPU",
        "Above 90 % a worker's own delays enter the measured response times.",
        [Query(f"loadgen_worker_cpu_percent{{{LG}}}", "{{worker}}")],
        unit="percent",
        thresholds=((None, "green"), (90, "red")),
    )


def schedule_lag() -> PanelBuilder:
    return timeseries_panel(
        "Schedule lag",
        "How late users start relative to the load shape.",
        [Query(f"max(loadgen_schedule_lag_seconds{{{LG}}})", "lag")],
        unit="s",
        thresholds=((None, "green"), (0.1, "red")),
    )


def dropped_starts() -> PanelBuilder:
    return timeseries_panel(
        "Dropped starts",
        "User starts the generator could not schedule, per second.",
        [Query(f"sum(rate(loadgen_dropped_starts_total{{{LG}}}{RATE}))", "dropped")],
        unit="short",
    )


def achieved_to_target() -> PanelBuilder:
    return timeseries_panel(
        "Achieved / target",
        "Below 1 the generator does not deliver the load it is asked for: visits started per "
        "second over the arrival rate aimed at (open model), users running over users asked "
        "for (closed model and shapes).",
        [Query(f"job:loadgen_achieved_to_target:ratio{{{LG}}}", "{{job}}")],
        unit="percentunit",
        thresholds=((None, "red"), (0.95, "green")),
    )


def dashboard() -> Dashboard:
    return build_dashboard(
        uid=UID,
        title="Portal load: campaign (live)",
        description="Live view of a load campaign from the load generator's side.",
        tags=["portal-load", "campaign"],
        variables=[
            query_variable(
                "job", "Load generator job", "label_values(loadgen_requests_total, job)"
            ),
            query_variable(
                "name",
                "Request name",
                'label_values(loadgen_requests_total{job=~"$job"}, name)',
            ),
            query_variable(
                "route",
                "API route",
                'label_values(loadgen_response_time_seconds_count{job=~"$job"}, route)',
            ),
        ],
        rows=[
            (
                "Load",
                [
                    users(),
                    workers(),
                    target_rate(),
                    achieved_rate(),
                    failure_ratio(),
                    p95_response_time(),
                    corrected_p99(),
                    throughput(),
                    arrivals(),
                    users_over_time(),
                ],
            ),
            (
                "Requests by name",
                [
                    rate_by_name(),
                    failures_by_name(),
                    p95_by_name(),
                    quantiles_all(),
                    service_vs_corrected(),
                ],
            ),
            (
                "Client vs server",
                [
                    client_vs_server_p95(),
                    client_overhead(),
                    client_server_ratio(),
                    client_vs_server_by_route(),
                    difference_by_route(),
                    p95_difference_by_route(),
                ],
            ),
            (
                "Load generator health",
                [worker_cpu(), schedule_lag(), dropped_starts(), achieved_to_target()],
            ),
        ],
    )
