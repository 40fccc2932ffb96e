"""HDR histogram helpers: units, encoding, merging and statistics against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.telemetry import hdr


def _stream(n: int = 200_000, seed: int = 7) -> np.ndarray:
    """Latencies in ms: a lognormal body (median 20 ms) and a slow tail, like a real service."""
    rng = np.random.default_rng(seed)
    body = rng.lognormal(mean=np.log(20.0), sigma=0.6, size=n)
    tail = rng.uniform(200.0, 2_000.0, size=n // 100)
    return np.concatenate([body, tail])


def _histogram(latencies_ms: np.ndarray) -> hdr.HdrHistogram:
    h = hdr.new_histogram()
    for ms in latencies_ms:
        hdr.record_ms(h, float(ms))
    return h


def test_milliseconds_become_whole_microseconds_clamped_to_the_range() -> None:
    assert hdr.ms_to_us(1.2344) == 1234
    assert hdr.ms_to_us(12.5) == 12_500
    assert hdr.ms_to_us(0.0) == 0
    assert hdr.ms_to_us(-3.0) == 0
    assert hdr.ms_to_us(None) == 0
    assert hdr.ms_to_us(float("nan")) == 0
    assert hdr.ms_to_us(10 * 60_000.0) == hdr.HIGHEST_US


def test_a_value_above_the_range_is_still_counted() -> None:
    h = hdr.new_histogram()
    hdr.record_ms(h, 5 * 60_000.0)
    assert h.get_total_count() == 1
    assert h.get_max_value() >= hdr.HIGHEST_US


def test_encoding_round_trips_exactly() -> None:
    h = _histogram(_stream(5_000))
    decoded = hdr.decode(hdr.encode(h))
    assert decoded.get_total_count() == h.get_total_count()
    assert decoded.equals(h)


def test_decode_rejects_text_that_is_not_a_histogram() -> None:
    with pytest.raises(ValueError, match="not an encoded HDR histogram"):
        hdr.decode("bm90IGEgaGlzdG9ncmFt")


def test_merging_encoded_parts_equals_recording_everything_in_one() -> None:
    stream = _stream(30_000)
    whole = _histogram(stream)
    merged = hdr.new_histogram()
    for part in np.array_split(stream, 3):
        hdr.merge_encoded(merged, hdr.encode(_histogram(part)))
    assert merged.get_total_count() == len(stream)
    assert merged.equals(whole)


def test_vectorised_percentiles_agree_with_the_library() -> None:
    h = _histogram(_stream(20_000))
    percentiles = [0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
    expected = [float(h.get_value_at_percentile(p)) for p in percentiles]
    assert hdr.percentile_us(h, percentiles) == expected


def test_summary_percentiles_are_within_one_percent_of_numpy() -> None:
    stream = _stream()
    summary = hdr.summarise(_histogram(stream))
    assert summary.count == len(stream)
    for field, p in hdr.PERCENTILES:
        exact = float(np.percentile(stream, p))
        got = getattr(summary, f"{field}_ms")
        assert got == pytest.approx(exact, rel=0.01), field
    assert summary.mean_ms == pytest.approx(float(stream.mean()), rel=0.01)
    assert summary.min_ms == pytest.approx(float(stream.min()), rel=0.01)
    assert summary.max_ms == pytest.approx(float(stream.max()), rel=0.01)


def test_an_empty_histogram_summarises_to_zeros() -> None:
    summary = hdr.summarise(hdr.new_histogram())
    assert summary.count == 0
    assert summary.p99_ms == 0.0
    assert summary.max_ms == 0.0


def test_cumulative_bucket_counts_match_the_raw_values() -> None:
    stream = _stream(20_000)
    h = _histogram(stream)
    bounds_ms = [1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1_000.0, 30_000.0]
    got = hdr.counts_at_or_below(h, [b * 1000.0 for b in bounds_ms])
    for bound, count in zip(bounds_ms, got, strict=True):
        exact = int((stream <= bound).sum())
        # values within one HDR bucket (0.1 %) of a bound may fall either side of it
        near = int((np.abs(stream - bound) <= bound * 0.001).sum())
        assert abs(count - exact) <= near, bound
    assert got == sorted(got)
    assert got[-1] == len(stream)


def test_sum_matches_the_raw_sum() -> None:
    stream = _stream(20_000)
    assert hdr.sum_us(_histogram(stream)) == pytest.approx(float(stream.sum()) * 1000.0, rel=0.001)
