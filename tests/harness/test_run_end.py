"""The end of a run: the checks it adds to the summary, which of them make it exit 4, and
how the harness writes its files."""

from __future__ import annotations

import json
from pathlib import Path

from harness.run.checks import MockCount
from harness.run.checks import cross_check as _cross_check


def _summary(count: int, flags: list[str]) -> dict:
    return {"status": "complete", "total": {"count": count}, "flags": flags}


def test_agreeing_counts_and_no_telemetry_flags_leave_no_flag(tmp_path: Path) -> None:
    summary = _cross_check(tmp_path, _summary(10_000, []), MockCount(10_003), in_flight_bound=8)
    assert summary["checks"]["counts_agree"] is True
    assert summary["checks"]["flags"] == []
    assert json.loads((tmp_path / "summary.json").read_text())["checks"]["flags"] == []


def test_a_count_beyond_the_tolerance_is_flagged(tmp_path: Path) -> None:
    summary = _cross_check(tmp_path, _summary(10_000, []), MockCount(11_000), in_flight_bound=8)
    assert summary["checks"]["counts_agree"] is False
    assert summary["checks"]["flags"] == [
        "the load generator counted 10000 requests, the mock 11000"
    ]


def test_requests_the_mock_cut_off_widen_the_tolerance(tmp_path: Path) -> None:
    """A POST the mock reset (an injected fault) is a failed request for the generator and
    no request for the mock's count."""
    cut = MockCount(10_000, cut_off=500)
    summary = _cross_check(tmp_path, _summary(10_500, []), cut, in_flight_bound=8)
    assert summary["checks"]["counts_agree"] is True
    assert summary["checks"]["mock_cut_off_count"] == 500
    beyond = _cross_check(tmp_path, _summary(10_800, []), cut, in_flight_bound=8)
    assert beyond["checks"]["counts_agree"] is False


def test_a_busy_generator_and_rejected_reports_are_flagged(tmp_path: Path) -> None:
    summary = _cross_check(
        tmp_path,
        _summary(100, ["loadgen_cpu_high", "reports_rejected"]),
        MockCount(100),
        in_flight_bound=1,
    )
    flags = summary["checks"]["flags"]
    assert len(flags) == 2
    assert "90 % CPU" in flags[0]
    assert "could not be merged" in flags[1]


def test_the_harness_writes_files_as_the_generator_does(tmp_path: Path) -> None:
    """Readable by others (CI archives them as another user), no temporary file left."""
    from harness.results.folder import atomic_write

    target = tmp_path / "summary.json"
    atomic_write(target, "{}\n")
    atomic_write(target, b'{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n'
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
