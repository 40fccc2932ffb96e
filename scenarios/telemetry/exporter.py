"""Prometheus exposition of the load generator's own metrics (docs/metrics.md).

:class:`LoadgenCollector` is a custom collector: on every scrape it reads the master's
:class:`~scenarios.telemetry.aggregate.RunAggregator` (the merged HDR histograms of every
worker) and yields exact counters and a real histogram from them, so nothing is observed
twice and ``/metrics`` always agrees with ``summary.json``. Series (names are a contract
with ``dashboards/``; do not rename):

- ``loadgen_requests_total{name,method}``, ``loadgen_failures_total{name,method,reason}``,
  ``loadgen_response_time_seconds{name,method,route}`` (histogram, :data:`BUCKETS_S`): HTTP
  requests only, so ``sum(rate(...))`` is the request rate; ``route`` is the API route
  template the name calls (:func:`scenarios.routes.route_of`; empty when it names none), the
  ``route`` of the portal's own ``portal_http_request_duration_seconds``;
- ``loadgen_journeys_total{name,kind}``, ``loadgen_journey_failures_total{name,kind,reason}``,
  ``loadgen_journey_duration_seconds{name,kind}``: ``JOURNEY``/``FUNNEL`` (and other
  non-HTTP) events;
- ``loadgen_corrected_response_time_seconds{name,method,route}``: the open model's HTTP
  response times corrected for coordinated omission (``GET+CO`` events; the journeys' twins
  stay in ``summary.json``);
- gauges ``loadgen_users``, ``loadgen_target_users``, ``loadgen_workers``,
  ``loadgen_target_rps`` (visits per second, not requests: see :data:`TARGET_RPS_HELP`),
  ``loadgen_worker_cpu_percent{worker}``, ``loadgen_schedule_lag_seconds``,
  ``loadgen_reported_until_timestamp_seconds``; counters ``loadgen_starts_total`` (the
  achieved side of ``loadgen_target_rps``), ``loadgen_target_starts_total`` (its integral:
  the visits asked for), ``loadgen_dropped_starts_total``,
  ``loadgen_late_starts_total``.

:func:`serve` runs it on gevent's WSGI server (Locust processes are gevent processes;
prometheus_client's ``start_http_server`` would start a real thread, which gevent's
monkey-patching turns into a greenlet anyway) with the collector in its own
``CollectorRegistry``, never the global one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from scenarios.routes import route_of
from scenarios.telemetry import hdr
from scenarios.telemetry.recorder import CORRECTED_SUFFIX, is_corrected_http, section_of

if TYPE_CHECKING:
    from scenarios.telemetry.aggregate import RunAggregator

__all__ = [
    "BUCKETS_S",
    "LIVE_PATH",
    "TARGET_RPS_HELP",
    "LiveGauges",
    "LoadgenCollector",
    "MetricsServer",
    "live_totals",
    "serve",
]

#: Path of the compact JSON the harness's live view and capacity search read (:func:`live_totals`).
LIVE_PATH = "/live"


def _buckets() -> tuple[float, ...]:
    fine_ms = [float(ms) for ms in range(1, 101)]
    coarse_ms = [125.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0]
    coarse_s = [1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]
    return tuple([ms / 1000.0 for ms in fine_ms + coarse_ms] + coarse_s)


#: Upper bounds (seconds) of the response-time histograms: 1 ms steps to 100 ms (p99 at 1 ms
#: resolution where the portal's SLOs live), then coarser to 30 s.
BUCKETS_S: tuple[float, ...] = _buckets()
_BOUNDS_US = [round(b * 1_000_000) for b in BUCKETS_S]
_LE = [floatToGoString(b) for b in BUCKETS_S]

#: What ``loadgen_target_rps`` counts. A visit makes several requests (about 8 on the default
#: mix), so it is compared with the rate of ``loadgen_starts_total``, never with requests/s.
TARGET_RPS_HELP = (
    "Arrival rate the open model aims at now, in visits (journey starts) per second over all "
    "workers: one request each for the capacity probe, several for the journeys; compare it "
    "with rate(loadgen_starts_total), not with the request rate. 0 in the closed model, whose "
    "target is loadgen_target_users."
)


@dataclass(frozen=True, kw_only=True)
class LiveGauges:
    """What the runner knows right now, as opposed to what workers have reported."""

    users: int
    workers: int
    target_users: int = 0


class LoadgenCollector(Collector):
    """Yields the ``loadgen_*`` families from an aggregator; see the module docstring.

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> from scenarios.telemetry.aggregate import RunAggregator
    >>> agg = RunAggregator(interval_s=2.0, mode="local")
    >>> registry = CollectorRegistry()
    >>> registry.register(LoadgenCollector(lambda: agg, lambda: LiveGauges(users=0, workers=1)))
    >>> b"loadgen_workers 1.0" in generate_latest(registry)
    True
    """

    def __init__(
        self,
        aggregator: Callable[[], RunAggregator],
        live: Callable[[], LiveGauges],
    ) -> None:
        self._aggregator = aggregator
        self._live = live

    def describe(self) -> list[Metric]:
        return []  # collected dynamically; registering must not trigger a collection

    def collect(self) -> Iterator[Metric]:
        agg = self._aggregator()
        live = self._live()
        yield from self._latency_families(
            agg,
            "requests",
            ("name", "method"),
            ("loadgen_requests", "HTTP requests made, failed ones included."),
            ("loadgen_failures", "HTTP requests that failed, by reason."),
            (
                "loadgen_response_time_seconds",
                "Response time of HTTP requests (service time); route: the API route template.",
            ),
            with_route=True,
        )
        yield from self._latency_families(
            agg,
            "journeys",
            ("name", "kind"),
            ("loadgen_journeys", "Journey and funnel-step events (JOURNEY, FUNNEL, ...)."),
            ("loadgen_journey_failures", "Journeys that stopped early, by reason."),
            ("loadgen_journey_duration_seconds", "Journey duration, or time to a funnel step."),
        )
        corrected = HistogramMetricFamily(
            "loadgen_corrected_response_time_seconds",
            "Open-model response time plus the start's lag and the wait for a connection "
            "(coordinated omission corrected); route: the API route template.",
            labels=("name", "method", "route"),
        )
        for name, request_type in agg.section_keys("corrected"):
            if not is_corrected_http(request_type):
                continue
            histogram = agg.histograms[(name, request_type)]
            method = request_type.removesuffix(CORRECTED_SUFFIX)
            corrected.add_metric([name, method, route_of(name) or ""], *_buckets_of(histogram))
        yield corrected

        yield GaugeMetricFamily(
            "loadgen_reported_until_timestamp_seconds",
            "Unix time at which the latest merged worker report ends (0 before the first).",
            value=agg.reported_to_s,
        )
        yield GaugeMetricFamily("loadgen_users", "Users running now.", value=live.users)
        yield GaugeMetricFamily(
            "loadgen_target_users",
            "Users the run asks for now (--users, or the load shape's current step).",
            value=live.target_users,
        )
        yield GaugeMetricFamily(
            "loadgen_workers", "Load-generating processes connected now.", value=live.workers
        )
        open_model = agg.open_model() or {}
        yield GaugeMetricFamily(
            "loadgen_target_rps", TARGET_RPS_HELP, value=open_model.get("target_rps", 0.0)
        )
        yield CounterMetricFamily(
            "loadgen_starts",
            "Open-model visits started, on time or late (dropped ones are not), over all "
            "workers: the achieved side of loadgen_target_rps.",
            value=open_model.get("started", 0.0),
        )
        yield CounterMetricFamily(
            "loadgen_target_starts",
            "Open-model visits the target rate asked for so far (loadgen_target_rps integrated "
            "over time), over all workers: rate() of it is the target of rate(loadgen_starts).",
            value=open_model.get("target_starts", 0.0),
        )
        yield CounterMetricFamily(
            "loadgen_dropped_starts",
            "Open-model journey starts dropped because no user was free in time.",
            value=open_model.get("dropped", 0.0),
        )
        yield CounterMetricFamily(
            "loadgen_late_starts",
            "Open-model journey starts that began later than scheduled.",
            value=open_model.get("late", 0.0),
        )
        yield GaugeMetricFamily(
            "loadgen_schedule_lag_seconds",
            "Worst current lag of any worker's event loop or open-model schedule.",
            value=agg.schedule_lag_s(),
        )
        cpu = GaugeMetricFamily(
            "loadgen_worker_cpu_percent",
            "CPU use of each load-generating process over its last report interval.",
            labels=("worker",),
        )
        for worker in sorted(agg.workers.values(), key=lambda w: w.label):
            if worker.state == "ok":
                cpu.add_metric([worker.label], worker.cpu_last)
        yield cpu

    @staticmethod
    def _latency_families(
        agg: RunAggregator,
        section: str,
        labels: tuple[str, str],
        counter: tuple[str, str],
        failures: tuple[str, str],
        histogram: tuple[str, str],
        *,
        with_route: bool = False,
    ) -> Iterator[Metric]:
        counts = CounterMetricFamily(*counter, labels=labels)
        failed = CounterMetricFamily(*failures, labels=(*labels, "reason"))
        latency = HistogramMetricFamily(
            *histogram, labels=(*labels, "route") if with_route else labels
        )
        for key in agg.section_keys(section):
            h = agg.histograms[key]
            counts.add_metric(list(key), h.get_total_count())
            for reason, count in agg.failures_of(key).items():
                failed.add_metric([*key, reason], count)
            route = [route_of(key[0]) or ""] if with_route else []
            latency.add_metric([*key, *route], *_buckets_of(h))
        yield counts
        yield failed
        yield latency


def live_totals(agg: RunAggregator, live: LiveGauges) -> dict[str, Any]:
    """The figures of the live view, summed over request names, as the ``loadgen_*`` series
    would sum them (``sum(loadgen_requests_total)``, the buckets of every HTTP name added).

    One merged histogram per section instead of every bucket of every name: the harness reads
    this every couple of seconds, and the full exposition cost the master its rendering and
    the harness a text parser.

    >>> from scenarios.telemetry.aggregate import RunAggregator
    >>> agg = RunAggregator(interval_s=2.0, mode="local")
    >>> totals = live_totals(agg, LiveGauges(users=3, workers=1))
    >>> totals["users"], totals["requests"], totals["buckets"][-1]
    (3, 0, ['+Inf', 0])
    """
    failures = 0
    for (_name, request_type, _reason), count in agg.failures.items():
        if section_of(request_type) == "requests":
            failures += count
    requests = agg.total_histogram("requests")
    corrected = agg.total_histogram("corrected")
    open_model = agg.open_model() or {}
    return {
        "requests": requests.get_total_count(),
        "failures": failures,
        "latency_sum_s": hdr.sum_us(requests) / 1_000_000,
        "buckets": _cumulative(requests),
        "corrected_buckets": _cumulative(corrected) if corrected.get_total_count() else [],
        "users": live.users,
        "workers": live.workers,
        "target_rps": open_model.get("target_rps", 0.0),
        "dropped": open_model.get("dropped", 0.0),
        "late": open_model.get("late", 0.0),
        "reported_s": agg.reported_to_s,
        "worker_cpu": {w.label: w.cpu_last for w in agg.workers.values() if w.state == "ok"},
    }


def _cumulative(histogram: Any) -> list[list[Any]]:
    cumulative = hdr.counts_at_or_below(histogram, _BOUNDS_US)
    rows: list[list[Any]] = [[le, c] for le, c in zip(_LE, cumulative, strict=True)]
    rows.append(["+Inf", histogram.get_total_count()])
    return rows


def _buckets_of(histogram: Any) -> tuple[list[tuple[str, float]], float]:
    cumulative = hdr.counts_at_or_below(histogram, _BOUNDS_US)
    buckets = [(le, float(c)) for le, c in zip(_LE, cumulative, strict=True)]
    buckets.append(("+Inf", float(histogram.get_total_count())))
    return buckets, hdr.sum_us(histogram) / 1_000_000


class MetricsServer:
    """A running ``/metrics`` server (gevent WSGI); ``port`` is the bound port."""

    def __init__(self, server: Any, registry: CollectorRegistry) -> None:
        self._server = server
        self.registry = registry
        self.scrapes = 0

    @property
    def host(self) -> str:
        return str(self._server.server_host)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.stop(timeout=1)


def serve(
    collector: Collector,
    *,
    host: str,
    port: int,
    live: Callable[[], dict[str, Any]] | None = None,
) -> MetricsServer:
    """Serve ``collector`` on ``http://host:port/metrics`` (port 0: any free port), and
    ``live()`` as JSON on :data:`LIVE_PATH` when given."""
    from gevent.pywsgi import WSGIServer  # only Locust (gevent) processes serve

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    app = make_wsgi_app(registry)
    holder: list[MetricsServer] = []

    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path == LIVE_PATH and live is not None:
            body = orjson.dumps(live())
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        body = app(environ, start_response)
        if path in ("/", "/metrics"):
            holder[0].scrapes += 1
        return body

    server = WSGIServer((host, port), counted, log=None, error_log=None)
    server.start()
    metrics = MetricsServer(server, registry)
    holder.append(metrics)
    return metrics
