"""Behaviour knobs, live through /admin/faults: latency, errors, resets, slow bodies,
simulated capacity and load shedding."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mock_portal.config import Capacity, ConfigError, Faults, Latency
from mock_portal.faults import ServerPool, sample
from mock_portal.metrics import PortalMetrics

from .conftest import ADMIN_TOKEN, Portal

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _put(portal: Portal, doc: dict[str, Any]) -> Any:
    return await portal.client.put("/admin/faults", json=doc, headers=ADMIN)


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def test_admin_requires_the_token(portal: Portal) -> None:
    assert (await portal.client.get("/admin/faults")).status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await portal.client.put("/admin/faults", json={}, headers=wrong)).status == 401
    r = await portal.client.get("/admin/faults", headers=ADMIN)
    assert r.status == 200
    assert (await r.json())["routes"] == {}


async def test_invalid_fault_document_is_422_with_the_path(portal: Portal) -> None:
    r = await _put(portal, {"routes": {"/api/v1/services": {"error": {"rate": 2}}}})
    assert r.status == 422
    assert 'routes."/api/v1/services".error.rate' in (await r.json())["detail"]
    r = await _put(portal, {"capacity": {"nowhere": {"servers": 1}}})
    assert r.status == 422


async def test_error_injection_answers_problems_and_is_counted(portal: Portal) -> None:
    doc = {"routes": {"/api/v1/services": {"error": {"status": 503, "rate": 1.0}}}}
    r = await _put(portal, doc)
    assert r.status == 200
    assert (await r.json())["version"] == 1
    for _ in range(3):
        r = await portal.client.get("/api/v1/services")
        assert r.status == 503
        assert r.headers["Retry-After"] == "1"
        assert (await r.json())["type"].endswith("injected-fault")
    assert (await portal.client.get("/api/v1/services/10001")).status == 200  # other route
    metrics = await (await portal.client.get("/metrics")).text()
    assert (
        _metric(metrics, "portal_faults_injected_total", route="/api/v1/services", kind="error")
        == 3
    )
    assert (
        _metric(metrics, "portal_http_requests_total", route="/api/v1/services", status="503") == 3
    )
    assert (await _put(portal, {})).status == 200
    assert (await portal.client.get("/api/v1/services")).status == 200


async def test_connection_reset(portal: Portal) -> None:
    await _put(portal, {"routes": {"/api/v1/services": {"reset_rate": 1.0}}})
    with pytest.raises(aiohttp.ClientError):
        await portal.client.get("/api/v1/services")
    await _put(portal, {})
    assert (await portal.client.get("/api/v1/services")).status == 200


async def test_a_lost_response_is_handled_then_replayed_with_its_key(portal: Portal) -> None:
    from .conftest import bearer, login

    auth = bearer(await login(portal.client, 7))
    charges = await (await portal.client.get("/api/v1/payments/charges", headers=auth)).json()
    body = {"charge_id": charges["items"][0]["id"]}
    headers = {**auth, "Idempotency-Key": "lost-once"}
    await _put(portal, {"routes": {"/api/v1/payments": {"lose_response_rate": 1.0}}})
    with pytest.raises(aiohttp.ClientError):
        await portal.client.post("/api/v1/payments", json=body, headers=headers)
    await _put(portal, {})
    retry = await portal.client.post("/api/v1/payments", json=body, headers=headers)
    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true", "the lost attempt made the payment"
    ledger = await (await portal.client.get("/admin/ledger", headers=ADMIN)).json()
    assert ledger["payments"] == 1


async def test_a_fault_on_every_route_spares_operations_and_admin(portal: Portal) -> None:
    everything = {"routes": {"*": {"error": {"status": 500, "rate": 1.0}}}, "shed_in_flight": 1}
    assert (await _put(portal, everything)).status == 200
    assert (await portal.client.get("/api/v1/services")).status == 500
    for path in ("/metrics", "/healthz", "/readyz", "/openapi.json"):
        assert (await portal.client.get(path)).status == 200, path
    assert (await portal.client.get("/admin/ledger", headers=ADMIN)).status == 200
    assert (await _put(portal, {})).status == 200, "the fault can always be removed"
    assert (await portal.client.get("/api/v1/services")).status == 200


async def test_slow_body_delivers_the_whole_body(portal: Portal) -> None:
    await _put(portal, {"routes": {"/api/v1/services/{code}": {"slow_body_ms": 100}}})
    r = await portal.client.get("/api/v1/services/10001")
    assert r.status == 200
    assert (await r.json())["code"] == "10001"


async def test_load_shedding_above_the_in_flight_limit(portal: Portal) -> None:
    await _put(
        portal,
        {
            "shed_in_flight": 2,
            "shed_retry_after_s": 3,
            "routes": {"/api/v1/services": {"latency": {"kind": "fixed", "ms": 300}}},
        },
    )
    responses = await asyncio.gather(*(portal.client.get("/api/v1/services") for _ in range(8)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) >= 2
    shed = [r for r in responses if r.status == 503]
    assert shed, statuses
    assert all(r.headers["Retry-After"] == "3" for r in shed)
    metrics = await (await portal.client.get("/metrics")).text()
    assert _metric(metrics, "portal_load_shed_total") == len(shed)


def test_latency_distributions_have_the_stated_shape() -> None:
    rng = random.Random(7)
    logn = Latency.parse({"kind": "lognormal", "median_ms": 20, "p99_ms": 200}, "x")
    draws = sorted(sample(logn, rng) for _ in range(20_000))
    assert draws[10_000] == pytest.approx(0.020, rel=0.05)
    assert draws[19_800] == pytest.approx(0.200, rel=0.15)
    uni = Latency.parse({"kind": "uniform", "min_ms": 5, "max_ms": 15}, "x")
    assert all(0.005 <= sample(uni, rng) <= 0.015 for _ in range(1000))
    with pytest.raises(ConfigError, match="median_ms < p99_ms"):
        Latency.parse({"kind": "lognormal", "median_ms": 20, "p99_ms": 10}, "x")


async def test_server_pool_is_an_exact_fcfs_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten arrivals at once on 2 servers of 10 ms: the last finishes at 50 ms, in virtual time."""
    from prometheus_client import CollectorRegistry

    spec = Capacity.parse({"servers": 2, "service_time": {"kind": "fixed", "ms": 10}}, "c")
    assert spec.capacity_rps == pytest.approx(200)
    pool = ServerPool("payments", spec, random.Random(1), PortalMetrics(CollectorRegistry()))
    waits: list[float] = []

    async def fake_sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: 100.0)
    await asyncio.gather(*(pool.serve() for _ in range(10)))
    assert sorted(round(w, 6) for w in waits) == [0.01, 0.01, 0.02, 0.02, 0.03, 0.03, 0.04,
                                                   0.04, 0.05, 0.05]  # fmt: skip


