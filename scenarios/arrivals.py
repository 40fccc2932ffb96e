"""Arrival schedules for the open model: when each journey is meant to start.

A :class:`RateProfile` is a piecewise-linear arrival rate (journeys per second) made of
stages; ``Lambda(t)``, the expected number of arrivals by ``t``, is then piecewise quadratic
and has a closed-form inverse. The ``k``-th arrival is due when ``Lambda`` reaches ``k``
(evenly spaced arrivals), or reaches the ``k``-th point of a unit-rate Poisson process
(exponential gaps on the ``Lambda`` scale: an exact non-homogeneous Poisson process without
thinning). Pure arithmetic: no Locust, no gevent.

    >>> profile = RateProfile.constant(rate=10.0, duration_s=2.0)
    >>> times = list(arrival_times(profile))
    >>> len(times), times[:3]
    (20, [0.0, 0.1, 0.2])
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

from scenarios.profiles import NATIONAL_DAY_HOURLY, diurnal_curve

__all__ = [
    "RateProfile",
    "ScheduleCounters",
    "Stage",
    "arrival_times",
]

OPEN_ENDED_S = 10 * 86_400.0  # a constant rate without --arrival-duration runs until -t
# (the named arrival profiles and their options: scenarios.shape_specs)


@dataclass(frozen=True, kw_only=True)
class Stage:
    """``duration_s`` seconds during which the rate moves linearly from ``start`` to ``end``."""

    duration_s: float
    start: float
    end: float

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ValueError(f"a stage lasts > 0 s, got {self.duration_s!r}")
        if self.start < 0 or self.end < 0:
            raise ValueError(f"arrival rates are >= 0, got {self.start!r} -> {self.end!r}")

    @property
    def arrivals(self) -> float:
        return (self.start + self.end) / 2 * self.duration_s


@dataclass(frozen=True, kw_only=True)
class RateProfile:
    """A piecewise-linear arrival rate (journeys per second) over consecutive stages."""

    stages: tuple[Stage, ...]
    _starts: tuple[float, ...] = field(init=False, repr=False)
    _cumulative: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a rate profile needs at least one stage")
        starts, cumulative = [0.0], [0.0]
        for stage in self.stages:
            starts.append(starts[-1] + stage.duration_s)
            cumulative.append(cumulative[-1] + stage.arrivals)
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_cumulative", tuple(cumulative))

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def constant(cls, *, rate: float, duration_s: float) -> RateProfile:
        return cls(stages=(Stage(duration_s=duration_s, start=rate, end=rate),))

    @classmethod
    def ramp(cls, *, start: float, end: float, ramp_s: float, hold_s: float = 0.0) -> RateProfile:
        """Linear ramp of the rate from ``start`` to ``end``, then ``hold_s`` at ``end``."""
        stages = [Stage(duration_s=ramp_s, start=start, end=end)]
        if hold_s > 0:
            stages.append(Stage(duration_s=hold_s, start=end, end=end))
        return cls(stages=tuple(stages))

    @classmethod
    def diurnal(
        cls,
        *,
        peak_rate: float,
        duration_s: float,
        par: float | None = None,
        start_hour: int = 3,
        hourly: tuple[float, ...] = NATIONAL_DAY_HOURLY,
    ) -> RateProfile:
        """A national day compressed into ``duration_s``, ``peak_rate`` at the busiest hour."""
        curve = diurnal_curve(hourly, par)
        hour_s = duration_s / 24
        stages = []
        for i in range(24):
            h = (start_hour + i) % 24
            stages.append(
                Stage(
                    duration_s=hour_s,
                    start=peak_rate * curve[h],
                    end=peak_rate * curve[(h + 1) % 24],
                )
            )
        return cls(stages=tuple(stages))

    @classmethod
    def parse(cls, text: str) -> RateProfile:
        """Parse ``"30s:0-100,60s:100,30s:100-0"`` (duration, then a rate or ``start-end``)."""
        stages = []
        for part in text.split(","):
            duration, sep, rates = part.strip().partition(":")
            if not sep:
                raise ValueError(f"stage {part!r} is not DURATION:RATE or DURATION:START-END")
            start, _, end = rates.partition("-")
            stages.append(
                Stage(
                    duration_s=float(duration.removesuffix("s")),
                    start=float(start),
                    end=float(end or start),
                )
            )
        return cls(stages=tuple(stages))

    def scaled(self, factor: float) -> RateProfile:
        """The same schedule with every rate multiplied by ``factor`` (an executor's share)."""
        return RateProfile(
            stages=tuple(
                Stage(duration_s=s.duration_s, start=s.start * factor, end=s.end * factor)
                for s in self.stages
            )
        )

    # -- arithmetic ---------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        return self._starts[-1]

    @property
    def total_arrivals(self) -> float:
        """Expected number of arrivals over the whole profile."""
        return self._cumulative[-1]

    def rate_at(self, t_s: float) -> float:
        if t_s < 0 or t_s >= self.duration_s:
            return 0.0
        i = bisect_right(self._starts, t_s) - 1
        stage = self.stages[i]
        frac = (t_s - self._starts[i]) / stage.duration_s
        return stage.start + (stage.end - stage.start) * frac

    def expected_arrivals(self, t_s: float) -> float:
        """``Lambda(t)``: expected arrivals in ``[0, t)``."""
        if t_s <= 0:
            return 0.0
        if t_s >= self.duration_s:
            return self.total_arrivals
        i = bisect_right(self._starts, t_s) - 1
        stage = self.stages[i]
        dt = t_s - self._starts[i]
        slope = (stage.end - stage.start) / stage.duration_s
        return self._cumulative[i] + stage.start * dt + slope * dt * dt / 2

    def time_of(self, n: float) -> float | None:
        """Inverse of :meth:`expected_arrivals`: the first ``t`` with ``Lambda(t) = n``.

        ``None`` when the profile ends before ``n`` arrivals are expected.
        """
        if n <= 0:
            return 0.0
        if n > self.total_arrivals:
            return None
        i = bisect_right(self._cumulative, n) - 1
        i = min(i, len(self.stages) - 1)
        stage = self.stages[i]
        need = n - self._cumulative[i]
        a = (stage.end - stage.start) / stage.duration_s / 2
        b = stage.start
        if abs(a) < 1e-12:
            dt = need / b if b > 0 else 0.0
        else:
            # a*dt^2 + b*dt - need = 0; this form stays accurate when a is small
            disc = max(b * b + 4 * a * need, 0.0)
            dt = 2 * need / (b + math.sqrt(disc)) if b + math.sqrt(disc) > 0 else 0.0
        return self._starts[i] + min(dt, stage.duration_s)


def arrival_times(
    profile: RateProfile, *, poisson: bool = False, rng: random.Random | None = None
) -> Iterator[float]:
    """Intended start times (seconds from the profile's start) of every journey, in order.

    Evenly spaced arrivals put the ``k``-th journey where ``Lambda`` reaches ``k``; Poisson
    arrivals draw unit-mean exponential gaps on the ``Lambda`` scale.
    """
    rng = rng or random.Random()
    level = 0.0
    while True:
        t = profile.time_of(level)
        if t is None or t >= profile.duration_s:
            return
        yield t
        level += rng.expovariate(1.0) if poisson else 1.0


@dataclass
class ScheduleCounters:
    """How well the executor kept to its schedule (cumulative, this process or all workers)."""

    due: int = 0
    started: int = 0
    late: int = 0
    dropped: int = 0
    completed: int = 0
    failed: int = 0
    lag_ms_total: float = 0.0
    lag_ms_max: float = 0.0

    def snapshot(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def merge(cls, snapshots: Iterable[Mapping[str, float]]) -> ScheduleCounters:
        """Sum of several processes' counters (the maximum lag is the largest)."""
        total = cls()
        for snapshot in snapshots:
            for key, value in snapshot.items():
                if key == "lag_ms_max":
                    total.lag_ms_max = max(total.lag_ms_max, value)
                else:
                    setattr(total, key, getattr(total, key) + value)
        return total

    def reset(self) -> None:
        for key, value in asdict(ScheduleCounters()).items():
            setattr(self, key, value)
