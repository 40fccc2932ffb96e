"""The results folder: atomic writes, the summary's numbers, and reading it back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from scenarios.telemetry import hdr, results
from scenarios.telemetry.aggregate import RunAggregator
from scenarios.telemetry.recorder import IntervalRecorder


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    results.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert target.stat().st_mode & 0o777 == results.FILE_MODE


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write(target, b"new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def _controlled_run(latencies_ms: np.ndarray) -> RunAggregator:
    """Three 'workers' report a known stream over three intervals, as the master sees it."""
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(1000.0)
    for interval, part in enumerate(np.array_split(latencies_ms, 3)):
        for worker, chunk in enumerate(np.array_split(part, 3)):
            r = IntervalRecorder()
            for i, ms in enumerate(chunk):
                name = "/api/v1/services" if i % 4 else "/healthz"
                r.record(name, "GET", float(ms), "HTTP 503 (expected 200)" if ms > 900 else None)
            r.record("browse", "JOURNEY", 250.0, None)
            r.record("browse", "GET+CO", 300.0, None)
            start = 1000.0 + 2.0 * interval
            agg.add_report(
                f"w{worker}", r.take(start_s=start, end_s=start + 2.0), received_s=start + 2.0
            )
        agg.sample(1000.0 + 2.0 * interval + 1.0, users=30, workers=3)
    agg.stop(1006.0)
    return agg


@pytest.fixture
def stream() -> np.ndarray:
    rng = np.random.default_rng(11)
    return np.concatenate([rng.lognormal(np.log(15.0), 0.7, 60_000), rng.uniform(300, 1500, 600)])


def test_summary_counts_and_percentiles_match_the_raw_stream(
    tmp_path: Path, stream: np.ndarray
) -> None:
    agg = _controlled_run(stream)
    results.write_results(tmp_path / "run-1", agg, final=True)
    summary = results.read_summary(tmp_path / "run-1")

    assert summary["schema"] == results.SCHEMA_VERSION
    assert summary["run_id"] == "run-1"
    assert summary["status"] == "complete"
    assert summary["final"] is True
    assert summary["duration_s"] == pytest.approx(6.0)
    total = summary["total"]
    assert total["count"] == len(stream)
    assert sum(row["count"] for row in summary["requests"]) == len(stream)
    assert total["failures"] == int((stream > 900).sum())
    assert total["failures_by_reason"] == {"HTTP 503 (expected 200)": total["failures"]}
    assert total["rps"] == pytest.approx(len(stream) / 6.0, rel=0.001)
    for field, p in hdr.PERCENTILES:
        assert total[f"{field}_ms"] == pytest.approx(np.percentile(stream, p), rel=0.01), field
    assert total["mean_ms"] == pytest.approx(stream.mean(), rel=0.01)

    assert [(r["name"], r["method"]) for r in summary["journeys"]] == [("browse", "JOURNEY")]
    assert summary["journeys"][0]["count"] == 9
    assert [(r["name"], r["method"]) for r in summary["corrected"]] == [("browse", "GET+CO")]
    assert summary["workers"]["count"] == 3
    assert sum(w["requests"] for w in summary["workers"]["per_worker"]) == len(stream)
    assert summary["users"] == {"max": 30, "last": 30}


def test_timeseries_and_failures_add_up_to_the_summary(tmp_path: Path, stream: np.ndarray) -> None:
    agg = _controlled_run(stream)
    summary = results.write_results(tmp_path, agg, final=True)
    rows = results.read_csv(tmp_path / results.TIMESERIES_CSV)
    assert tuple(rows[0]) == results.TIMESERIES_FIELDS
    assert len(rows) == 3
    assert sum(int(r["requests"]) for r in rows) == summary["total"]["count"]
    assert sum(int(r["failures"]) for r in rows) == summary["total"]["failures"]
    assert all(float(r["rps"]) == pytest.approx(int(r["requests"]) / 2.0, rel=0.01) for r in rows)
    assert [r["users"] for r in rows] == ["30", "30", "30"]

    failures = results.read_csv(tmp_path / results.FAILURES_CSV)
    assert sum(int(f["count"]) for f in failures) == summary["total"]["failures"]
    assert {(f["section"], f["method"]) for f in failures} == {("requests", "GET")}


def test_histograms_file_decodes_to_the_summary_counts(tmp_path: Path, stream: np.ndarray) -> None:
    agg = _controlled_run(stream)
    summary = results.write_results(tmp_path, agg, final=True)
    histograms = results.read_histograms(tmp_path)
    for row in summary["requests"] + summary["journeys"] + summary["corrected"]:
        assert histograms[(row["name"], row["method"])].get_total_count() == row["count"]
    document = json.loads((tmp_path / results.HISTOGRAMS_JSON).read_text())
    assert hdr.decode(document["total"]).get_total_count() == summary["total"]["count"]
    # mergeable later: e.g. two runs, or all request names
    merged = hdr.new_histogram()
    for key, histogram in histograms.items():
        if key[1] == "GET":
            merged.add(histogram)
    assert merged.get_total_count() == len(stream)


def test_a_run_in_progress_is_partial_and_still_parses(tmp_path: Path) -> None:
    agg = RunAggregator(interval_s=2.0, mode="local")
    agg.start(50.0)
    summary = results.write_results(tmp_path, agg, final=False)
    assert summary["status"] == "partial"
    assert results.read_summary(tmp_path)["total"]["count"] == 0
    assert results.read_csv(tmp_path / results.TIMESERIES_CSV) == []
    assert results.read_histograms(tmp_path) == {}


def test_readers_refuse_an_unknown_schema(tmp_path: Path) -> None:
    (tmp_path / results.SUMMARY_JSON).write_text(json.dumps({"schema": 2}))
    with pytest.raises(ValueError, match="schema 2"):
        results.read_summary(tmp_path)


def test_flags_report_a_busy_generator_and_a_lost_worker(tmp_path: Path) -> None:
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(0.0)
    r = IntervalRecorder()
    r.record("x", "GET", 1.0, None)
    agg.add_report("w1", r.take(start_s=0, end_s=2, cpu_percent=97.0, index=0), received_s=2)
    agg.add_report("w1", r.take(start_s=2, end_s=4, cpu_percent=93.0, index=0), received_s=4)
    agg.mark_degraded("w1", at_s=5.0, reason="missing")
    agg.stop(4.0)
    summary = results.write_results(tmp_path, agg, final=True)
    assert summary["status"] == "degraded"
    assert summary["flags"] == ["loadgen_cpu_high", "worker_lost"]
    assert summary["degraded"] == [
        {"worker": "w1", "index": 0, "at_unix_s": 5.0, "reason": "missing"}
    ]
    worker = summary["workers"]["per_worker"][0]
    assert (worker["cpu_percent_max"], worker["cpu_high"], worker["state"]) == (
        97.0,
        True,
        "missing",
    )


def test_a_summary_written_mid_run_claims_nothing_beyond_the_reports_it_holds() -> None:
    """One worker has reported to 1004 s, the other only to 1002 s (its next report is on its
    way when a killed master writes no more): the summary covers 1000..1002 s."""
    agg = RunAggregator(interval_s=2.0, mode="distributed")
    agg.start(1000.0)
    for worker, ends in (("a", (1002.0, 1004.0)), ("b", (1002.0,))):
        for end in ends:
            r = IntervalRecorder()
            r.record("/api/v1/me", "GET", 10.0, None)
            agg.add_report(worker, r.take(start_s=end - 2.0, end_s=end), received_s=end + 0.05)
    mid = results.build_summary(agg, run_id="r", final=False, written_s=1005.0)
    assert mid["covers_until_unix_s"] == 1002.0
    assert (mid["end_unix_s"], mid["duration_s"]) == (1002.0, 2.0)
    agg.stop(1003.5)  # the test stops; the reports then cover to its stop, no further
    stopped = results.build_summary(agg, run_id="r", final=True, written_s=1005.0)
    assert stopped["covers_until_unix_s"] == 1002.0
    assert stopped["end_unix_s"] == 1003.5
