"""Names shared by rules, dashboards and tests: the metric contract of docs/metrics.md.

Everything a query relies on that another component must match lives here, so a rename is
one edit and the tests in ``tests/dashboards`` fail if the two sides drift.
"""

from __future__ import annotations

#: Prometheus scrape jobs of ``prometheus/prometheus.yml``.
MOCK_JOB = "mock_portal"
LOADGEN_JOB = "loadgen"

#: uid of the provisioned Prometheus datasource every panel and variable refers to.
DATASOURCE_UID = "portal-prometheus"
DATASOURCE_TYPE = "prometheus"

#: National peak load, the portal's published figure: "more than 7000 user requests per second
#: were processed at the peak" (docs/workload-model.md).
NATIONAL_PEAK_RPS = 7000

#: Server-side latency objective: the mock's duration histogram needs a bucket with exactly
#: this ``le`` label (prometheus_client's default buckets have it).
LATENCY_SLO_THRESHOLD_LE = "0.5"

#: Window of the recorded rates: 1 m holds 30 scrapes at the 2 s scrape interval.
RATE_WINDOW = "1m"

#: Quantiles recorded and drawn, as (label, quantile).
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))

#: Server-side errors: a 5xx answer (load shedding's 503 included); 4xx are the client's.
SERVER_ERROR_STATUS = "5.."
