"""Options of the journeys: pacing and the citizen pool, as Locust custom arguments.

Each option is also read from the environment (``PORTAL_THINK_SCALE`` for
``--think-scale``, and so on); Locust forwards custom arguments from the master to its
workers, so a distributed run is configured in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from locust import events

from scenarios.citizens import DEFAULT_POOL_SIZE, DEFAULT_STRIDE, CitizenAllocator
from scenarios.journeys.context import Pacing

__all__ = ["Settings", "allocator_for"]

_DEFAULT_PACING = Pacing()


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The journeys' options as parsed (defaults when Locust is used as a library)."""

    pacing: Pacing = _DEFAULT_PACING
    citizen_stride: int = DEFAULT_STRIDE
    citizen_offset: int = 0
    citizen_pool: int = DEFAULT_POOL_SIZE

    @classmethod
    def from_environment(cls, environment: Any) -> Settings:
        options = getattr(environment, "parsed_options", None)
        if options is None or not hasattr(options, "think_scale"):
            return cls()
        return cls(
            pacing=Pacing(
                think_scale=options.think_scale,
                poll_interval_s=options.poll_interval,
                poll_timeout_s=options.poll_timeout,
                payment_timeout_s=options.payment_timeout,
            ),
            citizen_stride=options.citizen_stride,
            citizen_offset=options.citizen_offset,
            citizen_pool=options.citizen_pool,
        )


_ALLOCATORS: dict[int, CitizenAllocator] = {}


def allocator_for(environment: Any) -> CitizenAllocator:
    """This process's citizen allocator (its stripe follows the Locust worker index)."""
    allocator = _ALLOCATORS.get(id(environment))
    if allocator is None:
        settings = Settings.from_environment(environment)
        runner = getattr(environment, "runner", None)
        worker_index = max(0, getattr(runner, "worker_index", 0) or 0)
        allocator = CitizenAllocator(
            worker_index=worker_index,
            stride=settings.citizen_stride,
            pool_size=settings.citizen_pool,
            offset=settings.citizen_offset,
        )
        _ALLOCATORS[id(environment)] = allocator
    return allocator


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("journeys (scenarios.settings)")
    group.add_argument(
        "--think-scale",
        type=float,
        default=1.0,
        env_var="PORTAL_THINK_SCALE",
        help="multiplier of every human pause (0 removes them; the workload model's means at 1)",
    )
    group.add_argument(
        "--poll-interval",
        type=float,
        default=_DEFAULT_PACING.poll_interval_s,
        env_var="PORTAL_POLL_INTERVAL",
        help="seconds between two status polls of an application or payment",
    )
    group.add_argument(
        "--poll-timeout",
        type=float,
        default=_DEFAULT_PACING.poll_timeout_s,
        env_var="PORTAL_POLL_TIMEOUT",
        help="seconds a journey waits for a decision or a settlement before failing",
    )
    group.add_argument(
        "--payment-timeout",
        type=float,
        default=_DEFAULT_PACING.payment_timeout_s,
        env_var="PORTAL_PAYMENT_TIMEOUT",
        help="seconds a payment request may take before it is retried with the same key",
    )
    group.add_argument(
        "--citizen-stride",
        type=int,
        default=DEFAULT_STRIDE,
        env_var="PORTAL_CITIZEN_STRIDE",
        help="at least the number of workers: worker w uses citizens w, w+stride, ...",
    )
    group.add_argument(
        "--citizen-offset",
        type=int,
        default=0,
        env_var="PORTAL_CITIZEN_OFFSET",
        help="first citizen index (separates concurrent campaigns against one deployment)",
    )
    group.add_argument(
        "--citizen-pool",
        type=int,
        default=DEFAULT_POOL_SIZE,
        env_var="PORTAL_CITIZEN_POOL",
        help="size of the deployment's test citizen pool",
    )
