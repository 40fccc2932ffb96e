"""The master's view of a run: every worker's reports merged, plus the run's health.

:class:`RunAggregator` merges the interval reports of :mod:`scenarios.telemetry.recorder`
into cumulative per-key histograms (``HdrHistogram.add``), failure counts, and a time series
with one row per ``interval_s`` (rows are aligned to Unix time, and workers cut their
reports on the same boundaries, so each report lands in one row). It also keeps per-worker
health (CPU, event-loop lag, last report), open-model counters, and the run's state:
started, stopped, interrupted, degraded.

Results files (:mod:`scenarios.telemetry.results`) and the Prometheus collector
(:mod:`scenarios.telemetry.exporter`) both read this one object, so the files and the
live counters can never disagree.

Pure: no Locust, no gevent. Time is always passed in (Unix seconds), never read here.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from scenarios.telemetry import hdr
from scenarios.telemetry.recorder import (
    MAX_KEYS,
    MAX_REASONS_PER_KEY,
    OTHER_NAME,
    OTHER_REASON,
    REPORT_VERSION,
    is_corrected_http,
    section_of,
)

__all__ = [
    "CLOCK_TOLERANCE_S",
    "CPU_HIGH_PERCENT",
    "CPU_HIGH_REPORTS",
    "OPEN_MODEL_MAXIMA",
    "SEAL_AFTER_INTERVALS",
    "DegradedEvent",
    "IntervalRow",
    "RunAggregator",
    "WorkerHealth",
]

logger = logging.getLogger(__name__)

# Locust warns above 90 % too: past it a generator measures its own queueing, not the target.
CPU_HIGH_PERCENT = 90.0
#: Consecutive reports above CPU_HIGH_PERCENT that make a process "busy": one report (2 s) of
#: a worker spawning its users is not saturation; two in a row are.
CPU_HIGH_REPORTS = 2
# Reports reach the master within one interval; rows older than this many intervals are
# sealed (their percentiles fixed and their histogram freed) so a long run stays small.
SEAL_AFTER_INTERVALS = 4
#: Clocks closer to the master's than this are taken as the same clock: the transit of a
#: report, and the skew of hosts kept in sync (NTP keeps them within milliseconds), are far
#: below one interval; a report is placed by its middle, so this much moves it to no other row.
CLOCK_TOLERANCE_S = 0.25
#: Open-model fields merged over workers by their maximum; all others are summed.
OPEN_MODEL_MAXIMA = frozenset(("schedule_lag_s", "schedule_lag_mean_s", "lag_ms_max"))


@dataclass
class WorkerHealth:
    """What the master knows about one load-generating process."""

    id: str
    index: int | None = None
    first_report_s: float | None = None
    last_report_s: float | None = None
    reported_to_s: float | None = None  # Unix time its latest merged interval ends at
    reports: int = 0
    requests: int = 0
    users: int = 0
    cpu_samples: int = 0
    cpu_sum: float = 0.0
    cpu_max: float = 0.0
    cpu_last: float = 0.0
    cpu_high_streak: int = 0  # consecutive reports above CPU_HIGH_PERCENT, now
    cpu_high_streak_max: int = 0
    loop_lag_max_s: float = 0.0
    loop_lag_last_s: float = 0.0
    open_model: dict[str, float] = field(default_factory=dict)
    state: str = "ok"
    clock_offset_s: float | None = None  # master's clock minus this worker's (see add_report)

    @property
    def cpu_high(self) -> bool:
        return self.cpu_high_streak_max >= CPU_HIGH_REPORTS

    @property
    def cpu_mean(self) -> float:
        return self.cpu_sum / self.cpu_samples if self.cpu_samples else 0.0

    @property
    def label(self) -> str:
        """Short, bounded label for dashboards: the Locust worker index when known."""
        return str(self.index) if self.index is not None and self.index >= 0 else self.id


@dataclass(frozen=True, kw_only=True)
class DegradedEvent:
    worker: str
    index: int | None
    at_s: float
    reason: str


@dataclass
class IntervalRow:
    """One row of the time series: HTTP requests whose report fell in ``[start_s, +interval)``."""

    start_s: float
    interval_s: float
    covered_from_s: float | None = None
    covered_to_s: float | None = None
    requests: int = 0
    failures: int = 0
    users: int | None = None
    workers: int | None = None
    histogram: HdrHistogram | None = None
    sealed: tuple[float, float, float] | None = None
    corrected: HdrHistogram | None = None  # the HTTP requests' +CO twins (open model)
    corrected_sealed: tuple[float, float, float] | None = None

    @property
    def duration_s(self) -> float:
        if self.covered_from_s is None or self.covered_to_s is None:
            return self.interval_s
        return max(self.covered_to_s - self.covered_from_s, 1e-3)

    def percentiles_ms(self) -> tuple[float, float, float]:
        """(p50, p95, p99) of the row's HTTP requests, in milliseconds."""
        if self.sealed is not None:
            return self.sealed
        return _percentiles_ms(self.histogram)

    def corrected_percentiles_ms(self) -> tuple[float, float, float] | None:
        """(p50, p95, p99) of the row's corrected twins, ms; None without any (closed model)."""
        if self.corrected_sealed is not None:
            return self.corrected_sealed
        return None if self.corrected is None else _percentiles_ms(self.corrected)

    def seal(self) -> None:
        if self.sealed is None:
            self.sealed = self.percentiles_ms()
            self.histogram = None
        if self.corrected is not None and self.corrected_sealed is None:
            self.corrected_sealed = _percentiles_ms(self.corrected)
            self.corrected = None


