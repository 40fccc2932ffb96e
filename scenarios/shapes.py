"""Locust load shapes, selectable by name: ``--shape ramp|step|spike|soak|diurnal``.

Each shape follows a profile of :mod:`scenarios.profiles` built from the table of
:mod:`scenarios.shape_specs` (names, parameters, units, defaults): the peak is ``-u/--users``,
the duration ``--shape-duration SECONDS`` (``-t/--run-time`` when it is not given), each
parameter ``--shape-<param>`` (also ``PORTAL_SHAPE_<PARAM>`` in the environment), e.g.::

    locust -f locustfile.py --headless -u 2000 --shape diurnal --shape-duration 1440 \\
        --shape-par 2.2

The test ends when the profile does (``tick()`` returns None at the duration). The locustfile
imports this module but no shape class, so plain ``locust -u 10`` runs without a shape; the
``init`` listener installs the one ``--shape`` names (on the master, or a standalone run) and
refuses a parameter the shape does not have, or out of its range, with one line and exit 2.
A locustfile may also subclass a shape with a fixed profile::

    class LunchPeak(RampShape):
        profile = build_profile("ramp", duration_s=360, users=500, params={"ramp": 1 / 6})
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from locust import LoadTestShape, events
from locust.runners import WorkerRunner

from scenarios.profiles import Profile
from scenarios.settings import usage_error
from scenarios.shape_specs import (
    NO_SHAPE,
    SHAPE_OPTION_PREFIX,
    SHAPES,
    ShapeParamError,
    option_params,
    profile_from_options,
)

__all__ = [
    "SHAPE_CLASSES",
    "DiurnalShape",
    "ProfileShape",
    "RampShape",
    "SoakShape",
    "SpikeShape",
    "StepShape",
]

logger = logging.getLogger(__name__)


class ProfileShape(LoadTestShape):
    """A ``LoadTestShape`` that follows a :class:`~scenarios.profiles.Profile`."""

    abstract = True
    use_common_options = True  # -u is the peak and -t the default duration: no warning
    profile: ClassVar[Profile | None] = None

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        if profile is not None:
            self.profile = profile  # type: ignore[misc]
        if self.profile is None:
            raise ValueError(f"{type(self).__name__} needs a profile")

    def tick(self) -> tuple[int, float] | None:
        assert self.profile is not None
        users = self.profile.users_at(self.get_run_time())
        if users is None:
            return None
        return users, self.profile.spawn_rate


class RampShape(ProfileShape):
    """Ramp to the peak and hold."""


class StepShape(ProfileShape):
    """Staircase for capacity search."""


class SpikeShape(ProfileShape):
    """Rest, sudden spike, recovery."""


class SoakShape(ProfileShape):
    """Long constant load."""


class DiurnalShape(ProfileShape):
    """A national day compressed into the run."""


SHAPE_CLASSES: dict[str, type[ProfileShape]] = {
    "ramp": RampShape,
    "step": StepShape,
    "spike": SpikeShape,
    "soak": SoakShape,
    "diurnal": DiurnalShape,
}
assert SHAPE_CLASSES.keys() == SHAPES.keys()


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("load shape (scenarios.shapes, scenarios.shape_specs)")
    group.add_argument(
        "--shape",
        choices=[NO_SHAPE, *SHAPES],
        default=NO_SHAPE,
        env_var="PORTAL_SHAPE",
        help="load shape to follow; its peak is -u/--users",
    )
    group.add_argument(
        "--shape-duration",
        type=float,
        default=None,
        env_var="PORTAL_SHAPE_DURATION",
        help="seconds the shape lasts; the test ends there (default: -t/--run-time)",
    )
    for name, param in option_params(SHAPES).items():
        shapes = ", ".join(s.name for s in SHAPES.values() if s.param(name) is not None)
        group.add_argument(
            param.option(SHAPE_OPTION_PREFIX),
            dest="shape_" + name,
            type=int if param.integer else float,
            default=None,
            env_var="PORTAL_SHAPE_" + name.upper(),
            help=f"{param.meaning} ({param.unit}; {shapes})",
        )


@events.init.add_listener
def _install_shape(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        profile = profile_from_options(options)
    except ShapeParamError as error:
        usage_error(f"--shape {error}")
    if profile is None:
        return
    if environment.shape_class is not None:
        logger.warning("--shape %s replaces shape %r", options.shape, type(environment.shape_class))
    shape = SHAPE_CLASSES[options.shape](profile)
    shape.runner = environment.runner
    environment.shape_class = shape
    logger.info("load shape: %r", profile)
