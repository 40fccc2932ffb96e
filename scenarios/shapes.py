"""Locust load shapes, selectable by name: ``--shape ramp|step|spike|soak|diurnal``.

Each shape wraps a profile of :mod:`scenarios.profiles`. A profile's fields are Locust
custom arguments ``--shape-<field>`` (also read from the environment as
``PORTAL_SHAPE_<FIELD>``), e.g.::

    locust -f locustfile.py --headless --shape diurnal --shape-users 2000 \\
        --shape-duration-s 1440 --shape-par 2.2

The locustfile imports this module but no shape class, so plain ``locust -u 10`` runs
without a shape; the ``init`` listener installs the one ``--shape`` names (on the master,
or a standalone run). A locustfile may also subclass a shape with a fixed profile::

    class LunchPeak(RampShape):
        profile = Ramp(users=500, ramp_s=60, hold_s=300)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from typing import Any, ClassVar

from locust import LoadTestShape, events
from locust.runners import WorkerRunner

from scenarios.profiles import PROFILES, Diurnal, Profile, Ramp, Soak, Spike, Step

__all__ = [
    "SHAPES",
    "DiurnalShape",
    "ProfileShape",
    "RampShape",
    "SoakShape",
    "SpikeShape",
    "StepShape",
    "profile_from_options",
]

logger = logging.getLogger(__name__)

NO_SHAPE = "none"


class ProfileShape(LoadTestShape):
    """A ``LoadTestShape`` that follows a :class:`~scenarios.profiles.Profile`."""

    abstract = True
    profile_class: ClassVar[type[Profile]]
    profile: Profile | None = None

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        if profile is not None:
            self.profile = profile
        elif self.profile is None:
            self.profile = self.profile_class()

    def tick(self) -> tuple[int, float] | None:
        assert self.profile is not None
        users = self.profile.users_at(self.get_run_time())
        if users is None:
            return None
        return users, self.profile.spawn_rate


class RampShape(ProfileShape):
    """Ramp to the peak and hold."""

    profile_class = Ramp


class StepShape(ProfileShape):
    """Staircase for capacity search."""

    profile_class = Step


class SpikeShape(ProfileShape):
    """Rest, sudden spike, recovery."""

    profile_class = Spike


class SoakShape(ProfileShape):
    """Long constant load."""

    profile_class = Soak


class DiurnalShape(ProfileShape):
    """A national day compressed into the run."""

    profile_class = Diurnal


SHAPES: dict[str, type[ProfileShape]] = {
    "ramp": RampShape,
    "step": StepShape,
    "spike": SpikeShape,
    "soak": SoakShape,
    "diurnal": DiurnalShape,
}
assert SHAPES.keys() == PROFILES.keys()


def _numeric_fields() -> dict[str, type]:
    """Every numeric profile field, with its type, across all profiles."""
    found: dict[str, type] = {}
    for profile_class in PROFILES.values():
        hints = typing.get_type_hints(profile_class)
        for f in dataclasses.fields(profile_class):
            kind = hints[f.name]
            if kind in (int, float):
                found.setdefault(f.name, kind)
    return found


def _option(name: str) -> str:
    return "shape_" + name


def profile_from_options(shape: str, options: Any) -> Profile:
    """Build the profile of ``shape`` from parsed options (unset fields keep defaults)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    profile_class = SHAPES[shape].profile_class
    values = {}
    for f in dataclasses.fields(profile_class):
        value = getattr(options, _option(f.name), None)
        if value is not None:
            values[f.name] = value
    return profile_class(**values)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("load shape (scenarios.shapes)")
    group.add_argument(
        "--shape",
        choices=[NO_SHAPE, *SHAPES],
        default=os.environ.get("PORTAL_SHAPE", NO_SHAPE),
        env_var="PORTAL_SHAPE",
        help="load shape to follow instead of --users/--spawn-rate",
    )
    for name, kind in _numeric_fields().items():
        flag = "--shape-" + name.replace("_", "-")
        group.add_argument(
            flag,
            dest=_option(name),
            type=kind,
            default=None,
            env_var="PORTAL_SHAPE_" + name.upper(),
            help=f"{name} of the shape's profile ({kind.__name__})",
        )


@events.init.add_listener
def _install_shape(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    name = getattr(options, "shape", NO_SHAPE) if options is not None else NO_SHAPE
    if name == NO_SHAPE or isinstance(environment.runner, WorkerRunner):
        return
    if environment.shape_class is not None:
        logger.warning("--shape %s replaces shape %r", name, type(environment.shape_class))
    shape = SHAPES[name](profile_from_options(name, options))
    shape.runner = environment.runner
    environment.shape_class = shape
    logger.info("load shape: %r", shape.profile)
