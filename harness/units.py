"""Units, converted at one boundary: durations, shares, milliseconds and seconds.

The load generator reports milliseconds, Prometheus and every timer of the harness use
seconds; each value carries its unit in its name (``latency_ms``, ``timeout_s``) and crosses
between the two here, nowhere else.

>>> parse_duration_s("1m30s", "duration")
90.0
>>> parse_share("2.5%", "tolerance")
0.025
>>> s_to_ms(0.25)
250.0
"""

from __future__ import annotations

import math
import re
from typing import Any

from harness.errors import UsageError

MS_PER_S = 1000.0
US_PER_MS = 1000.0  # the HDR histograms count microseconds
# Units of time in the campaign file, SLO thresholds and Prometheus durations.
SECONDS_PER_UNIT = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUMBER = r"\d+(?:\.\d+)?"
_UNIT = r"us|µs|ms|s|m|h|d"
_DURATION = re.compile(rf"^\s*(?:{_NUMBER}\s*(?:{_UNIT})\s*)+$|^\s*{_NUMBER}\s*$")
_PART = re.compile(rf"({_NUMBER})\s*({_UNIT})?")


def s_to_ms(seconds: float) -> float:
    return seconds * MS_PER_S


def ms_to_s(milliseconds: float) -> float:
    return milliseconds / MS_PER_S


def us_to_ms(microseconds: float) -> float:
    return microseconds / US_PER_MS


def ms_to_us(milliseconds: float) -> float:
    return milliseconds * US_PER_MS


def parse_duration_s(value: Any, where: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"1.5m"``, ``"250ms"``, ``"1h"`` or ``"1m30s"``.

    A bare number is seconds. Raises :class:`UsageError` naming ``where`` for anything else,
    and for a duration that is not finite and > 0.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value):
        seconds = sum(
            float(number) * SECONDS_PER_UNIT[unit or "s"] for number, unit in _PART.findall(value)
        )
    else:
        raise UsageError(
            f"{where}: expected a duration like 90, '90s', '2m' or '1h'; got {value!r}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{where}: a duration must be > 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration in whole milliseconds, as Prometheus (every version) reads it."""
    milliseconds = round(s_to_ms(seconds))
    if milliseconds <= 0:
        raise ValueError(f"duration must be at least 1 ms, got {seconds!r} s")
    return f"{milliseconds}ms"


def parse_share(value: Any, where: str) -> float:
    """A share as a fraction: ``"10%"`` -> 0.1, ``0.1`` -> 0.1."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            pass
        else:
            if math.isfinite(share):
                return share
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise UsageError(f"{where}: expected a fraction or a percentage like '10%', got {value!r}")
