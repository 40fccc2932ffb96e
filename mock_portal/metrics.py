"""The mock's Prometheus metrics (docs/metrics.md), on a registry passed in.

With ``--workers N`` every worker writes its values to files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode) and any worker's
``/metrics`` aggregates all of them, so one scrape sees the whole mock.

In one process, the request path's counter and histogram (``portal_http_requests_total``,
``portal_http_request_duration_seconds``) are tallied as plain numbers per (route, method,
status) and added into the library's values whenever the registry is collected (a scrape,
``get_sample_value``), so what is exported is the same, value for value, as if each request
had called ``inc`` and ``observe``. In multiprocess mode the values live in shared files that
other workers read at any time, so every request writes them at once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Server-side latency buckets: 0.5 ms steps where a fast mock lives, then coarser to 10 s.
DURATION_BUCKETS_S = (
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02,
    0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    10.0,
)  # fmt: skip


def _adder(child: Counter | Gauge) -> Callable[[float], None]:
    """``inc`` of a counter or gauge child's value, without the per-call checks of
    ``Counter.inc`` (label values present, amount >= 0) that hold by construction here.
    The value is the library's own (a locked float, or the mmap file of multiprocess mode),
    so what is exported is unchanged; falls back to the public method if it moves."""
    value = getattr(child, "_value", None)
    inc = getattr(value, "inc", None)
    return inc if callable(inc) else child.inc


def _ignore(amount: float) -> None:
    return None


class _Tally:
    """What requests added since the last collection, kept as plain Python numbers."""

    __slots__ = ("durations", "requests")

    def __init__(self) -> None:
        # (route, method, status) -> requests; (route, method) -> [sum, count per bucket]
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[tuple[str, str], list[Any]] = {}


class _Flush(Collector):
    """Registered before every other metric: a collection of the registry first adds the
    tallied requests into the library's values (see the module docstring)."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        self._flush()
        return iter(())


