"""Load profiles: how many users (closed model) should run at each second of a test.

Pure arithmetic with no Locust or gevent import, so it is unit-tested in any process;
:mod:`scenarios.shapes` wraps each profile in a Locust ``LoadTestShape``.

Each profile is a frozen dataclass with keyword-only fields, ``users_at(t_s)`` (``None`` once
the profile is over), ``duration_s`` and ``spawn_rate`` (users started or stopped per second,
fast enough to follow the profile's steepest slope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "NATIONAL_DAY_HOURLY",
    "PROFILES",
    "Diurnal",
    "Profile",
    "Ramp",
    "Soak",
    "Spike",
    "Step",
    "diurnal_curve",
    "peak_to_average",
]

# Share of a day's requests per hour of Moscow time on a working day of a national portal
# (relative weights). Russia spans eleven time zones, so the night is shallow and the day has
# a broad plateau from 10:00 to 17:00 Moscow time with the morning peak of the western
# regions; its own peak-to-average ratio is about 1.8 (see docs/workload-model.md).
NATIONAL_DAY_HOURLY: tuple[float, ...] = (
    0.22, 0.14, 0.11, 0.12, 0.18, 0.30, 0.50, 0.80,  # 00-07
    1.20, 1.55, 1.75, 1.80, 1.75, 1.70, 1.72, 1.65,  # 08-15
    1.50, 1.35, 1.25, 1.20, 1.10, 0.90, 0.62, 0.38,  # 16-23
)  # fmt: skip

# Bisection steps for the exponent that gives a requested peak-to-average ratio; 60 halvings
# of [0, 64] resolve the exponent far below anything a user count can show.
_BISECTION_STEPS = 60


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Base of all profiles; subclasses define ``users_at`` and ``duration_s``."""

    @property
    def duration_s(self) -> float:
        raise NotImplementedError

    @property
    def spawn_rate(self) -> float:
        raise NotImplementedError

    def users_at(self, t_s: float) -> int | None:
        raise NotImplementedError

    def _validate_positive(self, **values: float) -> None:
        for name, value in values.items():
            if value < 0 or (isinstance(value, float) and math.isnan(value)):
                raise ValueError(f"{type(self).__name__}.{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Ramp(Profile):
    """Linear ramp from zero to ``users`` over ``ramp_s``, hold for ``hold_s``."""

    users: int = 100
    ramp_s: float = 60.0
    hold_s: float = 60.0

    def __post_init__(self) -> None:
        self._validate_positive(users=self.users, ramp_s=self.ramp_s, hold_s=self.hold_s)

    @property
    def duration_s(self) -> float:
        return self.ramp_s + self.hold_s

    @property
    def spawn_rate(self) -> float:
        return max(1.0, self.users / self.ramp_s) if self.ramp_s > 0 else float(self.users)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        if t_s < self.ramp_s:
            return max(1, math.ceil(self.users * t_s / self.ramp_s))
        return self.users


@dataclass(frozen=True, kw_only=True)
class Step(Profile):
    """Staircase for capacity search: ``start_users`` then ``step_users`` more every step.

    Each of ``steps`` stairs lasts ``step_s`` seconds; stats per stair show where latency
    leaves the SLO.
    """

    users: int = 10
    step_users: int = 10
    step_s: float = 30.0
    steps: int = 10
    step_ramp_s: float = 5.0

    def __post_init__(self) -> None:
        self._validate_positive(users=self.users, step_users=self.step_users, steps=self.steps)
        if self.step_s <= 0:
            raise ValueError(f"Step.step_s must be > 0, got {self.step_s!r}")

    @property
    def duration_s(self) -> float:
        return self.step_s * self.steps

    @property
    def spawn_rate(self) -> float:
        first = max(self.users, self.step_users)
        return max(1.0, first / self.step_ramp_s) if self.step_ramp_s > 0 else float(first)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        return self.users + self.step_users * int(t_s // self.step_s)


@dataclass(frozen=True, kw_only=True)
class Spike(Profile):
    """``users`` at rest, a sudden spike to ``spike_users``, then recovery at rest.

    The spike starts at ``warmup_s``, rises in ``spike_rise_s`` and lasts ``spike_s``;
    ``recovery_s`` shows whether latency comes back once the spike is gone.
    """

    users: int = 50
    spike_users: int = 500
    warmup_s: float = 30.0
    spike_s: float = 30.0
    recovery_s: float = 60.0
    spike_rise_s: float = 2.0

    def __post_init__(self) -> None:
        self._validate_positive(
            users=self.users,
            spike_users=self.spike_users,
            warmup_s=self.warmup_s,
            spike_s=self.spike_s,
            recovery_s=self.recovery_s,
            spike_rise_s=self.spike_rise_s,
        )

    @property
    def duration_s(self) -> float:
        return self.warmup_s + self.spike_s + self.recovery_s

    @property
    def spawn_rate(self) -> float:
        jump = abs(self.spike_users - self.users)
        return max(1.0, jump / self.spike_rise_s) if self.spike_rise_s > 0 else float(jump or 1)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        if self.warmup_s <= t_s < self.warmup_s + self.spike_s:
            return self.spike_users
        return self.users


@dataclass(frozen=True, kw_only=True)
class Soak(Ramp):
    """Constant ``users`` for a long ``hold_s`` after a gentle ``ramp_s``: leaks and drift.
    A ramp in shape; its own name and an hour's hold by default."""

    hold_s: float = 3600.0


def peak_to_average(weights: tuple[float, ...] | list[float]) -> float:
    """Peak-to-average ratio of a periodic, piecewise-linear curve given by its samples."""
    if not weights or min(weights) < 0 or max(weights) <= 0:
        raise ValueError("weights must be non-negative with a positive maximum")
    return max(weights) / (sum(weights) / len(weights))


def diurnal_curve(
    base: tuple[float, ...] = NATIONAL_DAY_HOURLY, par: float | None = None
) -> tuple[float, ...]:
    """The day curve normalised to a peak of 1, reshaped to peak-to-average ``par``.

    The base curve is raised to a power ``g`` (``g > 1`` sharpens the peak, ``g < 1``
    flattens it); ``g`` is found by bisection, since the ratio grows with ``g`` from 1 at
    ``g = 0`` to ``len(base) / count_of_maxima`` as ``g`` grows. Every sample stays positive
    if the base's samples are, and the hour of the peak does not move.
    """
    peak = max(base)
    normalised = [w / peak for w in base]
    if par is None:
        return tuple(normalised)
    upper_bound = len(base) / sum(1 for w in normalised if w == 1.0)
    if not 1.0 <= par < upper_bound:
        raise ValueError(
            f"peak-to-average must be in [1, {upper_bound:.1f}) for this base curve, got {par!r}"
        )
    if min(normalised) <= 0:
        raise ValueError("the base curve must be positive at every hour")
    lo, hi = 0.0, 64.0
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        if peak_to_average([w**mid for w in normalised]) < par:
            lo = mid
        else:
            hi = mid
    exponent = (lo + hi) / 2
    return tuple(w**exponent for w in normalised)


@dataclass(frozen=True, kw_only=True)
class Diurnal(Profile):
    """A national day compressed into ``duration_s``: ``users`` at the busiest hour.

    The 24 hourly samples of :data:`NATIONAL_DAY_HOURLY` are reshaped to a peak-to-average
    ratio ``par`` and interpolated linearly; ``start_hour`` says where the compressed day
    begins (the default starts at 03:00, the quietest hour, so the run climbs to the peak).
    """

    users: int = 1000
    duration_s: float = 1440.0  # type: ignore[assignment]
    par: float = round(peak_to_average(NATIONAL_DAY_HOURLY), 2)  # the base curve as it is
    start_hour: float = 3.0
    hourly: tuple[float, ...] = field(default=NATIONAL_DAY_HOURLY, repr=False)

    def __post_init__(self) -> None:
        self._validate_positive(users=self.users, start_hour=self.start_hour)
        if self.duration_s <= 0:
            raise ValueError(f"Diurnal.duration_s must be > 0, got {self.duration_s!r}")
        object.__setattr__(self, "_curve", diurnal_curve(self.hourly, self.par))

    @property
    def curve(self) -> tuple[float, ...]:
        """Hourly fraction of peak users, peak = 1."""
        return self._curve  # type: ignore[attr-defined,no-any-return]

    def fraction_at(self, t_s: float) -> float:
        """Fraction of peak users at ``t_s`` seconds into the compressed day."""
        curve = self.curve
        hour = (self.start_hour + 24.0 * t_s / self.duration_s) % 24.0
        i = int(hour)
        frac = hour - i
        return curve[i] * (1 - frac) + curve[(i + 1) % 24] * frac

    @property
    def spawn_rate(self) -> float:
        steepest = max(abs(self.curve[(i + 1) % 24] - self.curve[i]) for i in range(24))
        per_second = steepest * self.users * 24.0 / self.duration_s
        return max(1.0, 2.0 * per_second)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        return max(1, round(self.users * self.fraction_at(t_s)))


PROFILES: dict[str, type[Profile]] = {
    "ramp": Ramp,
    "step": Step,
    "spike": Spike,
    "soak": Soak,
    "diurnal": Diurnal,
}
