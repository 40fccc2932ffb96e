"""The master's merge of worker reports, time series and run status."""

from __future__ import annotations

import pytest

from scenarios.telemetry import hdr
from scenarios.telemetry.aggregate import SEAL_AFTER_INTERVALS, RunAggregator
from scenarios.telemetry.recorder import IntervalRecorder


def _report(start_s: float, end_s: float, latencies_ms: list[float], **extra: object) -> dict:
    r = IntervalRecorder()
    for ms in latencies_ms:
        r.record("catalog", "GET", ms, "HTTP 503" if ms >= 100 else None)
    r.record("browse", "JOURNEY", 500.0, None)
    return r.take(start_s=start_s, end_s=end_s, **extra)


def test_reports_of_two_workers_merge_into_one_histogram_per_key() -> None:
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(100.0)
    agg.add_report("w1", _report(100.0, 102.0, [10.0, 20.0, 100.0]), received_s=102.0)
    agg.add_report("w2", _report(100.0, 102.0, [30.0, 200.0]), received_s=102.1)
    catalog = agg.histograms[("catalog", "GET")]
    assert catalog.get_total_count() == 5
    assert agg.histograms[("browse", "JOURNEY")].get_total_count() == 2
    assert agg.failures_of(("catalog", "GET")) == {"HTTP 503": 2}
    assert hdr.summarise(catalog).max_ms == pytest.approx(200.0, rel=0.001)
    assert {w.id: w.requests for w in agg.workers.values()} == {"w1": 3, "w2": 2}
    # journeys are kept, but never counted as HTTP requests
    assert agg.total_histogram().get_total_count() == 5
    assert agg.section_keys("journeys") == [("browse", "JOURNEY")]


def test_reports_land_in_the_row_of_their_interval() -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(101.5)
    agg.add_report("local", _report(101.5, 102.0, [5.0]), received_s=102.0)
    agg.add_report("local", _report(102.0, 104.0, [5.0, 6.0, 150.0]), received_s=104.0)
    agg.add_report("local", _report(104.0, 104.5, [7.0]), received_s=104.5)
    rows = [agg.rows[k] for k in sorted(agg.rows)]
    assert [r.start_s for r in rows] == [100.0, 102.0, 104.0]
    assert [r.requests for r in rows] == [1, 3, 1]
    assert [r.failures for r in rows] == [0, 1, 0]
    assert [r.duration_s for r in rows] == pytest.approx([0.5, 2.0, 0.5])
    p50, _p95, p99 = rows[1].percentiles_ms()
    assert p50 == pytest.approx(6.0, rel=0.001)
    assert p99 == pytest.approx(150.0, rel=0.001)


def test_old_rows_are_sealed_and_keep_their_percentiles() -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(0.0)
    agg.add_report("local", _report(0.0, 2.0, [10.0, 20.0, 30.0]), received_s=2.0)
    before = agg.rows[0].percentiles_ms()
    agg.sample(2.0 * (SEAL_AFTER_INTERVALS + 2), users=1, workers=1)
    assert agg.rows[0].histogram is None
    assert agg.rows[0].percentiles_ms() == before
    # a report arriving later for a sealed row still counts
    agg.add_report("local", _report(0.5, 1.0, [40.0]), received_s=20.0)
    assert agg.rows[0].requests == 4
    assert agg.histograms[("catalog", "GET")].get_total_count() == 4


def test_status_follows_how_the_run_ended() -> None:
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(0.0)
    assert agg.status() == "partial"  # running
    agg.stop(10.0)
    assert agg.status() == "complete"
    agg.interrupt()  # quitting after a normal stop is not an interruption
    assert agg.status() == "complete"

    agg.start(20.0)
    agg.interrupt()  # SIGTERM while running
    agg.stop(25.0)
    assert agg.status() == "partial"

    agg.start(30.0)
    assert agg.mark_degraded("w1", at_s=33.0, reason="missing")
    assert not agg.mark_degraded("w1", at_s=34.0, reason="missing")
    agg.stop(40.0)
    assert agg.status() == "degraded"
    assert [(e.worker, e.at_s, e.reason) for e in agg.degraded] == [("w1", 33.0, "missing")]


def test_start_forgets_the_previous_test() -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(0.0)
    agg.add_report("local", _report(0.0, 2.0, [1.0]), received_s=2.0)
    agg.stop(2.0)
    agg.start(10.0)
    assert agg.histograms == {}
    assert agg.rows == {}
    assert agg.status() == "partial"


def test_worker_health_and_open_model_counters_are_merged() -> None:
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(0.0)
    om1 = {"started": 10, "dropped": 1, "late": 2, "lag_ms_max": 40.0, "schedule_lag_s": 0.01}
    om2 = {"started": 5, "dropped": 0, "late": 1, "lag_ms_max": 90.0, "schedule_lag_s": 0.03}
    agg.add_report("w1", _report(0, 2, [1.0], cpu_percent=95.0, open_model=om1), received_s=2)
    agg.add_report("w2", _report(0, 2, [1.0], cpu_percent=40.0, open_model=om2), received_s=2)
    agg.add_report("w2", _report(2, 4, [1.0], cpu_percent=60.0, loop_lag_s=0.2), received_s=4)
    assert agg.open_model() == {
        "started": 15.0,
        "dropped": 1.0,
        "late": 3.0,
        "lag_ms_max": 90.0,
        "schedule_lag_s": 0.03,
    }
    # one report above 90 % is a spawn, not saturation; two in a row are
    assert agg.cpu_high() == []
    agg.add_report("w1", _report(2, 4, [1.0], cpu_percent=97.0), received_s=4)
    assert [w.id for w in agg.cpu_high()] == ["w1"]
    assert agg.workers["w2"].cpu_mean == pytest.approx(50.0)
    assert agg.schedule_lag_s() == pytest.approx(0.2)


def test_reports_of_an_unknown_version_are_counted_and_ignored() -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(0.0)
    report = _report(0.0, 2.0, [1.0])
    report["v"] = 99
    agg.add_report("local", report, received_s=2.0)
    assert agg.rejected_reports == 1
    assert agg.histograms == {}


def test_misuse_is_rejected() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        RunAggregator(interval_s=0, mode="local")
    with pytest.raises(ValueError, match="mode"):
        RunAggregator(interval_s=1, mode="cluster")


def test_a_worker_with_its_own_clock_is_placed_on_the_masters() -> None:
    """A worker on another host whose clock runs 7 s ahead: its reports land in the rows of
    the master's time they were sent in, beside a worker in sync."""
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(100.0)
    for k in range(3):
        start = 100.0 + 2.0 * k
        agg.add_report("in-sync", _report(start, start + 2.0, [1.0]), received_s=start + 2.01)
        ahead = _report(start + 7.0, start + 9.0, [2.0, 3.0])
        agg.add_report("ahead", ahead, received_s=start + 2.02)
    assert sorted(agg.rows) == [50, 51, 52]
    assert [agg.rows[k].requests for k in (50, 51, 52)] == [3, 3, 3]
    assert agg.reported_to_s == pytest.approx(106.0, abs=0.05)


def test_transit_time_moves_no_report() -> None:
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(0.0)
    agg.add_report("w", _report(0.001, 2.001, [1.0]), received_s=2.2)
    assert agg.rows[0].covered_from_s == 0.001
