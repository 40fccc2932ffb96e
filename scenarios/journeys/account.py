"""Checking one's own applications and charges: the portal's personal page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scenarios.funnel import Journey
from scenarios.journeys.applications import APPLICATION_NAME

if TYPE_CHECKING:
    from scenarios.journeys.context import JourneyContext

__all__ = ["status"]


def _listing_ok(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return "listing without items"
    return None


def status(ctx: JourneyContext) -> bool:
    """List the citizen's applications, open the newest, list outstanding charges."""
    if ctx.tokens is None:
        raise ValueError("status needs a signed-in citizen")
    with Journey(ctx, "status", ("applications", "application", "charges")) as j:
        _, apps = j.call("GET", "/api/v1/applications", check=_listing_ok)
        j.step("applications")
        ctx.think()
        if apps["items"]:
            newest = apps["items"][0]
            j.call(
                "GET",
                f"/api/v1/applications/{newest['id']}",
                name=APPLICATION_NAME,
                check=lambda b: (
                    None
                    if isinstance(b, dict) and b.get("id") == newest["id"]
                    else "another application"
                ),
            )
            j.step("application")
            ctx.think()
        j.call("GET", "/api/v1/payments/charges", check=_listing_ok)
        j.step("charges")
    return j.ok