def _percentiles_ms(histogram: HdrHistogram | None) -> tuple[float, float, float]:
    if histogram is None:
        return (0.0, 0.0, 0.0)
    p50, p95, p99 = hdr.percentile_us(histogram, [50.0, 95.0, 99.0])
    return (p50 / 1000.0, p95 / 1000.0, p99 / 1000.0)


class RunAggregator:
    """Merged results of one run; see the module docstring.

    >>> from scenarios.telemetry.recorder import IntervalRecorder
    >>> agg = RunAggregator(interval_s=2.0, mode="local")
    >>> agg.start(100.0)
    >>> rec = IntervalRecorder()
    >>> rec.record("catalog", "GET", 10.0, None)
    >>> agg.add_report("local", rec.take(start_s=100.0, end_s=102.0), received_s=102.0)
    >>> agg.histograms[("catalog", "GET")].get_total_count()
    1
    """

    def __init__(self, *, interval_s: float, mode: str) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        if mode not in ("local", "distributed"):
            raise ValueError(f"mode is 'local' or 'distributed', got {mode!r}")
        self.interval_s = interval_s
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        self.start_s: float | None = None
        self.stop_s: float | None = None
        self.last_update_s: float | None = None
        self.reported_to_s = 0.0
        """Unix time at which the latest merged report's interval ended: the counters hold the
        requests made up to about then (rates computed against it do not alias with the
        reports' period, as rates against the time of reading do)."""
        self.interrupted = False
        self.histograms: dict[tuple[str, str], HdrHistogram] = {}
        self.failures: Counter[tuple[str, str, str]] = Counter()
        self._reasons: dict[tuple[str, str], set[str]] = {}
        self.rows: dict[int, IntervalRow] = {}
        self.workers: dict[str, WorkerHealth] = {}
        self.degraded: list[DegradedEvent] = []
        self.users_max = 0
        self.users_last = 0
        self.workers_max = 0
        self.workers_last = 0
        self.master_cpu_max = 0.0
        self.rejected_reports = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, now_s: float) -> None:
        """A test starts: forget any previous test (a web UI restart) and note the time."""
        self._reset()
        self.start_s = now_s
        self.last_update_s = now_s

    def stop(self, now_s: float) -> None:
        """The test stopped of its own accord (run time, shape, web UI, last worker gone)."""
        if self.stop_s is None:
            self.stop_s = now_s

    def interrupt(self) -> None:
        """The process is shutting down before the test stopped (a signal, Ctrl-C)."""
        if self.stop_s is None:
            self.interrupted = True

    @property
    def started(self) -> bool:
        return self.start_s is not None

    @property
    def ended_normally(self) -> bool:
        return self.stop_s is not None and not self.interrupted

    def status(self) -> str:
        """``partial`` unless the test ended normally; then ``degraded`` or ``complete``."""
        if not self.ended_normally:
            return "partial"
        return "degraded" if self.degraded else "complete"

    # -- reports ------------------------------------------------------------------------
    def _row(self, at_s: float) -> IntervalRow:
        k = math.floor(at_s / self.interval_s)
        row = self.rows.get(k)
        if row is None:
            row = self.rows[k] = IntervalRow(
                start_s=k * self.interval_s, interval_s=self.interval_s
            )
        return row

    def _key(self, name: str, request_type: str) -> tuple[str, str]:
        key = (name, request_type)
        if key in self.histograms or len(self.histograms) < MAX_KEYS:
            return key
        return (OTHER_NAME, request_type)

    def worker(self, worker_id: str) -> WorkerHealth:
        health = self.workers.get(worker_id)
        if health is None:
            health = self.workers[worker_id] = WorkerHealth(id=worker_id)
        return health

    def add_report(self, worker_id: str, report: dict[str, Any], *, received_s: float) -> None:
        """Merge one worker's interval report (see :meth:`IntervalRecorder.take`)."""
        if not isinstance(report, dict) or report.get("v") != REPORT_VERSION:
            self.rejected_reports += 1
            logger.warning("ignoring a telemetry report of unknown version from %s", worker_id)
            return
        health = self.worker(worker_id)
        start_s, end_s = self._on_master_clock(
            health, float(report["start_s"]), float(report["end_s"]), received_s
        )
        self.reported_to_s = max(self.reported_to_s, end_s)
        row = self._row((start_s + end_s) / 2)
        row.covered_from_s = min(start_s, row.covered_from_s or start_s)
        row.covered_to_s = max(end_s, row.covered_to_s or end_s)
        health.reports += 1
        health.first_report_s = health.first_report_s or received_s
        health.last_report_s = received_s
        health.reported_to_s = max(health.reported_to_s or end_s, end_s)
        if isinstance(report.get("index"), int):
            health.index = report["index"]
        if "users" in report:
            health.users = int(report["users"])
        if report.get("cpu_percent") is not None:
            cpu = float(report["cpu_percent"])
            health.cpu_samples += 1
            health.cpu_sum += cpu
            health.cpu_max = max(health.cpu_max, cpu)
            health.cpu_last = cpu
            health.cpu_high_streak = health.cpu_high_streak + 1 if cpu > CPU_HIGH_PERCENT else 0
            health.cpu_high_streak_max = max(health.cpu_high_streak_max, health.cpu_high_streak)
        if report.get("loop_lag_s") is not None:
            health.loop_lag_last_s = float(report["loop_lag_s"])
            health.loop_lag_max_s = max(health.loop_lag_max_s, health.loop_lag_last_s)
        if isinstance(report.get("open_model"), dict):
            health.open_model = {
                str(k): float(v)
                for k, v in report["open_model"].items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }

        for name, request_type, encoded in report["histograms"]:
            histogram = hdr.decode(encoded)
            key = self._key(str(name), str(request_type))
            total = self.histograms.get(key)
            if total is None:
                total = self.histograms[key] = hdr.new_histogram()
            total.add(histogram)
            if section_of(key[1]) == "requests":
                count = int(histogram.get_total_count())
                row.requests += count
                health.requests += count
                if row.sealed is None:
                    if row.histogram is None:
                        row.histogram = hdr.new_histogram()
                    row.histogram.add(histogram)
            elif is_corrected_http(key[1]) and row.corrected_sealed is None:
                if row.corrected is None:
                    row.corrected = hdr.new_histogram()
                row.corrected.add(histogram)
        for name, request_type, reason, count in report["failures"]:
            key = self._key(str(name), str(request_type))
            reasons = self._reasons.setdefault(key, set())
            reason = str(reason)
            if reason not in reasons:
                if len(reasons) >= MAX_REASONS_PER_KEY:
                    reason = OTHER_REASON
                reasons.add(reason)
            self.failures[(*key, reason)] += int(count)
            if section_of(key[1]) == "requests":
                row.failures += int(count)
        self.last_update_s = max(self.last_update_s or received_s, received_s)

    # -- samples taken on the master --------------------------------------------------------
    def sample(
        self, now_s: float, *, users: int, workers: int, master_cpu_percent: float | None = None
    ) -> None:
        """Users and workers now; also seals rows that no report can reach any more."""
        row = self._row(now_s)
        row.users = users
        row.workers = workers
        self.users_last = users
        self.users_max = max(self.users_max, users)
        self.workers_last = workers
        self.workers_max = max(self.workers_max, workers)
        if master_cpu_percent is not None:
            self.master_cpu_max = max(self.master_cpu_max, master_cpu_percent)
        horizon = math.floor(now_s / self.interval_s) - SEAL_AFTER_INTERVALS
        for k, old in self.rows.items():
            if k < horizon:
                old.seal()

    @staticmethod
    def _on_master_clock(
        health: WorkerHealth, start_s: float, end_s: float, received_s: float
    ) -> tuple[float, float]:
        """A report's interval on the master's clock: a worker on another host has a clock of
        its own. A report leaves at its end, so ``received - end`` is the clock offset plus
        the transit; its least value over the run is the best estimate of the offset (as NTP
        takes the fastest exchange). Only an offset beyond :data:`CLOCK_TOLERANCE_S` moves a
        report: within it, the worker's own boundaries are the master's."""
        offset = received_s - end_s
        if health.clock_offset_s is None or offset < health.clock_offset_s:
            health.clock_offset_s = offset
        shift = health.clock_offset_s
        if abs(shift) <= CLOCK_TOLERANCE_S:
            return start_s, end_s
        return start_s + shift, end_s + shift

    def mark_degraded(self, worker_id: str, *, at_s: float, reason: str) -> bool:
        """Record that a worker stopped reporting; ``False`` if it was already recorded."""
        if any(e.worker == worker_id for e in self.degraded):
            return False
        health = self.worker(worker_id)
        health.state = reason
        self.degraded.append(
            DegradedEvent(worker=worker_id, index=health.index, at_s=at_s, reason=reason)
        )
        return True

    # -- derived --------------------------------------------------------------------------
    def covered_to_s(self) -> float | None:
        """Unix time up to which every worker still reporting has its intervals merged (and
        no later than the test's stop): the results hold what was sent before it, and say
        nothing of what came after. None before any report."""
        ends = [
            w.reported_to_s
            for w in self.workers.values()
            if w.state == "ok" and w.reported_to_s is not None
        ]
        if not ends:
            return None
        covered = min(ends)
        return covered if self.stop_s is None else min(covered, self.stop_s)

    def end_s(self) -> float | None:
        return self.stop_s if self.stop_s is not None else self.last_update_s

    def duration_s(self) -> float:
        end = self.end_s()
        if self.start_s is None or end is None:
            return 0.0
        return max(end - self.start_s, 0.0)

    def section_keys(self, section: str) -> list[tuple[str, str]]:
        return sorted(k for k in self.histograms if section_of(k[1]) == section)

    def failures_of(self, key: tuple[str, str]) -> dict[str, int]:
        return {
            reason: count
            for (name, request_type, reason), count in sorted(self.failures.items())
            if (name, request_type) == key
        }

    def total_histogram(self, section: str = "requests") -> HdrHistogram:
        """Every key of a section merged; ``corrected``: the HTTP requests' twins only."""
        total = hdr.new_histogram()
        for key in self.section_keys(section):
            if section != "corrected" or is_corrected_http(key[1]):
                total.add(self.histograms[key])
        return total

    def open_model(self) -> dict[str, float] | None:
        """Counters summed over workers; lags (:data:`OPEN_MODEL_MAXIMA`) the worst worker's."""
        reported = [w.open_model for w in self.workers.values() if w.open_model]
        if not reported:
            return None
        merged: dict[str, float] = {}
        for counters in reported:
            for name, value in counters.items():
                if name in OPEN_MODEL_MAXIMA:
                    merged[name] = max(merged.get(name, 0.0), value)
                else:
                    merged[name] = merged.get(name, 0.0) + value
        return merged

    def schedule_lag_s(self) -> float:
        """The worst current lag: event-loop lag of any worker, or the open model's start lag."""
        lags = [w.loop_lag_last_s for w in self.workers.values() if w.state == "ok"]
        lags.append((self.open_model() or {}).get("schedule_lag_s", 0.0))
        return max(lags)

    def cpu_high(self) -> list[WorkerHealth]:
        """Processes that were above CPU_HIGH_PERCENT for CPU_HIGH_REPORTS reports in a row."""
        return [w for w in self.workers.values() if w.cpu_high]
