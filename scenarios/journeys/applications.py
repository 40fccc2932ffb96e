"""Applying for a service: read its form, fill it validly, submit, follow the status, rate.

The status moves submitted -> in_review -> approved | rejected on the portal's clock; the
journey polls until the decision (bounded by ``Pacing.poll_timeout_s``) and then, for a share
of applications (``Assumptions.rating_share``), gives the "Your control" rating: five criteria
from 1 to 5.
"""

from __future__ import annotations

import re
import string
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from scenarios.funnel import Journey
from scenarios.journeys.catalog import SERVICE_NAME, service_codes
from scenarios.workload import Assumptions

if TYPE_CHECKING:
    import random

    from scenarios.journeys.context import JourneyContext

__all__ = ["APPLICATION_NAME", "CRITERIA", "apply", "fill_form"]

APPLICATION_NAME = "/api/v1/applications/[id]"
RATING_NAME = "/api/v1/applications/[id]/rating"
CRITERIA = ("service_time", "waiting_time", "courtesy", "comfort", "information")
DECIDED = frozenset(("approved", "rejected"))
STATUSES = frozenset(("submitted", "in_review", *DECIDED))
OPTIONAL_FILL_SHARE = 0.5  # citizens fill half of the optional fields
_PLATE_LETTERS = "ABEKMHOPCTYX"  # Latin letters that have Cyrillic twins on Russian plates

_ASSUMPTIONS = Assumptions()


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _value(field: dict[str, Any], rng: random.Random, email: str) -> Any:
    kind = field.get("type")
    if kind == "integer":
        low = int(field.get("min", 0))
        high = int(field.get("max", low + 100))
        return rng.randint(low, high)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "choice":
        return rng.choice(field["options"])
    if kind == "date":
        return (date(1960, 1, 1) + timedelta(days=rng.randrange(60 * 365))).isoformat()
    if kind == "snils":
        d = _digits(rng, 11)
        return f"{d[:3]}-{d[3:6]}-{d[6:9]} {d[9:]}"
    if kind == "inn":
        return _digits(rng, 12)
    if kind == "passport":
        return f"{_digits(rng, 4)} {_digits(rng, 6)}"
    if kind == "phone":
        return "+7" + _digits(rng, 10)
    if kind == "email":
        return email
    if kind == "vehicle_plate":
        letters = [rng.choice(_PLATE_LETTERS) for _ in range(3)]
        return f"{letters[0]}{_digits(rng, 3)}{letters[1]}{letters[2]}{_digits(rng, 2)}"
    if kind == "text":
        text = f"{field.get('name', 'value').replace('_', ' ')} {_digits(rng, 6)}"
        return text[: int(field.get("max_length", 300))]
    return field.get("example")


def fill_form(fields: list[dict[str, Any]], rng: random.Random, email: str) -> dict[str, Any]:
    """Values for a service's form: every required field, some optional ones.

    A generated value that does not match the field's published ``pattern`` is replaced by
    the field's ``example`` (the portal publishes one that passes).
    """
    values: dict[str, Any] = {}
    for field in fields:
        if not field.get("required") and rng.random() >= OPTIONAL_FILL_SHARE:
            continue
        value = _value(field, rng, email)
        pattern = field.get("pattern")
        if isinstance(value, str) and pattern and not re.match(pattern, value):
            value = field.get("example", value)
        if value is not None:
            values[field["name"]] = value
    return values


def _status_ok(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("status") not in STATUSES:
        return "application without a known status"
    return None


def apply(ctx: JourneyContext) -> bool:
    """Apply for a random service as the signed-in citizen."""
    citizen = ctx.citizen
    if citizen is None or ctx.tokens is None:
        raise ValueError("apply needs a signed-in citizen")
    with Journey(ctx, "apply", ("form", "submitted", "decided", "rated")) as j:
        rng = ctx.rng
        code = rng.choice(service_codes(j))
        _, service = j.call(
            "GET",
            f"/api/v1/services/{code}",
            name=SERVICE_NAME,
            check=lambda b: None if isinstance(b, dict) and "fields" in b else "no form fields",
        )
        j.step("form")
        ctx.think()
        fields = fill_form(service["fields"], rng, citizen.email)
        resp, app = j.call(
            "POST",
            "/api/v1/applications",
            json={"service_code": code, "fields": fields},
            expect=201,
            check=_status_ok,
        )
        location = resp.header("Location") or ""
        if not location.endswith(f"/api/v1/applications/{app.get('id')}"):
            j.fail("Location does not name the new application")
        j.step("submitted")
        deadline = time.monotonic() + ctx.pacing.poll_timeout_s
        status = app["status"]
        while status not in DECIDED:
            if time.monotonic() > deadline:
                j.fail(f"still {status} after {ctx.pacing.poll_timeout_s:.0f} s")
            ctx.poll_pause()
            _, app = j.call("GET", location, name=APPLICATION_NAME, check=_status_ok)
            status = app["status"]
        j.step("decided")
        if rng.random() < _ASSUMPTIONS.rating_share:
            ctx.think()
            scores = {name: rng.randint(1, 5) for name in CRITERIA}
            j.call(
                "POST",
                f"{location}/rating",
                json=scores,
                expect=201,
                name=RATING_NAME,
                check=lambda b: (
                    None
                    if isinstance(b, dict) and all(b.get(k) == v for k, v in scores.items())
                    else "rating not recorded as sent"
                ),
            )
            j.step("rated")
    return j.ok
