"""A real Prometheus scrapes real exporters; every rule and every panel query returns data.

Two tiny exporters on ephemeral loopback ports serve the metric contract of docs/metrics.md from
prometheus_client registries (one per job, as the mock and the Locust master will), while a
thread keeps making observations so that rates and quantiles have something to show.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dashboards.contract import LOADGEN_JOB, MOCK_JOB
from dashboards.generate import DASHBOARDS, GRAFANA_DIR
from dashboards.queries import evaluate_all, rule_queries
from harness.observe.prometheus import (
    PrometheusConfig,
    PrometheusServer,
    PrometheusStartError,
    render_config,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs("prometheus"),
]

ROUTES = (("/api/v1/services", "GET"), ("/oauth2/login", "POST"), ("/api/v1/payments", "POST"))
NAMES = (("catalog: list", "GET"), ("login: submit", "POST"), ("payments: pay", "POST"))
LOADGEN_BUCKETS = [i / 1000 for i in range(1, 101)] + [0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
#: Seconds between two rounds of fake traffic: several rounds per 1 s scrape.
TICK_S = 0.05


@dataclass
class Exporter:
    registry: CollectorRegistry
    address: str


def _portal_registry() -> tuple[CollectorRegistry, list[object]]:
    reg = CollectorRegistry()
    metrics = [
        Counter("portal_http_requests", "", ["route", "method", "status"], registry=reg),
        Histogram("portal_http_request_duration_seconds", "", ["route", "method"], registry=reg),
        Gauge("portal_http_in_flight", "", registry=reg),
        Counter("portal_logins", "", ["result"], registry=reg),
        Counter("portal_applications", "", ["service_category", "status"], registry=reg),
        Counter("portal_payments", "", ["status"], registry=reg),
        Counter("portal_payment_amount_roubles", "", registry=reg),
        Gauge("portal_store_size", "", ["store"], registry=reg),
        Counter("portal_store_evictions", "", ["store"], registry=reg),
        Counter("portal_faults_injected", "", ["route", "kind"], registry=reg),
        Counter("portal_load_shed", "", registry=reg),
        Gauge("portal_capacity_queue_depth", "", ["service"], registry=reg),
    ]
    return reg, metrics


def _loadgen_registry() -> tuple[CollectorRegistry, list[object]]:
    reg = CollectorRegistry()
    metrics = [
        Counter("loadgen_requests", "", ["name", "method"], registry=reg),
        Counter("loadgen_failures", "", ["name", "method", "reason"], registry=reg),
        Histogram(
            "loadgen_response_time_seconds",
            "",
            ["name", "method", "route"],
            buckets=LOADGEN_BUCKETS,
            registry=reg,
        ),
        Histogram(
            "loadgen_corrected_response_time_seconds",
            "",
            ["name", "method", "route"],
            buckets=LOADGEN_BUCKETS,
            registry=reg,
        ),
        Gauge("loadgen_users", "", registry=reg),
        Gauge("loadgen_workers", "", registry=reg),
        Gauge("loadgen_target_users", "", registry=reg),
        Gauge("loadgen_target_rps", "", registry=reg),
        Counter("loadgen_starts", "", registry=reg),
        Counter("loadgen_target_starts", "", registry=reg),
        Counter("loadgen_dropped_starts", "", registry=reg),
        Gauge("loadgen_worker_cpu_percent", "", ["worker"], registry=reg),
        Gauge("loadgen_schedule_lag_seconds", "", registry=reg),
        Gauge("loadgen_capacity_max_rps", "", registry=reg),
        Gauge("loadgen_capacity_slo_rps", "", registry=reg),
    ]
    return reg, metrics


def _traffic(portal: list, loadgen: list, rng: random.Random) -> None:  # type: ignore[type-arg]
    (requests, duration, in_flight, logins, apps, payments, amount, size, evictions, faults, shed,
     queue) = portal  # fmt: skip
    (lg_requests, lg_failures, lg_time, lg_corrected, users, workers, target_users, target,
     starts, target_starts, dropped, cpu, lag, cap_max, cap_slo) = loadgen  # fmt: skip
    for (route, method), (name, lg_method) in zip(ROUTES, NAMES, strict=True):
        server_s = rng.lognormvariate(-3.5, 1.0)
        status = rng.choices(["200", "422", "500", "503"], weights=[95, 3, 1, 1])[0]
        requests.labels(route, method, status).inc()
        duration.labels(route, method).observe(server_s)
        lg_requests.labels(name, lg_method).inc()
        client_s = server_s + rng.uniform(0.0005, 0.003)
        lg_time.labels(name, lg_method, route).observe(client_s)
        lg_corrected.labels(name, lg_method, route).observe(client_s + rng.uniform(0, 0.01))
        if status.startswith("5"):
            lg_failures.labels(name, lg_method, f"HTTPError({status})").inc()
        faults.labels(route, "latency").inc(rng.random() < 0.05)
    in_flight.set(rng.randint(1, 40))
    logins.labels(rng.choice(["success", "bad_credentials", "mfa_required"])).inc()
    apps.labels(rng.choice(["passport", "tax"]), rng.choice(["submitted", "approved"])).inc()
    payments.labels(rng.choice(["succeeded", "failed"])).inc()
    amount.inc(rng.randint(100, 5000))
    for store in ("payments", "idempotency_keys"):
        size.labels(store).set(rng.randint(100, 200))
        evictions.labels(store).inc(rng.randint(0, 2))
    shed.inc(rng.random() < 0.1)
    for service in ("passport", "tax"):
        queue.labels(service).set(rng.randint(0, 5))
    users.set(500)
    target_users.set(500)
    workers.set(2)
    target.set(120.0)
    starts.inc(rng.randint(5, 7))
    target_starts.inc(6)
    dropped.inc(rng.random() < 0.1)
    for worker in ("w1", "w2"):
        cpu.labels(worker).set(rng.uniform(20, 60))
    lag.set(rng.uniform(0.001, 0.01))
    cap_max.set(1800.0)
    cap_slo.set(1500.0)


@pytest.fixture
def exporters() -> Iterator[dict[str, Exporter]]:
    portal_reg, portal = _portal_registry()
    loadgen_reg, loadgen = _loadgen_registry()
    rng = random.Random(20240501)
    _traffic(portal, loadgen, rng)
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(TICK_S):
            _traffic(portal, loadgen, rng)

    servers = [
        start_http_server(0, addr="127.0.0.1", registry=reg) for reg in (portal_reg, loadgen_reg)
    ]
    thread = threading.Thread(target=run, name="fake-traffic", daemon=True)
    thread.start()
    try:
        yield {
            MOCK_JOB: Exporter(portal_reg, f"127.0.0.1:{servers[0][0].server_port}"),
            LOADGEN_JOB: Exporter(loadgen_reg, f"127.0.0.1:{servers[1][0].server_port}"),
        }
    finally:
        stop.set()
        thread.join(timeout=5)
        for httpd, server_thread in servers:
            httpd.shutdown()
            httpd.server_close()
            server_thread.join(timeout=5)


@pytest.mark.timeout(90)
def test_every_rule_and_panel_query_returns_data(
    exporters: dict[str, Exporter], tmp_path: Path
) -> None:
    config = PrometheusConfig(
        targets={job: [e.address] for job, e in exporters.items()}, scrape_interval_s=1.0
    )
    with PrometheusServer(config) as prom:
        assert prom.url.startswith("http://127.0.0.1:")
        prom.wait_for_targets_up(timeout_s=20)
        # Recording rules run every second; rates need two scrapes of each job, and rules
        # chained on them one more evaluation. The two jobs are scraped at different offsets,
        # so one job's series can exist a scrape before the other's: poll the whole set until
        # it is complete, and report the last evaluation if it never is.
        deadline = time.monotonic() + 30
        report = evaluate_all(prom)
        while report.failures and time.monotonic() < deadline:
            time.sleep(0.5)
            report = evaluate_all(prom)
        assert not report.failures, report.describe()
        assert len(report.evaluations) > 100

        rules = prom.rules()
        assert {r.name for r in rules} == {q.name for q in rule_queries()}
        unhealthy = [(r.name, r.last_error) for r in rules if r.health != "ok"]
        assert unhealthy == []

        # The check can fail: a misspelt metric in one panel is reported, and only that one.
        for name in DASHBOARDS:
            text = (GRAFANA_DIR / name).read_text()
            if name == "campaign.json":
                text = text.replace("sum(loadgen_workers{", "sum(loadgen_workerz{")
            (tmp_path / name).write_text(text)
        broken = evaluate_all(prom, grafana_dir=tmp_path)
        assert [f.source for f in broken.failures] == ["campaign.json panel 3 'Workers' A"]


@pytest.mark.timeout(60)
def test_targets_can_change_while_running(exporters: dict[str, Exporter]) -> None:
    config = PrometheusConfig(
        targets={MOCK_JOB: [exporters[MOCK_JOB].address]}, scrape_interval_s=1.0
    )
    with PrometheusServer(config) as prom:
        prom.wait_for_targets_up(timeout_s=20)
        assert prom.query(f'up{{job="{LOADGEN_JOB}"}}') == []
        prom.set_targets(LOADGEN_JOB, [exporters[LOADGEN_JOB].address])
        prom.wait_for_targets_up(timeout_s=20, jobs=[MOCK_JOB, LOADGEN_JOB])
        samples = prom.wait_for_data("sum(loadgen_users)", timeout_s=20)
        assert [s.value for s in samples] == [500.0]


@pytest.mark.timeout(30)
def test_stop_removes_the_work_directory(exporters: dict[str, Exporter]) -> None:
    prom = PrometheusServer(PrometheusConfig(targets={}, scrape_interval_s=1.0)).start()
    work_dir = prom.work_dir
    assert (work_dir / "prometheus.yml").read_text().count("scrape_interval: 1000ms") == 1
    assert (work_dir / "rules" / "slo.yml").is_file()
    prom.stop()
    assert not work_dir.exists()


def test_missing_binary_is_a_start_error() -> None:
    config = PrometheusConfig(targets={}, binary="prometheus-does-not-exist")
    with pytest.raises(PrometheusStartError, match="not found on PATH"):
        PrometheusServer(config).start()


def test_unknown_job_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scrape jobs"):
        PrometheusServer(PrometheusConfig(targets={"nginx": ["127.0.0.1:1"]})).start()


def test_render_config_sets_intervals_and_caps_the_timeout() -> None:
    template = "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  evaluation_interval: 2s\n"
    rendered = render_config(template, scrape_interval_s=0.5, evaluation_interval_s=1.0)
    assert rendered == (
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n"
        "  evaluation_interval: 1000ms\n"
    )
    with pytest.raises(ValueError, match="exactly once"):
        render_config("global:\n  scrape_interval: 2s\n", scrape_interval_s=1.0)
