"""The request metrics of one process are tallied and added in at collection: what a scrape
shows is, value for value, what per-request ``inc`` and ``observe`` calls would have shown."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from mock_portal.metrics import DURATION_BUCKETS_S, PortalMetrics

from .conftest import Portal

REQUESTS = "portal_http_requests"
DURATION = "portal_http_request_duration_seconds"


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        if family.name in (REQUESTS, DURATION)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_tallied_requests_export_what_per_request_calls_would() -> None:
    tallied = PortalMetrics(CollectorRegistry())
    reference = CollectorRegistry()
    counter = Counter(REQUESTS, "x", ["route", "method", "status"], registry=reference)
    histogram = Histogram(
        DURATION, "x", ["route", "method"], buckets=DURATION_BUCKETS_S, registry=reference
    )
    rng = random.Random(7)
    routes = ["/api/v1/services", "/api/v1/me", "unmatched"]
    for i in range(3000):
        route, method = rng.choice(routes), rng.choice(["GET", "POST"])
        status = rng.choice([200, 201, 404, 503])
        duration = rng.choice([rng.expovariate(300), *DURATION_BUCKETS_S, 12.0])
        tallied.observe(route, method, status, duration)
        counter.labels(route, method, str(status)).inc()
        histogram.labels(route, method).observe(duration)
        if i % 1000 == 999:  # a scrape in between: the tally starts again from zero
            assert _samples(tallied.registry).keys() == _samples(reference).keys()
    got, want = _samples(tallied.registry), _samples(reference)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key[0].endswith("_sum"):
            assert got[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert got[key] == value, key


async def test_a_scrape_counts_every_request_answered_before_it(portal: Portal) -> None:
    client = portal.client
    for _ in range(7):
        r = await client.get("/api/v1/services")
        assert r.status == 200
    for _ in range(3):
        r = await client.get("/no/such/page")
        assert r.status == 404
    r = await client.post("/api/v1/services")
    assert r.status == 405
    assert r.content_type == "application/problem+json"

    def value(name: str, **labels: str) -> float | None:
        return portal.registry.get_sample_value(name, labels)

    listing = {"route": "/api/v1/services", "method": "GET"}
    assert value(f"{REQUESTS}_total", **listing, status="200") == 7
    assert value(f"{DURATION}_count", **listing) == 7
    assert value(f"{DURATION}_bucket", **listing, le="+Inf") == 7
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(f"{REQUESTS}_total", **unmatched) == 3
    assert value(f"{REQUESTS}_total", route="unmatched", method="POST", status="405") == 1

    text = await (await client.get("/metrics")).text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for s in families[REQUESTS].samples
    }
    key = (f"{REQUESTS}_total", tuple(sorted({**listing, "status": "200"}.items())))
    assert samples[key] == 7
