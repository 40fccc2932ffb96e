"""Counters other scenario modules hand to the telemetry (the open model's start accounting).

The open model (``scenarios/open_model.py``, another module's concern) knows how many
journey starts were late or dropped and what rate it aims at. It shares them by registering
a function, called on every worker at each report (every ~2 s)::

    from scenarios.telemetry.sources import register_open_model

    register_open_model(lambda environment: {
        "started": STATS.started,          # counters: cumulative on this worker
        "late": STATS.late,
        "dropped": STATS.dropped,
        "target_rps": current_rate,        # gauge: this worker's share, summed over workers
        "schedule_lag_s": worst_lag_s,     # gauge: the worst worker's is exported
    })

Without a registration, an already imported ``scenarios.open_model`` is read: its
``telemetry_counters(environment)`` function if it has one, else the ``snapshot()`` of its
``SCHEDULE`` counters (``due``, ``started``, ``late``, ``dropped``, ``completed``, ``failed``,
``lag_ms_total``, ``lag_ms_max``: cumulative in this process). Nothing is imported here;
without any of these the ``open_model`` section of ``summary.json`` is ``null``.

Values must be numbers; other entries are ignored. Pure: no Locust, no gevent.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["OPEN_MODEL_MODULE", "OpenModelSource", "open_model_counters", "register_open_model"]

logger = logging.getLogger(__name__)

OPEN_MODEL_MODULE = "scenarios.open_model"
OpenModelSource = Callable[[Any], Mapping[str, float]]

_source: OpenModelSource | None = None
_warned = False


def _schedule_snapshot(schedule: Any) -> OpenModelSource:
    def snapshot(_environment: Any) -> Mapping[str, float]:
        values: Mapping[str, float] = schedule.snapshot()
        return values

    return snapshot


def register_open_model(source: OpenModelSource | None) -> None:
    """Use ``source(environment)`` for the open-model counters (``None`` unregisters)."""
    global _source
    _source = source


def open_model_counters(environment: Any) -> dict[str, float] | None:
    """The current counters, or ``None`` when no open model reports any."""
    global _warned
    source = _source
    if source is None:
        module = sys.modules.get(OPEN_MODEL_MODULE)
        source = getattr(module, "telemetry_counters", None)
        schedule = getattr(module, "SCHEDULE", None)
        if source is None and callable(getattr(schedule, "snapshot", None)):
            source = _schedule_snapshot(schedule)
    if source is None:
        return None
    try:
        values = source(environment)
    except Exception:
        if not _warned:
            logger.exception("open-model counters failed; they are left out of the results")
            _warned = True
        return None
    if not values:
        return None
    return {
        str(name): float(value)
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
