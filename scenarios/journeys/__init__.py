"""The portal's user journeys, one module each, and the visits they make up.

==============  ======================================================  ==========================
journey         what it does                                            module
==============  ======================================================  ==========================
browse          anonymous catalog: listing, search, service cards       :mod:`.catalog`
login           SSO with PKCE, second factor, tokens, profile           :mod:`.sso`
refresh         refresh-token grant (rotation)                          :mod:`.sso`
logout          token revocation                                        :mod:`.sso`
status          one's applications and charges                          :mod:`.account`
apply           service form, submission, status polls, rating          :mod:`.applications`
pay             charges, idempotent payment with retries, receipt       :mod:`.payments`
==============  ======================================================  ==========================

Every journey takes a :class:`~.context.JourneyContext` and returns True when it completed;
failures are recorded (request failures with reasons, ``JOURNEY`` and ``FUNNEL`` events), never
raised. The per-visit probabilities come from the workload model (:mod:`scenarios.workload`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from scenarios.journeys.account import status
from scenarios.journeys.applications import apply
from scenarios.journeys.catalog import browse
from scenarios.journeys.payments import pay
from scenarios.journeys.sso import ensure_session, login, logout, refresh
from scenarios.workload import derive

if TYPE_CHECKING:
    from collections.abc import Callable

    from scenarios.journeys.context import JourneyContext

__all__ = [
    "SESSION_JOURNEYS",
    "SESSION_PROBABILITIES",
    "anonymous_visit",
    "apply",
    "browse",
    "citizen_visit",
    "ensure_session",
    "login",
    "logout",
    "pay",
    "refresh",
    "status",
]

_MODEL = derive()

SESSION_JOURNEYS: MappingProxyType[str, Callable[[JourneyContext], bool]] = MappingProxyType(
    {"browse": browse, "status": status, "apply": apply, "pay": pay, "refresh": refresh}
)
"""Journeys of a signed-in visit, in the order a visit runs them."""

SESSION_PROBABILITIES: MappingProxyType[str, float] = MappingProxyType(
    {
        "browse": _MODEL.assumptions.browse_per_session,
        "status": _MODEL.assumptions.status_per_session,
        "apply": _MODEL.assumptions.apply_per_session,
        "pay": _MODEL.pay_per_session,
        "refresh": _MODEL.assumptions.refresh_per_session,
        "logout": _MODEL.assumptions.logout_per_session,
    }
)
"""Probability that a signed-in visit runs each journey (workload model defaults)."""


def anonymous_visit(ctx: JourneyContext) -> bool:
    """A visit that only browses the catalog."""
    return browse(ctx)


def citizen_visit(ctx: JourneyContext) -> bool:
    """A signed-in visit: login, the journeys the visit draws, sometimes an explicit logout."""
    if not login(ctx):
        return False
    ok = True
    for name, journey in SESSION_JOURNEYS.items():
        if ctx.rng.random() >= SESSION_PROBABILITIES[name]:
            continue
        ctx.think(ctx.pacing.journey_think_s)
        if not ensure_session(ctx):
            return False
        ok = journey(ctx) and ok
    if ctx.rng.random() < SESSION_PROBABILITIES["logout"]:
        ok = logout(ctx) and ok
    else:
        ctx.set_tokens(None)
    return ok
