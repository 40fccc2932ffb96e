"""The telemetry's HDR histograms (``scenarios.telemetry.hdr``), typed for the harness.

The harness reads what the load generator wrote and must never import Locust or gevent;
``scenarios.telemetry.hdr`` is pure (hdrh and numpy) and importing it installs nothing, so it
is imported plainly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from scenarios.telemetry import hdr as _hdr

LOWEST_US: int = _hdr.LOWEST_US
HIGHEST_US: int = _hdr.HIGHEST_US
SIGNIFICANT_FIGURES: int = _hdr.SIGNIFICANT_FIGURES


def new_histogram() -> HdrHistogram:
    histogram: HdrHistogram = _hdr.new_histogram()
    return histogram


def encode(histogram: HdrHistogram) -> str:
    return str(_hdr.encode(histogram))


def decode(encoded: str | bytes) -> HdrHistogram:
    """Raises ``ValueError`` on anything that is not an encoded histogram."""
    histogram: HdrHistogram = _hdr.decode(encoded)
    return histogram


def percentile_us(histogram: HdrHistogram, percentile: float) -> float:
    """HdrHistogram's value at ``percentile`` (0..100), µs; 0 when empty."""
    return float(_hdr.percentile_us(histogram, [percentile])[0])


def stats_ms(histogram: HdrHistogram) -> dict[str, float]:
    """``min_ms``, ``mean_ms``, ``max_ms``, ``p50_ms`` ... of a histogram."""
    return {k: float(v) for k, v in _hdr.summarise(histogram).as_dict().items()}


def bucket_values_us(counts_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Per counts-array index: the lowest and the highest equivalent value (µs)."""
    lowest, highest = _hdr.bucket_bounds_us(counts_len)
    return lowest, highest
