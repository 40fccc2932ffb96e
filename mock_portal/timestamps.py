"""Timestamps as the API writes them: ISO 8601 in UTC with milliseconds and a ``Z``."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime

ISO_CACHE_SIZE = 4096  # whole seconds kept formatted: an hour of timestamps


def iso(ts: float) -> str:
    """``datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")`` with a ``Z``,
    in a third of the time: the same rounding to microseconds (half to even), then the date
    and time of the whole second from a cache (responses repeat the same few seconds).

    >>> iso(0.0005)
    '1970-01-01T00:00:00.000Z'
    >>> iso(1700000000.25)
    '2023-11-14T22:13:20.250Z'
    """
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    second = int(whole)
    if us >= 1_000_000:
        second, us = second + 1, us - 1_000_000
    elif us < 0:
        second, us = second - 1, us + 1_000_000
    return f"{_iso_second(second)}.{us // 1000:03d}Z"


@functools.lru_cache(maxsize=ISO_CACHE_SIZE)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds").removesuffix("+00:00")
