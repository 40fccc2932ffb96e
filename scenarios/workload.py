"""The workload model: from the portal's published figures to a load-test mix.

Every default below is either one of the portal's published figures (quoted with their
sources in ``docs/workload-model.md``) or an assumption stated with its reason;
:func:`derive` turns them into the numbers a campaign needs: requests per
journey, journey mix, each journey's share of requests at the peak, journeys per user-hour,
the concurrent virtual users that produce the peak request rate, and the day's
peak-to-average ratio. Change one assumption and everything recomputes::

    >>> from dataclasses import replace
    >>> model = derive(replace(Assumptions(), step_think_s=1.0))
    >>> round(model.peak_users) < round(derive(Assumptions()).peak_users)
    True

``python -m scenarios.workload`` prints the model as the Markdown table that
``docs/workload-model.md`` embeds. Pure arithmetic: no Locust, no gevent.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from scenarios.profiles import NATIONAL_DAY_HOURLY, peak_to_average

__all__ = ["JOURNEYS", "Assumptions", "JourneyCost", "WorkloadModel", "derive", "render_markdown"]

SECONDS_PER_DAY = 86_400
PORTAL_PEAK_RPS = 7_000.0
"""Seed: "more than 7000 user requests per second were processed at the peak"."""
DAYS_PER_YEAR = 365

JOURNEYS = ("browse", "login", "status", "apply", "pay", "refresh", "logout")
"""Journey names, in the order the model reports them."""


@dataclass(frozen=True, kw_only=True)
class Assumptions:
    """Inputs of the workload model. Seeds are marked; the rest are stated assumptions."""

    # --- seed figures -------------------------------------------------------------------
    daily_users: int = 4_000_000
    """Seed: "average daily audience ... exceeded 4 million users per day"."""
    peak_rps: float = PORTAL_PEAK_RPS
    """Seed: the national peak (:data:`PORTAL_PEAK_RPS`)."""
    payments_per_year: int = 85_000_000
    """Seed: "almost 85 million payments were also made through the portal"."""
    service_types: int = 500
    """Seed: "more than 500 types of various government services"."""
    hits_per_year: int = 1_500_000_000
    """Seed: "the number of hits to the portal over the last year has exceeded 1.5 billion"."""

    # --- the day --------------------------------------------------------------------------
    hourly_profile: tuple[float, ...] = field(default=NATIONAL_DAY_HOURLY, repr=False)
    """Relative traffic per hour of Moscow time (``scenarios.profiles.NATIONAL_DAY_HOURLY``)."""

    # --- the visit -------------------------------------------------------------------------
    anonymous_share: float = 0.30
    """Visits that only browse the catalog without signing in (information seekers)."""
    mfa_share: float = 0.20
    """Citizens with a second factor: the test pool gives one to every fifth citizen."""
    browse_per_session: float = 0.40
    """Signed-in visits that also browse the catalog."""
    status_per_session: float = 0.70
    """Signed-in visits that check their applications and charges (the portal's main page)."""
    apply_per_session: float = 0.15
    """Signed-in visits that submit an application (not in the seeds; an assumption)."""
    rating_share: float = 0.50
    """Applications rated in "Your control" after the decision."""
    refresh_per_session: float = 0.25
    """Signed-in visits long enough to refresh their access token."""
    logout_per_session: float = 0.30
    """Signed-in visits that sign out explicitly (the rest let the session expire)."""
    charges_per_payment_journey: float = 1.0
    """Charges a pay journey pays (one: each payment is its own checkout)."""

    # --- journey steps (the journeys in scenarios/journeys read these) ------------------------
    catalog_pages: int = 2
    """Catalog listings per browse: the first page and one search or category filter."""
    service_views: int = 2
    """Service cards opened per browse."""
    application_polls: int = 3
    """Status polls until an application is decided (mock default decision time / interval)."""
    payment_polls: int = 2
    """Status polls until a payment is settled."""

    # --- timing ------------------------------------------------------------------------------
    mean_response_s: float = 0.05
    """Mean response time at the peak (the SLO's median order of magnitude)."""
    step_think_s: float = 3.0
    """Mean pause before a human step inside a journey (reading, typing, confirming)."""
    journey_think_s: float = 10.0
    """Mean pause between two journeys of one visit."""
    poll_interval_s: float = 2.0
    """Pause between two status polls (a browser page refreshing the status)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise ValueError(f"assumption {f.name} must be >= 0, got {value!r}")
        for name in (
            "anonymous_share",
            "mfa_share",
            "browse_per_session",
            "status_per_session",
            "apply_per_session",
            "rating_share",
            "refresh_per_session",
            "logout_per_session",
        ):
            if getattr(self, name) > 1:
                raise ValueError(f"assumption {name} is a probability, got {getattr(self, name)!r}")
        if self.daily_users <= 0 or self.peak_rps <= 0:
            raise ValueError("daily_users and peak_rps must be positive")


@dataclass(frozen=True, kw_only=True)
class JourneyCost:
    """Mean cost of one journey: requests, human pauses and status polls."""

    requests: float
    pauses: float
    polls: float

    def duration_s(self, a: Assumptions) -> float:
        """Mean wall time of the journey for one virtual user."""
        return (
            self.requests * a.mean_response_s
            + self.pauses * a.step_think_s
            + self.polls * a.poll_interval_s
        )


def journey_costs(a: Assumptions) -> dict[str, JourneyCost]:
    """Requests, pauses and polls of each journey, step by step as the journeys run them."""
    browse = a.catalog_pages + a.service_views
    return {
        # catalog listings and service cards, a pause before each but the first
        "browse": JourneyCost(requests=browse, pauses=browse - 1, polls=0),
        # authorize, login, [otp], token, me; typing the password and the one-time code
        "login": JourneyCost(requests=4 + a.mfa_share, pauses=1 + a.mfa_share, polls=0),
        # list applications, open the newest, list charges
        "status": JourneyCost(requests=3, pauses=2, polls=0),
        # service form, submit, polls, rating
        "apply": JourneyCost(
            requests=2 + a.application_polls + a.rating_share,
            pauses=1 + a.rating_share,
            polls=a.application_polls,
        ),
        # charges, pay, polls, receipt
        "pay": JourneyCost(requests=3 + a.payment_polls, pauses=1, polls=a.payment_polls),
        "refresh": JourneyCost(requests=1, pauses=0, polls=0),
        "logout": JourneyCost(requests=1, pauses=0, polls=0),
    }


@dataclass(frozen=True, kw_only=True)
class WorkloadModel:
    """Everything :func:`derive` computes; all rates per second unless the name says."""

    assumptions: Assumptions
    costs: MappingProxyType[str, JourneyCost]
    visits_per_day: float
    visits_per_user_day: float
    payments_per_day: float
    pay_per_session: float
    journeys_per_visit: MappingProxyType[str, float]
    journey_share: MappingProxyType[str, float]
    request_share: MappingProxyType[str, float]
    requests_per_visit: float
    requests_per_journey: float
    peak_to_average: float
    average_rps: float
    journey_rps_busiest_hour: float
    edge_amplification: float
    visit_duration_s: MappingProxyType[str, float]
    busiest_hour_visitors: float
    user_class_weights: MappingProxyType[str, float]
    journeys_per_user_hour: float
    requests_per_user_s: float
    peak_users: float
    peak_journeys_per_s: MappingProxyType[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "assumptions"}


def derive(a: Assumptions | None = None) -> WorkloadModel:
    """Compute the workload model from its assumptions (the defaults when ``a`` is None)."""
    a = Assumptions() if a is None else a
    costs = journey_costs(a)

    # Seed: 1.5 billion hits a year against 4 million users a day is one visit per user-day.
    visits_per_day = a.hits_per_year / DAYS_PER_YEAR
    visits_per_user_day = visits_per_day / a.daily_users
    sessions_per_day = visits_per_day * (1 - a.anonymous_share)
    payments_per_day = a.payments_per_year / DAYS_PER_YEAR
    # The payment rate is a seed: it fixes how many signed-in visits pay.
    pay_per_session = min(
        1.0, payments_per_day / a.charges_per_payment_journey / max(sessions_per_day, 1.0)
    )

    per_session = {
        "browse": a.browse_per_session,
        "login": 1.0,
        "status": a.status_per_session,
        "apply": a.apply_per_session,
        "pay": pay_per_session,
        "refresh": a.refresh_per_session,
        "logout": a.logout_per_session,
    }
    auth = 1 - a.anonymous_share
    journeys_per_visit = {name: auth * per_session[name] for name in JOURNEYS}
    journeys_per_visit["browse"] += a.anonymous_share
    total_journeys = sum(journeys_per_visit.values())
    journey_share = {n: journeys_per_visit[n] / total_journeys for n in JOURNEYS}
    requests = {n: journeys_per_visit[n] * costs[n].requests for n in JOURNEYS}
    requests_per_visit = sum(requests.values())
    request_share = {n: requests[n] / requests_per_visit for n in JOURNEYS}

    par = peak_to_average(a.hourly_profile)
    average_rps = visits_per_day * requests_per_visit / SECONDS_PER_DAY
    busiest_hour_rps = average_rps * par
    # The seeds' 7,000 requests per second count everything the portal's edge answers; our
    # journeys model API calls only. The ratio says how many edge requests one API call of the
    # model stands for; the load test drives the peak rate with API calls alone.
    edge_amplification = a.peak_rps / busiest_hour_rps

    # Closed model: one virtual user runs journeys back to back with a think time between.
    cycle_s = {n: costs[n].duration_s(a) + a.journey_think_s for n in JOURNEYS}
    anon_visit_s = costs["browse"].duration_s(a) + a.journey_think_s
    session_visit_s = sum(per_session[n] * cycle_s[n] for n in JOURNEYS)
    visit_duration_s = {"anonymous": anon_visit_s, "citizen": session_visit_s}
    # Locust weighs user classes by how many run at once: visits times their duration.
    user_time = {"anonymous": a.anonymous_share * anon_visit_s, "citizen": auth * session_visit_s}
    user_class_weights = {k: v / sum(user_time.values()) for k, v in user_time.items()}
    # Little's law: people on the portal at once = visit arrival rate x visit duration.
    mean_visit_s = a.anonymous_share * anon_visit_s + auth * session_visit_s
    busiest_hour_visitors = visits_per_day / SECONDS_PER_DAY * par * mean_visit_s

    mean_cycle_s = sum(journey_share[n] * cycle_s[n] for n in JOURNEYS)
    requests_per_journey = requests_per_visit / total_journeys
    journeys_per_user_hour = 3600.0 / mean_cycle_s
    requests_per_user_s = requests_per_journey / mean_cycle_s
    peak_users = a.peak_rps / requests_per_user_s
    peak_journeys_per_s = {n: a.peak_rps * request_share[n] / costs[n].requests for n in JOURNEYS}

    freeze = MappingProxyType
    return WorkloadModel(
        assumptions=a,
        costs=freeze(costs),
        visits_per_day=visits_per_day,
        visits_per_user_day=visits_per_user_day,
        payments_per_day=payments_per_day,
        pay_per_session=pay_per_session,
        journeys_per_visit=freeze(journeys_per_visit),
        journey_share=freeze(journey_share),
        request_share=freeze(request_share),
        requests_per_visit=requests_per_visit,
        requests_per_journey=requests_per_journey,
        peak_to_average=par,
        average_rps=average_rps,
        journey_rps_busiest_hour=busiest_hour_rps,
        edge_amplification=edge_amplification,
        visit_duration_s=freeze(visit_duration_s),
        busiest_hour_visitors=busiest_hour_visitors,
        user_class_weights=freeze(user_class_weights),
        journeys_per_user_hour=journeys_per_user_hour,
        requests_per_user_s=requests_per_user_s,
        peak_users=peak_users,
        peak_journeys_per_s=freeze(peak_journeys_per_s),
    )


def render_markdown(model: WorkloadModel) -> str:
    """The model as Markdown tables (embedded verbatim in ``docs/workload-model.md``)."""
    a = model.assumptions
    lines = [
        "| journey | requests | pauses | polls | journeys per visit | share of journeys "
        "| share of requests | journeys/s at peak |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in JOURNEYS:
        c = model.costs[n]
        lines.append(
            f"| {n} | {c.requests:.2f} | {c.pauses:.2f} | {c.polls:.0f} "
            f"| {model.journeys_per_visit[n]:.4f} | {model.journey_share[n]:.1%} "
            f"| {model.request_share[n]:.1%} | {model.peak_journeys_per_s[n]:.0f} |"
        )
    lines += [
        "",
        "| quantity | value |",
        "|---|---:|",
        f"| visits per day (hits per year / 365) | {model.visits_per_day:,.0f} |",
        f"| visits per user-day (visits per day / daily users) | {model.visits_per_user_day:.2f} |",
        f"| payments per day (payments per year / 365) | {model.payments_per_day:,.0f} |",
        f"| pay journeys per signed-in visit | {model.pay_per_session:.4f} |",
        f"| API requests per visit | {model.requests_per_visit:.2f} |",
        f"| API requests per journey (mix mean) | {model.requests_per_journey:.2f} |",
        f"| peak-to-average ratio of the day | {model.peak_to_average:.2f} |",
        f"| average API requests/s over the day | {model.average_rps:,.0f} |",
        f"| API requests/s in the busiest hour | {model.journey_rps_busiest_hour:,.0f} |",
        f"| edge requests per modelled API request (seed peak / busiest hour) "
        f"| {model.edge_amplification:.1f} |",
        f"| anonymous visit duration, s | {model.visit_duration_s['anonymous']:.1f} |",
        f"| signed-in visit duration, s | {model.visit_duration_s['citizen']:.1f} |",
        f"| people on the portal at once in the busiest hour (Little's law) "
        f"| {model.busiest_hour_visitors:,.0f} |",
        f"| user class weight: anonymous | {model.user_class_weights['anonymous']:.1%} |",
        f"| user class weight: citizen | {model.user_class_weights['citizen']:.1%} |",
        f"| journeys per virtual-user hour | {model.journeys_per_user_hour:.1f} |",
        f"| requests/s per virtual user | {model.requests_per_user_s:.4f} |",
        f"| concurrent virtual users for {a.peak_rps:,.0f} requests/s | {model.peak_users:,.0f} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Print the model; ``--set name=value`` changes an assumption."""
    parser = argparse.ArgumentParser(prog="python -m scenarios.workload", description=__doc__)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one assumption, e.g. --set step_think_s=1.5 (repeatable)",
    )
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    known = {f.name: f for f in fields(Assumptions)}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or name not in known or name == "hourly_profile":
            parser.error(f"--set wants NAME=VALUE with NAME one of the numeric assumptions: {item}")
        default = getattr(Assumptions(), name)
        overrides[name] = type(default)(float(value)) if isinstance(default, int) else float(value)
    print(render_markdown(derive(replace(Assumptions(), **overrides))), end="")


if __name__ == "__main__":
    main()