class _Buckets:
    """``Histogram.observe`` of one child: the same values incremented (sum, then the first
    bucket whose bound is >= the amount), found by bisection instead of a linear scan."""

    __slots__ = ("_bounds", "_buckets", "_observe", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._observe = child.observe
        bounds = getattr(child, "_upper_bounds", None)
        buckets = getattr(child, "_buckets", None)
        total = getattr(child, "_sum", None)
        if bounds is None or buckets is None or total is None:  # pragma: no cover - moved
            self._bounds: list[float] = []
            return
        self._bounds = list(bounds)
        self._buckets = [b.inc for b in buckets]
        self._sum = total.inc

    def observe(self, amount: float) -> None:
        if not self._bounds or amount != amount:  # NaN: let the library decide
            self._observe(amount)
            return
        self._sum(amount)
        self._buckets[bisect_left(self._bounds, amount)](1)

    def add(self, total: float, counts: list[int]) -> None:
        """Many observations at once: their sum, and how many fell in each bucket."""
        if not self._bounds:  # pragma: no cover - the library's internals moved
            raise RuntimeError("histogram internals unavailable; cannot add tallied values")
        self._sum(total)
        for inc, n in zip(self._buckets, counts, strict=True):
            if n:
                inc(n)


RUNTIME_LABELS = (
    "loop", "access_log", "aiohttp_c_parser", "multidict_c", "yarl_c", "frozenlist_c",
    "propcache_c",
)  # fmt: skip


def _module_of(obj: object) -> str:
    return str(getattr(obj, "__module__", ""))


def runtime_facts(loop: asyncio.AbstractEventLoop, access_log: bool) -> dict[str, str]:
    """What the process serves with: the event loop's class, whether the access log is on,
    and whether each of aiohttp's speedups is its C extension (``"true"``) or pure Python."""
    import frozenlist
    import multidict
    import propcache.api
    import yarl._quoting
    from aiohttp import http_parser

    c_multidict = sys.modules.get("multidict._multidict")
    facts = {
        "loop": f"{_module_of(type(loop)).split('.')[0]}.{type(loop).__qualname__}",
        "access_log": access_log,
        "aiohttp_c_parser": _module_of(http_parser.HttpRequestParser) == "aiohttp._http_parser",
        "multidict_c": c_multidict is not None
        and multidict.MultiDict is getattr(c_multidict, "MultiDict", None),
        "yarl_c": _module_of(yarl._quoting._Quoter) == "yarl._quoting_c",
        "frozenlist_c": _module_of(frozenlist.FrozenList) == "frozenlist._frozenlist",
        "propcache_c": _module_of(propcache.api.under_cached_property) == "propcache._helpers_c",
    }
    return {k: v if isinstance(v, str) else str(v).lower() for k, v in facts.items()}


# Written by the supervisor of ``--workers N`` into the metrics folder (not a ``.db`` file, so
# the multiprocess collector leaves it alone); read by every worker's /metrics.
RESTARTS_FILE = "worker-restarts"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def write_worker_restarts(metrics_dir: Path, restarts: int) -> None:
    """Record how many workers the supervisor restarted (atomically: a scrape never reads half)."""
    tmp = metrics_dir / f".{RESTARTS_FILE}.tmp"
    tmp.write_text(str(restarts), encoding="ascii")
    os.replace(tmp, metrics_dir / RESTARTS_FILE)


class _WorkerRestarts(Collector):
    """``portal_worker_restarts_total``: the supervisor's count, which no worker can keep (a
    restarted worker is a new process)."""

    def __init__(self, metrics_dir: str) -> None:
        self._path = Path(metrics_dir) / RESTARTS_FILE

    def collect(self) -> Iterator[Metric]:
        try:
            restarts = int(self._path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            return
        yield CounterMetricFamily(
            "portal_worker_restarts",
            "Worker processes the supervisor started again after they died.",
            value=restarts,
        )


class PortalMetrics:
    """Every metric of one mock app, with label children cached for the request path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._tally = _Tally()
        self._bounds = [*DURATION_BUCKETS_S, float("inf")]
        if multiprocess_dir() is None:
            registry.register(_Flush(self.flush))
            self.observe = self._tally_request  # type: ignore[method-assign]
        self.requests = Counter(
            "portal_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "portal_http_request_duration_seconds",
            "Time from request received to response written, by route template and method.",
            ["route", "method"],
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.in_flight = Gauge(
            "portal_http_in_flight",
            "Requests being handled now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.logins = Counter(
            "portal_logins", "Login attempts by result.", ["result"], registry=registry
        )
        self.applications = Counter(
            "portal_applications",
            "Applications submitted, by service category and status.",
            ["service_category", "status"],
            registry=registry,
        )
        self.ratings = Counter("portal_ratings", "Quality ratings received.", registry=registry)
        self.payments = Counter(
            "portal_payments", "Payments by status reached.", ["status"], registry=registry
        )
        self.payment_amount = Counter(
            "portal_payment_amount_roubles",
            "Amount of succeeded payments, in roubles.",
            registry=registry,
        )
        self.idempotent_replays = Counter(
            "portal_idempotent_replays",
            "Payment requests answered from a stored idempotent response.",
            registry=registry,
        )
        self.store_size = Gauge(
            "portal_store_size",
            "Rows held per store.",
            ["store"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.store_evictions = Counter(
            "portal_store_evictions",
            "Rows evicted per store, by age or size.",
            ["store"],
            registry=registry,
        )
        self.store_write_failures = Counter(
            "portal_store_write_failures",
            "Writes the store could not take (disk full, read-only, I/O error), by reason.",
            ["reason"],
            registry=registry,
        )
        self.faults = Counter(
            "portal_faults_injected",
            "Injected faults by route template and kind.",
            ["route", "kind"],
            registry=registry,
        )
        self.connections = Gauge(
            "portal_http_connections",
            "Client connections open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections_closed = Counter(
            "portal_connections_closed",
            "Connections the mock closed: header_timeout (headers too slow), evicted (the "
            "oldest idle one, at the connection cap), refused (at the cap, every one busy).",
            ["reason"],
            registry=registry,
        )
        self.client_disconnects = Counter(
            "portal_client_disconnects",
            "Requests whose client disconnected before they were answered.",
            registry=registry,
        )
        self.load_shed = Counter(
            "portal_load_shed", "Requests answered 503 by load shedding.", registry=registry
        )
        self.queue_depth = Gauge(
            "portal_capacity_queue_depth",
            "Requests waiting for a simulated backend server, by service.",
            ["service"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.capacity_rps = Gauge(
            "portal_capacity_theoretical_rps",
            "Theoretical capacity (servers / mean service time) of a simulated backend.",
            ["service"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.runtime_info = Gauge(
            "portal_runtime_info",
            "The process's runtime: event loop class, access log, and which of aiohttp's "
            "speedups are C extensions; always 1.",
            list(RUNTIME_LABELS),
            registry=registry,
            multiprocess_mode="max",
        )
        self._req_children: dict[tuple[str, str, int], Callable[[float], None]] = {}
        self._dur_children: dict[tuple[str, str], _Buckets] = {}

    def note_runtime(self, loop: asyncio.AbstractEventLoop, *, access_log: bool) -> None:
        """Set ``portal_runtime_info`` of this process (once it serves)."""
        facts = runtime_facts(loop, access_log)
        self.runtime_info.labels(*(facts[k] for k in RUNTIME_LABELS)).set(1)

    def watch_in_flight(self, read: Callable[[], float]) -> Callable[[float], None]:
        """How the middleware reports requests in flight. One process: the gauge reads the
        middleware's own counter at scrape time, so the request path pays nothing.
        Multiprocess mode: a callback cannot cross processes, so each request adds to the
        shared value; the returned function is what the middleware calls with +1 and -1."""
        if multiprocess_dir() is None:
            self.in_flight.set_function(read)
            return _ignore
        return _adder(self.in_flight)

    def _tally_request(self, route: str, method: str, status: int, duration_s: float) -> None:
        """``observe`` of one process: the same figures, tallied until the next collection."""
        requests = self._tally.requests
        key = (route, method, status)
        requests[key] = requests.get(key, 0) + 1
        dkey = (route, method)
        entry = self._tally.durations.get(dkey)
        if entry is None:
            entry = self._tally.durations[dkey] = [0.0, [0] * len(self._bounds)]
        entry[0] += duration_s
        entry[1][bisect_left(self._bounds, duration_s)] += 1

    def flush(self) -> None:
        """Add the tallied requests into the library's values (at every collection)."""
        tally, self._tally = self._tally, _Tally()
        for (route, method, status), n in tally.requests.items():
            key = (route, method, status)
            inc = self._req_children.get(key)
            if inc is None:
                child = self.requests.labels(route, method, str(status))
                inc = self._req_children[key] = _adder(child)
            inc(n)
        for dkey, (total, counts) in tally.durations.items():
            buckets = self._dur_children.get(dkey)
            if buckets is None:
                buckets = self._dur_children[dkey] = _Buckets(self.duration.labels(*dkey))
            buckets.add(total, counts)

    def observe(self, route: str, method: str, status: int, duration_s: float) -> None:
        """Count one answered request and observe its duration (the request path's)."""
        key = (route, method, status)
        inc = self._req_children.get(key)
        if inc is None:
            inc = self._req_children[key] = _adder(self.requests.labels(route, method, str(status)))
        inc(1)
        dkey = (route, method)
        buckets = self._dur_children.get(dkey)
        if buckets is None:
            buckets = self._dur_children[dkey] = _Buckets(self.duration.labels(route, method))
        buckets.observe(duration_s)

    def exposition(self) -> bytes:
        """The text exposition of this mock: of every worker in multiprocess mode."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        registry.register(_WorkerRestarts(path))
        return generate_latest(registry)