async def test_capacity_is_configured_live_and_exported(portal: Portal) -> None:
    r = await _put(
        portal,
        {"capacity": {"catalog": {"servers": 4, "service_time": {"kind": "fixed", "ms": 2}}}},
    )
    assert (await r.json())["capacity"]["catalog"]["capacity_rps"] == 2000
    results = await asyncio.gather(*(portal.client.get("/api/v1/services") for _ in range(20)))
    assert {r.status for r in results} == {200}
    metrics = await (await portal.client.get("/metrics")).text()
    assert _metric(metrics, "portal_capacity_theoretical_rps", service="catalog") == 2000


def test_faults_round_trip_through_json() -> None:
    doc = {
        "routes": {"*": {"latency": {"kind": "uniform", "min_ms": 1, "max_ms": 2},
                         "error": {"status": 500, "rate": 0.1}, "reset_rate": 0.01,
                         "lose_response_rate": 0.02, "slow_body_ms": 5}},
        "capacity": {"payments": {"servers": 8, "service_time": {"kind": "exponential", "ms": 4}}},
        "shed_in_flight": 100,
        "shed_retry_after_s": 2,
        "seed": 3,
    }  # fmt: skip
    faults = Faults.parse(doc)
    again = Faults.parse(faults.to_json())
    assert again == faults
