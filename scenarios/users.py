"""Closed-model Locust users: anonymous visitors and signed-in citizens.

Class weights and task weights come from the workload model (:mod:`scenarios.workload`), so
the mix of requests at any user count is the modelled peak mix. Each citizen user keeps one
test citizen for its life (drawn from this worker's stripe of the pool, so no two users share
one) and runs visits: journeys drawn with the model's probabilities, then the visit ends with
an explicit logout or an abandoned session, and a new visit signs in again.
"""

from __future__ import annotations

from typing import Any

from locust import task

from scenarios import journeys
from scenarios.client import PortalUser
from scenarios.journeys.context import JourneyContext
from scenarios.settings import Settings, allocator_for
from scenarios.workload import derive

__all__ = ["AnonymousVisitor", "CitizenUser"]

_MODEL = derive()
# Locust weights are integers; per mille keeps the model's proportions to 0.1 %.
_SCALE = 1000


def _weight(p: float) -> int:
    return max(1, round(_SCALE * p))


class AnonymousVisitor(PortalUser):
    """Browses the catalog without signing in."""

    weight = _weight(_MODEL.user_class_weights["anonymous"])

    def on_start(self) -> None:
        settings = Settings.from_environment(self.environment)
        self.ctx = JourneyContext(self.client, pacing=settings.pacing)

    def wait_time(self) -> float:
        return self.ctx.between_journeys()

    @task
    def browse(self) -> None:
        journeys.browse(self.ctx)


class CitizenUser(PortalUser):
    """A signed-in citizen: visits made of the model's journeys."""

    weight = _weight(_MODEL.user_class_weights["citizen"])

    def on_start(self) -> None:
        settings = Settings.from_environment(self.environment)
        citizen = allocator_for(self.environment).next()
        self.ctx = JourneyContext(self.client, citizen=citizen, pacing=settings.pacing)
        journeys.login(self.ctx)

    def wait_time(self) -> float:
        return self.ctx.between_journeys()

    def _signed_in(self, journey: Any) -> None:
        if journeys.ensure_session(self.ctx):
            journey(self.ctx)

    @task(_weight(journeys.SESSION_PROBABILITIES["browse"]))
    def browse(self) -> None:
        self._signed_in(journeys.browse)

    @task(_weight(journeys.SESSION_PROBABILITIES["status"]))
    def status(self) -> None:
        self._signed_in(journeys.status)

    @task(_weight(journeys.SESSION_PROBABILITIES["apply"]))
    def apply(self) -> None:
        self._signed_in(journeys.apply)

    @task(_weight(journeys.SESSION_PROBABILITIES["pay"]))
    def pay(self) -> None:
        self._signed_in(journeys.pay)

    @task(_weight(journeys.SESSION_PROBABILITIES["refresh"]))
    def refresh(self) -> None:
        self._signed_in(journeys.refresh)

    @task(_SCALE)
    def next_visit(self) -> None:
        """End the visit (explicit logout or abandoned session) and sign in for the next."""
        if self.ctx.tokens is not None:
            if self.ctx.rng.random() < journeys.SESSION_PROBABILITIES["logout"]:
                journeys.logout(self.ctx)
            else:
                self.ctx.set_tokens(None)
        journeys.login(self.ctx)
