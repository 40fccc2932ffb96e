"""What each load-generating process records between two reports to the master.

An :class:`IntervalRecorder` keeps one HDR histogram per request key ``(name, type)`` and
failure counts per key and reason; :meth:`IntervalRecorder.take` encodes them into a
report (a plain dict that Locust's msgpack transport carries) and starts a new interval.

Request types are sorted into sections (:func:`section_of`): HTTP methods are
``requests``; types ending in ``+CO`` (the open model's twin events, latency corrected for
coordinated omission) are ``corrected``; anything else (``JOURNEY``, ``FUNNEL``, custom
types) is ``journeys``. Totals and rates only ever add up the ``requests`` section.

Label values must stay bounded (docs/metrics.md): failure reasons are normalised
(:func:`normalise_reason`) and capped per key, and the number of keys is capped too, so a
scenario that names requests by raw URL cannot exhaust the master's memory.

Pure: no Locust, no gevent.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

from scenarios.telemetry import hdr

__all__ = [
    "CORRECTED_SUFFIX",
    "HTTP_METHODS",
    "MAX_KEYS",
    "MAX_REASONS_PER_KEY",
    "MAX_REASON_LENGTH",
    "OTHER_NAME",
    "OTHER_REASON",
    "REPORT_VERSION",
    "IntervalRecorder",
    "is_corrected_http",
    "normalise_reason",
    "section_of",
]

REPORT_VERSION = 1

HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")
)
CORRECTED_SUFFIX = "+CO"

# A scenario has tens of request names; a thousand keys means names carry ids or raw URLs.
MAX_KEYS = 1000
# Dashboards draw one line per reason; past a few dozen they are no longer readable.
MAX_REASONS_PER_KEY = 50
MAX_REASON_LENGTH = 160
OTHER_NAME = "(other)"
OTHER_REASON = "(other reasons)"

_HIGHEST_MS = hdr.HIGHEST_US / 1000.0
_HEX_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_LONG_HEX = re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}\b")
_LONG_NUMBER = re.compile(r"(?<![\w.])\d{4,}(?![\w.])")
_QUERY = re.compile(r"(https?://\S+?)\?\S*")
_SPACE = re.compile(r"\s+")


def section_of(request_type: str) -> str:
    """``requests``, ``corrected`` or ``journeys`` (see the module docstring)."""
    if request_type.endswith(CORRECTED_SUFFIX):
        return "corrected"
    if request_type.upper() in HTTP_METHODS:
        return "requests"
    return "journeys"


def is_corrected_http(request_type: str) -> bool:
    """Whether a type is the corrected twin of an HTTP request (``GET+CO``), not of a
    journey (``JOURNEY+CO``): the twins that corrected totals and rates add up."""
    base = request_type.removesuffix(CORRECTED_SUFFIX)
    return base != request_type and base.upper() in HTTP_METHODS


def normalise_reason(exception: BaseException | str | None) -> str:
    """A bounded, id-free failure reason.

    ``response.failure("...")`` messages are kept as written; other exceptions become
    ``TypeName: message``. Object addresses, UUIDs, long hex and decimal numbers and query
    strings are replaced by placeholders; whitespace is collapsed; the result is truncated.
    """
    if exception is None:
        return "unknown"
    if isinstance(exception, str):
        text = exception
    else:
        message = str(exception)
        kind = type(exception).__name__
        if kind == "CatchResponseError" and message:
            text = message
        else:
            text = f"{kind}: {message}" if message else kind
    text = _QUERY.sub(r"\1?…", text)
    text = _UUID.sub("<uuid>", text)
    text = _HEX_ADDRESS.sub("0x…", text)
    text = _LONG_HEX.sub("<hex>", text)
    text = _LONG_NUMBER.sub("<n>", text)
    text = _SPACE.sub(" ", text).strip() or "unknown"
    if len(text) > MAX_REASON_LENGTH:
        text = text[: MAX_REASON_LENGTH - 1] + "…"
    return text


class IntervalRecorder:
    """Per-key histograms and failure counts of the current interval.

    >>> r = IntervalRecorder()
    >>> r.record("catalog", "GET", 12.5, None)
    >>> r.record("catalog", "GET", 30.0, "HTTP 503")
    >>> report = r.take(start_s=0.0, end_s=2.0)
    >>> report["failures"]
    [['catalog', 'GET', 'HTTP 503', 1]]
    """

    def __init__(self) -> None:
        # Latencies (µs) counted per key in a dict: ~10x cheaper per event than
        # HdrHistogram.record_value; they become histograms once per interval in take().
        self._latencies: dict[tuple[str, str], Counter[int]] = {}
        self._failures: Counter[tuple[str, str, str]] = Counter()
        self._reasons: dict[tuple[str, str], set[str]] = {}
        self._keys_seen: set[tuple[str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self._latencies)

    def _key(self, name: str, request_type: str) -> tuple[str, str]:
        key = (str(name), str(request_type))
        if key in self._keys_seen:
            return key
        if len(self._keys_seen) >= MAX_KEYS:
            return (OTHER_NAME, key[1])
        self._keys_seen.add(key)
        return key

    def record(
        self,
        name: str,
        request_type: str,
        response_time_ms: float | None,
        exception: BaseException | str | None,
    ) -> None:
        """One request event: its latency, and its failure reason when it failed."""
        # Fast path, once per event of every request: a key already seen this interval (so
        # admitted under the cap) and a float latency inside the histogram's range.
        key = (name, request_type)
        latencies = self._latencies.get(key)
        if latencies is None:
            key = self._key(name, request_type)
            latencies = self._latencies.get(key)
            if latencies is None:
                latencies = self._latencies[key] = Counter()
        if type(response_time_ms) is float and 0.0 < response_time_ms < _HIGHEST_MS:
            latencies[round(response_time_ms * 1000.0)] += 1
        else:
            latencies[hdr.ms_to_us(response_time_ms)] += 1
        if exception is not None:
            reason = normalise_reason(exception)
            reasons = self._reasons.setdefault(key, set())
            if reason not in reasons:
                if len(reasons) >= MAX_REASONS_PER_KEY:
                    reason = OTHER_REASON
                reasons.add(reason)
            self._failures[(*key, reason)] += 1

    def take(self, *, start_s: float, end_s: float, **extra: Any) -> dict[str, Any]:
        """The interval's report, and a fresh interval.

        ``start_s``/``end_s`` are Unix times bounding the interval; ``extra`` fields (worker
        id, CPU, users, open-model counters) are added to the report as they are.
        """
        report: dict[str, Any] = {
            "v": REPORT_VERSION,
            "start_s": start_s,
            "end_s": end_s,
            "histograms": [
                [name, request_type, hdr.encode(_histogram_of(latencies))]
                for (name, request_type), latencies in self._latencies.items()
            ],
            "failures": [
                [name, request_type, reason, count]
                for (name, request_type, reason), count in self._failures.items()
            ],
            **extra,
        }
        self._latencies = {}
        self._failures = Counter()
        return report


def _histogram_of(latencies: Counter[int]) -> HdrHistogram:
    histogram = hdr.new_histogram()
    for value_us, count in latencies.items():
        histogram.record_value(value_us, count)
    return histogram
