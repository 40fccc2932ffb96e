"""Load profiles: how many users (closed model) should run at each second of a test.

Pure arithmetic with no Locust or gevent import, so it is unit-tested in any process;
:mod:`scenarios.shapes` wraps each profile in a Locust ``LoadTestShape``.

Each profile is a frozen dataclass with keyword-only fields: its ``duration_s``, its peak
``users`` and the shape's own parameters (their table, with units and defaults, is
:mod:`scenarios.shape_specs`); ``users_at(t_s)`` (``None`` once the profile is over) and
``spawn_rate`` (users started or stopped per second, fast enough to follow the profile's
steepest slope).
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
    """Base of all profiles: ``users`` (the peak) over ``duration_s`` seconds.

    Subclasses define ``users_at`` and ``spawn_rate``; their parameters are checked by
    :mod:`scenarios.shape_specs`, which builds them from options, and here again.
    """

    duration_s: float
    users: int

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ValueError(
                f"{type(self).__name__}.duration_s must be > 0, got {self.duration_s!r}"
            )
        if self.users < 1:
            raise ValueError(f"{type(self).__name__}.users must be >= 1, got {self.users!r}")

    @property
    def spawn_rate(self) -> float:
        raise NotImplementedError

    def users_at(self, t_s: float) -> int | None:
        raise NotImplementedError

    def _check_fraction(self, **values: float) -> None:
        for name, value in values.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{type(self).__name__}.{name} must be in [0, 1], got {value!r}")


def _rate(users: float, seconds: float) -> float:
    """Users per second that move ``users`` in ``seconds`` (at once when ``seconds`` is 0)."""
    return max(1.0, users / seconds) if seconds > 0 else max(1.0, float(users))


@dataclass(frozen=True, kw_only=True)
class Ramp(Profile):
    """Linear climb from one user to ``users`` over the first ``ramp`` of the duration, then
    hold to the end."""

    ramp: float

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_fraction(ramp=self.ramp)

    @property
    def ramp_s(self) -> float:
        return self.ramp * self.duration_s

    @property
    def spawn_rate(self) -> float:
        return _rate(self.users, self.ramp_s)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        if t_s < self.ramp_s:
            return max(1, math.ceil(self.users * t_s / self.ramp_s))
        return self.users


@dataclass(frozen=True, kw_only=True)
class Soak(Ramp):
    """Constant ``users`` for a long run after a gentle ramp: leaks and drift. A ramp in
    shape, with its own name and a shorter ramp by default."""


@dataclass(frozen=True, kw_only=True)
class Step(Profile):
    """Staircase for capacity search: ``steps`` equal stairs up to ``users``, each stair's
    users started within ``rise_s``."""

    steps: int
    rise_s: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1 or self.rise_s < 0:
            raise ValueError(f"Step needs steps >= 1 and rise_s >= 0, got {self!r}")

    @property
    def step_s(self) -> float:
        return self.duration_s / self.steps

    @property
    def spawn_rate(self) -> float:
        return _rate(math.ceil(self.users / self.steps), self.rise_s)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        stair = min(int(t_s // self.step_s), self.steps - 1) + 1
        return max(1, round(self.users * stair / self.steps))


@dataclass(frozen=True, kw_only=True)
class Spike(Profile):
    """``base`` of ``users`` at rest, a sudden spike to ``users`` at ``at`` of the duration
    for ``length`` of it (risen within ``rise_s``), then recovery at rest: does latency come
    back once the spike is gone?"""

    base: float
    at: float
    length: float
    rise_s: float

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_fraction(base=self.base, at=self.at, length=self.length)
        if self.at + self.length > 1.0 or self.rise_s < 0:
            raise ValueError(f"Spike needs at + length <= 1 and rise_s >= 0, got {self!r}")

    @property
    def rest_users(self) -> int:
        return max(1, round(self.users * self.base))

    @property
    def spawn_rate(self) -> float:
        return _rate(self.users - self.rest_users, self.rise_s)

    def users_at(self, t_s: float) -> int | None:
        if t_s >= self.duration_s:
            return None
        start_s = self.at * self.duration_s
        if start_s <= t_s < start_s + self.length * self.duration_s:
            return self.users
        return self.rest_users


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
    begins (03:00, the quietest hour, climbs to the peak).
    """

    par: float
    start_hour: int
    hourly: tuple[float, ...] = field(default=NATIONAL_DAY_HOURLY, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.start_hour < 24:
            raise ValueError(f"Diurnal.start_hour must be in [0, 24), got {self.start_hour!r}")
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
