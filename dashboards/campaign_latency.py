"""Campaign board, latency rows: service time against the time corrected for coordinated
omission, and the generator's latency against the portal's own, route by route.

The open model records every request twice (``scenarios/open_model.py``): its service time
(``loadgen_response_time_seconds``) and the latency a user arriving on schedule would have
seen, start lag and wait for a connection included (``loadgen_corrected_response_time_seconds``).
Both carry the API ``route`` template the request name calls (``scenarios/routes.py``), the
label the portal's ``portal_http_request_duration_seconds`` has, so client and server meet
on one line per route and method.
"""

from __future__ import annotations

from dashboards.contract import QUANTILES, RATE_WINDOW
from dashboards.panels import PanelBuilder, Query, stat_panel, timeseries_panel

LG = 'job=~"$job"'
LG_NAME = 'job=~"$job", name=~"$name"'
LG_ROUTE = 'job=~"$job", route=~"$route"'
RATE = "[$__rate_interval]"
SERVICE = "loadgen_response_time_seconds"
CORRECTED = "loadgen_corrected_response_time_seconds"
SERVER = "portal_http_request_duration_seconds"


def _quantile(q: float, metric: str, selector: str, by: str = "le") -> str:
    return f"histogram_quantile({q:.2f}, sum by ({by}) (rate({metric}_bucket{{{selector}}}{RATE})))"


def corrected_p99() -> PanelBuilder:
    return stat_panel(
        "p99 corrected (open model)",
        "99th percentile a citizen arriving on schedule would have seen: service time plus "
        "the start's lag and the wait for a connection. Empty in the closed model.",
        [Query(f"max(job:{CORRECTED}:p99_{RATE_WINDOW}{{{LG}}})", instant=True)],
        unit="s",
        thresholds=((None, "green"), (0.25, "orange"), (0.5, "red")),
    )


def service_vs_corrected() -> PanelBuilder:
    return timeseries_panel(
        "Service time vs corrected (open model)",
        "Quantiles of the selected names as measured from the moment a request has a "
        "connection (service) and from the moment it was due (corrected, coordinated omission "
        "removed). A gap means requests waited for the generator or for a connection.",
        [
            Query(_quantile(q, metric, LG_NAME), f"{label} {kind}")
            for label, q in QUANTILES
            for metric, kind in ((SERVICE, "service"), (CORRECTED, "corrected"))
        ],
        unit="s",
    )


def client_vs_server_by_route() -> PanelBuilder:
    by = "route, method, le"
    return timeseries_panel(
        "p95 by route: client vs server",
        "95th percentile per API route and method, at the generator (service time) and "
        "inside the portal (its own histogram).",
        [
            Query(
                _quantile(0.95, SERVICE, f'{LG_ROUTE}, route!=""', by),
                "{{method}} {{route}} client",
            ),
            Query(_quantile(0.95, SERVER, 'route=~"$route"', by), "{{method}} {{route}} server"),
        ],
        unit="s",
        width=24,
    )


def difference_by_route() -> PanelBuilder:
    return timeseries_panel(
        "Client - server by route (mean)",
        "Mean response time at the generator minus mean duration in the portal, per route "
        "and method: network, connection queues and the client itself.",
        [
            Query(
                f"route_method:client_minus_server_latency_seconds:mean_{RATE_WINDOW}"
                '{route=~"$route"}',
                "{{method}} {{route}}",
            )
        ],
        unit="s",
        min_val=None,
    )


def p95_difference_by_route() -> PanelBuilder:
    by = "route, method, le"
    client = _quantile(0.95, SERVICE, f'{LG_ROUTE}, route!=""', by)
    server = _quantile(0.95, SERVER, 'route=~"$route"', by)
    return timeseries_panel(
        "Client - server by route (p95)",
        "The client's 95th percentile minus the server's, per route and method (the server's "
        "histogram buckets are coarser: a few ms either way is resolution, not time).",
        [Query(f"{client}\n  - on (route, method)\n{server}", "{{method}} {{route}}")],
        unit="s",
        min_val=None,
    )
