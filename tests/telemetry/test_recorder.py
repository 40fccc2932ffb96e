"""What a worker records: sections, bounded failure reasons, interval reports."""

from __future__ import annotations

import pytest

from scenarios.telemetry import hdr, recorder
from scenarios.telemetry.recorder import IntervalRecorder, normalise_reason, section_of


class CatchResponseError(Exception):
    """Stands in for Locust's own, which the recorder recognises by name."""


@pytest.mark.parametrize(
    ("request_type", "section"),
    [
        ("GET", "requests"),
        ("post", "requests"),
        ("DELETE", "requests"),
        ("JOURNEY", "journeys"),
        ("FUNNEL", "journeys"),
        ("SCHEDULE", "journeys"),
        ("GET+CO", "corrected"),
        ("JOURNEY+CO", "corrected"),
    ],
)
def test_request_types_fall_into_sections(request_type: str, section: str) -> None:
    assert section_of(request_type) == section


def test_failure_messages_are_kept_and_other_exceptions_named() -> None:
    assert (
        normalise_reason(CatchResponseError("HTTP 404 (expected 200)")) == "HTTP 404 (expected 200)"
    )
    assert normalise_reason(ConnectionRefusedError("refused")) == "ConnectionRefusedError: refused"
    assert normalise_reason(TimeoutError()) == "TimeoutError"
    assert normalise_reason("plain text") == "plain text"


def test_ids_and_addresses_are_replaced_so_reasons_stay_bounded() -> None:
    a = normalise_reason(
        "payment 3f2c9a1e-1b2c-4d5e-8f90-123456789abc of citizen 123456 at <obj 0x7f3a2b>"
    )
    b = normalise_reason(
        "payment 0a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d of citizen 999999 at <obj 0x7f00ff>"
    )
    assert a == b == "payment <uuid> of citizen <n> at <obj 0x…>"
    assert normalise_reason("GET http://h/x?token=abc&id=5 failed") == "GET http://h/x?… failed"
    assert normalise_reason("status 404") == "status 404"
    long = normalise_reason("x" * 1000)
    assert len(long) == recorder.MAX_REASON_LENGTH
    assert long.endswith("…")


def test_take_reports_the_interval_and_starts_a_new_one() -> None:
    r = IntervalRecorder()
    r.record("catalog", "GET", 10.0, None)
    r.record("catalog", "GET", 20.0, CatchResponseError("HTTP 503"))
    r.record("pay", "JOURNEY", 150.0, None)
    assert r
    report = r.take(start_s=10.0, end_s=12.0, users=3)
    assert not r
    assert report["v"] == recorder.REPORT_VERSION
    assert (report["start_s"], report["end_s"], report["users"]) == (10.0, 12.0, 3)
    decoded = {(n, t): hdr.decode(e) for n, t, e in report["histograms"]}
    assert decoded[("catalog", "GET")].get_total_count() == 2
    assert decoded[("pay", "JOURNEY")].get_total_count() == 1
    assert report["failures"] == [["catalog", "GET", "HTTP 503", 1]]
    empty = r.take(start_s=12.0, end_s=14.0)
    assert empty["histograms"] == [] and empty["failures"] == []


def test_reasons_per_key_are_capped() -> None:
    r = IntervalRecorder()
    for i in range(recorder.MAX_REASONS_PER_KEY + 10):
        r.record("x", "GET", 1.0, f"reason {chr(65 + i % 26)}{i}")
    reasons = {reason for _, _, reason, _ in r.take(start_s=0, end_s=1)["failures"]}
    assert len(reasons) == recorder.MAX_REASONS_PER_KEY + 1
    assert recorder.OTHER_REASON in reasons


def test_keys_are_capped_so_raw_urls_cannot_exhaust_memory() -> None:
    r = IntervalRecorder()
    for i in range(recorder.MAX_KEYS + 5):
        r.record(f"/api/v1/applications/{i}", "GET", 1.0, None)
    report = r.take(start_s=0, end_s=1)
    keys = {(n, t): hdr.decode(e).get_total_count() for n, t, e in report["histograms"]}
    assert len(keys) == recorder.MAX_KEYS + 1
    assert keys[(recorder.OTHER_NAME, "GET")] == 5
