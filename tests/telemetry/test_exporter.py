"""The loadgen_* collector: exposition parses, counters equal the aggregator's counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scenarios.telemetry.aggregate import RunAggregator
from scenarios.telemetry.exporter import BUCKETS_S, LiveGauges, LoadgenCollector
from scenarios.telemetry.recorder import IntervalRecorder


def _aggregator() -> RunAggregator:
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(0.0)
    for worker, latencies in (("w1", [0.5, 1.0, 2.5, 39.5]), ("w2", [99.5, 120.0, 1_900.0])):
        r = IntervalRecorder()
        for ms in latencies:
            r.record("/api/v1/services", "GET", ms, "HTTP 503" if ms > 100 else None)
        r.record("/healthz", "GET", 3.0, None)
        r.record("pay", "JOURNEY", 800.0, "charges: HTTP 409")
        r.record("/healthz", "GET+CO", 13.0, None)
        r.record("pay", "JOURNEY+CO", 900.0, None)  # a journey's twin: not a response time
        om = {"dropped": 2, "late": 5, "started": 40, "target_rps": 50.0, "schedule_lag_s": 0.02}
        report = r.take(start_s=0, end_s=2, cpu_percent=30.0, index=int(worker[1]), open_model=om)
        agg.add_report(worker, report, received_s=2)
    return agg


def _scrape(agg: RunAggregator) -> dict[str, list]:
    registry = CollectorRegistry(auto_describe=False)
    live = LiveGauges(users=7, workers=2, target_users=8)
    registry.register(LoadgenCollector(lambda: agg, lambda: live))
    text = generate_latest(registry).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples: list, metric: str, **labels: str) -> float:
    (value,) = [s.value for s in samples if s.name == metric and s.labels == labels]
    return float(value)


def test_buckets_are_the_published_ones() -> None:
    fine = [round(b, 6) for b in BUCKETS_S[:100]]
    assert fine == [round(ms / 1000, 6) for ms in range(1, 101)]
    assert list(BUCKETS_S[100:]) == [
        0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
    ]  # fmt: skip


def test_counters_equal_the_merged_histograms() -> None:
    agg = _aggregator()
    families = _scrape(agg)
    requests = families["loadgen_requests"]
    assert _value(requests, "loadgen_requests_total", name="/api/v1/services", method="GET") == 7
    assert _value(requests, "loadgen_requests_total", name="/healthz", method="GET") == 2
    failures = families["loadgen_failures"]
    assert (
        _value(
            failures, "loadgen_failures_total", name="/api/v1/services", method="GET",
            reason="HTTP 503",
        )
        == 2
    )  # fmt: skip
    journeys = families["loadgen_journeys"]
    assert _value(journeys, "loadgen_journeys_total", name="pay", kind="JOURNEY") == 2
    assert (
        _value(
            families["loadgen_journey_failures"], "loadgen_journey_failures_total",
            name="pay", kind="JOURNEY", reason="charges: HTTP 409",
        )
        == 2
    )  # fmt: skip
    # HTTP requests only: journeys and corrected twins are never in loadgen_requests_total
    assert {s.labels["method"] for s in requests} == {"GET"}


def test_the_response_time_histogram_is_exact_and_cumulative() -> None:
    agg = _aggregator()
    samples = _scrape(agg)["loadgen_response_time_seconds"]
    labels = {"name": "/api/v1/services", "method": "GET", "route": "/api/v1/services"}
    buckets = [
        s for s in samples if s.name.endswith("_bucket") and s.labels["name"] == labels["name"]
    ]
    assert len(buckets) == len(BUCKETS_S) + 1
    counts = [s.value for s in buckets]
    assert counts == sorted(counts)
    by_le = {s.labels["le"]: s.value for s in buckets}
    assert by_le["0.001"] == 2  # 0.5 ms and 1.0 ms
    assert by_le["0.003"] == 3
    assert by_le["0.039"] == 3
    assert by_le["0.04"] == 4  # 39.5 ms
    assert by_le["0.1"] == 5  # 99.5 ms
    assert by_le["0.125"] == 6
    assert by_le["2.0"] == 7
    assert by_le["+Inf"] == 7
    assert _value(samples, "loadgen_response_time_seconds_count", **labels) == 7
    total_s = (0.5 + 1.0 + 2.5 + 39.5 + 99.5 + 120.0 + 1_900.0) / 1000
    got_s = _value(samples, "loadgen_response_time_seconds_sum", **labels)
    assert abs(got_s - total_s) <= total_s * 0.001
    corrected = _scrape(agg)["loadgen_corrected_response_time_seconds"]
    assert (
        _value(
            corrected,
            "loadgen_corrected_response_time_seconds_count",
            name="/healthz",
            method="GET",
            route="",  # an operations path: no API route
        )
        == 2
    )
    assert {s.labels["method"] for s in corrected} == {"GET"}


def test_latency_carries_the_route_template_of_the_request_name() -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(0.0)
    r = IntervalRecorder()
    for name in ("/api/v1/services/[code]", "/api/v1/services [search]", "/oauth2/token [code]"):
        r.record(name, "GET" if name.startswith("/api") else "POST", 5.0, None)
        r.record(name, "GET+CO", 9.0, None)
    agg.add_report("local", r.take(start_s=0, end_s=2), received_s=2)
    families = _scrape(agg)
    routes = {
        s.labels["name"]: s.labels["route"]
        for family in ("loadgen_response_time_seconds", "loadgen_corrected_response_time_seconds")
        for s in families[family]
        if s.name.endswith("_count")
    }
    assert routes == {
        "/api/v1/services/[code]": "/api/v1/services/{code}",
        "/api/v1/services [search]": "/api/v1/services",
        "/oauth2/token [code]": "/oauth2/token",
    }


def test_gauges_and_generator_health() -> None:
    families = _scrape(_aggregator())
    assert families["loadgen_users"][0].value == 7
    assert families["loadgen_workers"][0].value == 2
    assert families["loadgen_target_users"][0].value == 8
    # visits per second aimed at, and the visits started: like units
    assert families["loadgen_target_rps"][0].value == 100.0
    assert families["loadgen_starts"][0].value == 80
    assert families["loadgen_dropped_starts"][0].value == 4
    assert families["loadgen_late_starts"][0].value == 10
    assert families["loadgen_schedule_lag_seconds"][0].value == 0.02
    # the counters hold the requests of the reports that end at 2 s (rates divide by it)
    assert families["loadgen_reported_until_timestamp_seconds"][0].value == 2.0
    cpu = {s.labels["worker"]: s.value for s in families["loadgen_worker_cpu_percent"]}
    assert cpu == {"1": 30.0, "2": 30.0}


def test_the_target_rate_says_what_it_counts() -> None:
    registry = CollectorRegistry(auto_describe=False)
    live = LiveGauges(users=0, workers=1)
    registry.register(LoadgenCollector(lambda: _aggregator(), lambda: live))
    text = generate_latest(registry).decode()
    docs = {f.name: f.documentation for f in text_string_to_metric_families(text)}
    assert "visits (journey starts) per second" in docs["loadgen_target_rps"]
    assert "rate(loadgen_starts_total)" in docs["loadgen_target_rps"]
    assert "achieved side of loadgen_target_rps" in docs["loadgen_starts"]


def test_an_empty_run_still_exposes_every_family() -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    families = _scrape(agg)
    for name in (
        "loadgen_requests", "loadgen_failures", "loadgen_response_time_seconds", "loadgen_users",
        "loadgen_workers", "loadgen_target_rps", "loadgen_dropped_starts", "loadgen_starts",
        "loadgen_target_users",
        "loadgen_worker_cpu_percent", "loadgen_schedule_lag_seconds",
        "loadgen_reported_until_timestamp_seconds",
    ):  # fmt: skip
        assert name in families
    assert families["loadgen_requests"] == []
    assert families["loadgen_workers"][0].value == 2
