"""HDR latency histograms: one configuration, one unit, one wire format.

Every latency the telemetry keeps is an integer number of **microseconds** in an
``HdrHistogram`` tracking 1 µs .. 60 s with 3 significant figures (values are exact to 0.1 %).
Locust reports milliseconds; :func:`ms_to_us` is the one place where they are converted.
Histograms travel (worker -> master, and into ``histograms.json``) as HdrHistogram's
standard compressed, base64 ``encode()`` text, so any HDR implementation can read them.

Statistics are computed with numpy over the histogram's counts array, using the same
rules as ``HdrHistogram.get_value_at_percentile`` (the highest value equivalent to the
first index whose cumulative count reaches the target), so they agree with the library
but cost one vectorised pass instead of a Python loop per query.

Pure: no Locust, no gevent; the harness may import it.

    >>> h = new_histogram()
    >>> for ms in (1.0, 2.0, 3.0, 4.0):
    ...     record_ms(h, ms)
    >>> summarise(h).p50_ms
    2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "PERCENTILES",
    "SIGNIFICANT_FIGURES",
    "HistogramSummary",
    "counts_at_or_below",
    "decode",
    "encode",
    "merge_encoded",
    "ms_to_us",
    "new_histogram",
    "percentile_us",
    "record_ms",
    "sum_us",
    "summarise",
]

LOWEST_US = 1
# A request slower than a minute has failed in every sense that matters; slower values are
# clamped to this bound (and so still counted) rather than dropped.
HIGHEST_US = 60_000_000
SIGNIFICANT_FIGURES = 3

#: Percentiles reported everywhere, as (field suffix, percentile in [0, 100]).
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p999", 99.9),
)


def new_histogram() -> HdrHistogram:
    """An empty histogram with the telemetry's configuration."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def ms_to_us(latency_ms: float | None) -> int:
    """Locust's milliseconds to whole microseconds, clamped to the histogram's range."""
    if latency_ms is None or not math.isfinite(latency_ms) or latency_ms <= 0:
        return 0
    return min(round(latency_ms * 1000.0), HIGHEST_US)


def record_ms(histogram: HdrHistogram, latency_ms: float | None, count: int = 1) -> None:
    histogram.record_value(ms_to_us(latency_ms), count)


def encode(histogram: HdrHistogram) -> str:
    """HdrHistogram's compressed, base64 V2 encoding, as text."""
    return histogram.encode().decode("ascii")


def decode(encoded: str | bytes) -> HdrHistogram:
    """Inverse of :func:`encode`; raises ``ValueError`` on anything that is not one."""
    try:
        return HdrHistogram.decode(encoded.encode("ascii") if isinstance(encoded, str) else encoded)
    except Exception as error:  # the codec raises TypeError, zlib.error and its own types
        raise ValueError(f"not an encoded HDR histogram: {error}") from error


def merge_encoded(target: HdrHistogram, encoded: str | bytes) -> HdrHistogram:
    """Add an encoded histogram into ``target`` (``decode_and_add``); returns ``target``."""
    target.add(decode(encoded))
    return target


# -- index arithmetic ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """Per counts-array index: the lowest, highest and median equivalent value (µs)."""

    lowest: np.ndarray
    highest: np.ndarray
    median: np.ndarray


@cache
def _layout(counts_len: int) -> _Layout:
    h = new_histogram()
    if h.counts_len != counts_len:
        raise ValueError(
            f"histogram with {counts_len} counters does not have the telemetry's configuration "
            f"({LOWEST_US}..{HIGHEST_US} us, {SIGNIFICANT_FIGURES} significant figures)"
        )
    # HdrHistogram.get_value_from_index and the equivalent-range rules, vectorised.
    index = np.arange(counts_len, dtype=np.int64)
    half_magnitude = h.sub_bucket_half_count_magnitude
    half = h.sub_bucket_half_count
    bucket = (index >> half_magnitude) - 1
    sub_bucket = (index & (half - 1)) + half
    first = bucket < 0
    sub_bucket[first] -= half
    bucket[first] = 0
    lowest = sub_bucket << (bucket + h.unit_magnitude)
    size = np.left_shift(1, bucket + h.unit_magnitude)
    return _Layout(
        lowest.astype(np.float64),
        (lowest + size - 1).astype(np.float64),
        (lowest + (size >> 1)).astype(np.float64),
    )


def bucket_bounds_us(counts_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Per counts-array index: the lowest and the highest equivalent value (µs)."""
    layout = _layout(counts_len)
    return layout.lowest, layout.highest


def _counts(histogram: HdrHistogram) -> np.ndarray:
    return np.ctypeslib.as_array(histogram.counts).astype(np.int64, copy=False)


def percentile_us(histogram: HdrHistogram, percentiles: list[float]) -> list[float]:
    """Values (µs) at ``percentiles`` (each in [0, 100]); 0 for an empty histogram."""
    total = histogram.get_total_count()
    if total == 0:
        return [0.0 for _ in percentiles]
    layout = _layout(histogram.counts_len)
    cumulative = np.cumsum(_counts(histogram))
    result = []
    for p in percentiles:
        target = max(int(min(p, 100.0) * total / 100.0 + 0.5), 1)
        index = int(np.searchsorted(cumulative, target, side="left"))
        index = min(index, len(cumulative) - 1)
        result.append(float(layout.highest[index] if p > 0 else layout.lowest[index]))
    return result


def sum_us(histogram: HdrHistogram) -> float:
    """Sum of the recorded values (µs), each taken at its bucket's median (HDR's mean rule)."""
    if histogram.get_total_count() == 0:
        return 0.0
    return float((_counts(histogram) * _layout(histogram.counts_len).median).sum())


def counts_at_or_below(histogram: HdrHistogram, bounds_us: list[float]) -> list[int]:
    """Cumulative counts of values ``<= bound`` for each bound (µs), for Prometheus buckets.

    A bucket's values count as its highest equivalent value, so a value is never placed
    below a bound it might exceed; the error is at most one HDR bucket (0.1 %).
    """
    if histogram.get_total_count() == 0:
        return [0 for _ in bounds_us]
    layout = _layout(histogram.counts_len)
    cumulative = np.cumsum(_counts(histogram))
    indexes = np.searchsorted(layout.highest, np.asarray(bounds_us, dtype=np.float64), side="right")
    return [int(cumulative[i - 1]) if i > 0 else 0 for i in indexes.tolist()]


@dataclass(frozen=True, kw_only=True)
class HistogramSummary:
    """Count and latency statistics of one histogram, in milliseconds."""

    count: int
    min_ms: float
    mean_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min_ms": self.min_ms,
            "mean_ms": self.mean_ms,
            "max_ms": self.max_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
        }


def _ms(value_us: float) -> float:
    return round(value_us / 1000.0, 3)


def summarise(histogram: HdrHistogram) -> HistogramSummary:
    count = int(histogram.get_total_count())
    values = percentile_us(histogram, [p for _, p in PERCENTILES])
    p50, p90, p95, p99, p999 = (_ms(v) for v in values)
    if count == 0:
        return HistogramSummary(
            count=0, min_ms=0.0, mean_ms=0.0, max_ms=0.0,
            p50_ms=0.0, p90_ms=0.0, p95_ms=0.0, p99_ms=0.0, p999_ms=0.0,
        )  # fmt: skip
    return HistogramSummary(
        count=count,
        min_ms=_ms(histogram.get_min_value()),
        mean_ms=_ms(sum_us(histogram) / count),
        max_ms=_ms(histogram.get_max_value()),
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        p999_ms=p999,
    )
