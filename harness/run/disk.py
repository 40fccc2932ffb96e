"""Room for a run's files: the space a run of a given size needs, checked before it starts.

A run writes into its folder the embedded mock's store (SQLite and its write-ahead log), the
logs of every process, Prometheus's data with ``--prometheus``, and the results. What it needs
grows with the requests it sends and the seconds it lasts; the constants below were measured
on this project's default runs (``du`` of the run folder sampled every second of a 20 s run)
and are rounded up::

    >>> from harness.campaign import Campaign
    >>> round(estimate_bytes(Campaign(duration_s=60.0)).total / 2**20)  # 300 users, 0.05
    66

Checked before the run's folder exists (:func:`check_room`), a run that cannot fit is one line,
not a filled disk; while it runs, :mod:`harness.run.watch` stops it cleanly when the free space
falls below :data:`RESERVE_BYTES`, the room its final results need.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, replace
from pathlib import Path

from harness.campaign import Campaign
from harness.errors import ResultsError
from harness.system import free_bytes

MIB = 2**20
# The embedded mock's store per request answered: its write-ahead log grows with every write
# (0.5-1.3 KB per request measured at 900 req/s of the default mix) until a checkpoint.
MOCK_BYTES_PER_REQUEST = 1000
# Logs of the master, workers and mock: the master's headless stats table every 2 s is most
# of it (4.5 KB/s measured).
LOG_BYTES_PER_S = 8 * 1024
# Prometheus's write-ahead log and blocks, scraping the mock and the generator every second
# (35 KB/s measured).
PROMETHEUS_BYTES_PER_S = 64 * 1024
# The results (histograms, summary, time series, report) and their temporary copies while they
# are replaced: about 0.2 MB at the end of a default run, rounded up for a larger catalog.
RESULTS_BYTES = 2 * MIB
# Free space below which a running run is stopped: what its final results need to be written.
RESERVE_BYTES = 1 * MIB
# No run on one machine sends more than this per core (the whole run measured 1,900 req/s per
# core, benchmarks/RESULTS.md): an estimate above it is a zero think time, not a rate.
MAX_RATE_PER_CORE = 2500.0


@dataclass(frozen=True)
class SpaceEstimate:
    """What a run will write, in bytes, and the request rate it was estimated from."""

    rate_rps: float
    mock: float
    logs: float
    prometheus: float
    results: float = RESULTS_BYTES

    @property
    def total(self) -> float:
        return self.mock + self.logs + self.prometheus + self.results


def expected_rate_rps(c: Campaign) -> float:
    """Requests per second the campaign asks for, from the workload model's journeys."""
    from scenarios.workload import Assumptions, derive

    a = Assumptions()
    scale = c.think_scale
    model = derive(
        replace(
            a,
            step_think_s=a.step_think_s * scale,
            journey_think_s=a.journey_think_s * scale,
            poll_interval_s=a.poll_interval_s * scale,
        )
    )
    if c.open_model:
        rate = c.arrival_rate * float(model.requests_per_visit)
    else:
        rate = c.users * float(model.requests_per_user_s)
    return min(rate, MAX_RATE_PER_CORE * (os.cpu_count() or 1))


def estimate_bytes(c: Campaign) -> SpaceEstimate:
    rate = expected_rate_rps(c)
    return SpaceEstimate(
        rate_rps=rate,
        mock=rate * c.duration_s * MOCK_BYTES_PER_REQUEST if c.embedded else 0.0,
        logs=LOG_BYTES_PER_S * c.duration_s,
        prometheus=PROMETHEUS_BYTES_PER_S * c.duration_s if c.prometheus else 0.0,
    )


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_room(c: Campaign) -> SpaceEstimate:
    """Refuse, in one line, a run whose files do not fit where they would go."""
    root = Path(c.results_dir)
    where = _existing(root)
    if not os.access(where, os.W_OK) or _read_only(where):
        raise ResultsError(f"{root}: cannot write there (read-only); choose another --out")
    need = estimate_bytes(c)
    free = free_bytes(where)
    if free < need.total:
        raise ResultsError(
            f"{root}: {free / MIB:.1f} MiB free; a run of {c.duration_s:g} s at about "
            f"{need.rate_rps:,.0f} req/s needs about {need.total / MIB:,.1f} MiB (the mock's "
            "store, logs and results); free some space or choose another --out"
        )
    return need


def _read_only(path: Path) -> bool:
    """True on a read-only mount (root passes ``os.access`` there, and cannot write)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def describe(exc: OSError) -> str:
    """An error of a write, in words: ``No space left on device`` and the like."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)
