"""Closed-model Locust users: anonymous visitors and signed-in citizens.

Class weights and journey weights come from the workload model (:mod:`scenarios.workload`),
so the mix of requests at any user count is the modelled peak mix. Each citizen user leases
one test account for its life (a derived citizen of this worker's stripe, or an account of
``--accounts``; never one another user holds) and runs visits: journeys drawn with the model's
probabilities, then the visit ends with an explicit logout or an abandoned session, and a new
visit signs in again.

Every choice a user makes (the next journey, and within a journey the pages, the form values
and the think times) comes from its own generator, ``self.rng``, seeded from ``--seed``, the
worker index and the user's number (:mod:`scenarios.runtime`), never from the global
``random``: the same seed gives each user the same sequence.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from locust import task

from scenarios import journeys
from scenarios.client import PortalUser
from scenarios.journeys.context import JourneyContext
from scenarios.runtime import runtime_for
from scenarios.workload import derive

__all__ = ["AnonymousVisitor", "CitizenUser", "JourneyUser"]

_MODEL = derive()
# Weights as integers per mille keep the model's proportions to 0.1 %.
_SCALE = 1000
NEXT_VISIT = "next visit"


def _weight(p: float) -> int:
    return max(1, round(_SCALE * p))


# What a signed-in user does next: one of the session's journeys, or end the visit and start
# the next (weight _SCALE: on average one visit ends per _SCALE draws of the per-mille rest).
_NEXT: tuple[str, ...] = (*journeys.SESSION_JOURNEYS, NEXT_VISIT)
_CUMULATIVE: tuple[int, ...] = tuple(
    itertools.accumulate(
        [_weight(journeys.SESSION_PROBABILITIES[name]) for name in journeys.SESSION_JOURNEYS]
        + [_SCALE]
    )
)


class JourneyUser(PortalUser):
    """A user with a number and a seeded generator of its own (``self.rng``)."""

    abstract = True
    seed_stream: ClassVar[str] = "user"
    """Names this class's generators; subclasses that keep it repeat the parent's choices."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.runtime = runtime_for(environment)
        self.number = self.runtime.next_number(self.seed_stream)
        self.rng = self.runtime.rng(self.seed_stream, self.number)

    def wait_time(self) -> float:
        return self.ctx.between_journeys()


class AnonymousVisitor(JourneyUser):
    """Browses the catalog without signing in."""

    weight = _weight(_MODEL.user_class_weights["anonymous"])
    seed_stream = "anonymous"

    def on_start(self) -> None:
        self.ctx = JourneyContext(self.client, pacing=self.runtime.settings.pacing, rng=self.rng)

    @task
    def browse(self) -> None:
        journeys.browse(self.ctx)


class CitizenUser(JourneyUser):
    """A signed-in citizen: visits made of the model's journeys."""

    weight = _weight(_MODEL.user_class_weights["citizen"])
    seed_stream = "citizen"

    def on_start(self) -> None:
        settings = self.runtime.settings
        self.account = self.runtime.lease()
        self.ctx = JourneyContext(
            self.client,
            citizen=self.account,
            pacing=settings.pacing,
            rng=self.rng,
            mfa_code=settings.mfa_code,
        )
        journeys.login(self.ctx)

    def on_stop(self) -> None:
        account = getattr(self, "account", None)
        if account is not None:
            self.runtime.release(account)
            self.account = None
        super().on_stop()

    def next_journey(self) -> str:
        """Draw what comes next: a journey's name, or :data:`NEXT_VISIT`."""
        return self.rng.choices(_NEXT, cum_weights=_CUMULATIVE)[0]

    @task
    def journey(self) -> None:
        name = self.next_journey()
        if name == NEXT_VISIT:
            self.next_visit()
        elif journeys.ensure_session(self.ctx):
            journeys.SESSION_JOURNEYS[name](self.ctx)

    def next_visit(self) -> None:
        """End the visit (explicit logout or abandoned session) and sign in for the next."""
        if self.ctx.tokens is not None:
            if self.rng.random() < journeys.SESSION_PROBABILITIES["logout"]:
                journeys.logout(self.ctx)
            else:
                self.ctx.set_tokens(None)
        journeys.login(self.ctx)
