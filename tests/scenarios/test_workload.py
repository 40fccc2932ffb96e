"""The workload model's arithmetic, checked by hand from the seeds."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from scenarios.workload import JOURNEYS, Assumptions, derive, journey_costs, main, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "workload-model.md"


def test_seed_rates_per_day() -> None:
    model = derive()
    assert model.visits_per_day == pytest.approx(1_500_000_000 / 365)
    assert model.payments_per_day == pytest.approx(85_000_000 / 365)
    assert model.visits_per_user_day == pytest.approx(1_500_000_000 / 365 / 4_000_000)


def test_pay_share_reproduces_the_yearly_payments() -> None:
    a = Assumptions()
    model = derive(a)
    pay_journeys_per_day = model.visits_per_day * model.journeys_per_visit["pay"]
    payments_per_year = pay_journeys_per_day * a.charges_per_payment_journey * 365
    assert payments_per_year == pytest.approx(a.payments_per_year)


def test_requests_per_journey_follow_the_steps() -> None:
    a = Assumptions()
    costs = journey_costs(a)
    assert costs["browse"].requests == a.catalog_pages + a.service_views == 4
    assert costs["login"].requests == pytest.approx(4.2)  # 4 requests, +1 for 1 in 5 citizens
    assert costs["apply"].requests == pytest.approx(2 + 3 + 0.5)
    assert costs["pay"].requests == 3 + a.payment_polls


def test_shares_sum_to_one_and_requests_add_up() -> None:
    model = derive()
    assert math.fsum(model.journey_share.values()) == pytest.approx(1.0)
    assert math.fsum(model.request_share.values()) == pytest.approx(1.0)
    assert math.fsum(model.user_class_weights.values()) == pytest.approx(1.0)
    per_visit = math.fsum(model.journeys_per_visit[n] * model.costs[n].requests for n in JOURNEYS)
    assert model.requests_per_visit == pytest.approx(per_visit)


def test_peak_users_times_their_rate_is_the_seed_peak() -> None:
    model = derive()
    assert model.peak_users * model.requests_per_user_s == pytest.approx(7_000.0)
    journeys_per_s = math.fsum(model.peak_journeys_per_s.values())
    assert journeys_per_s * model.requests_per_journey == pytest.approx(7_000.0)


def test_peak_to_average_is_the_hourly_curve_ratio() -> None:
    flat = derive(replace(Assumptions(), hourly_profile=(1.0,) * 24))
    assert flat.peak_to_average == pytest.approx(1.0)
    assert flat.journey_rps_busiest_hour == pytest.approx(flat.average_rps)
    peaked = derive(replace(Assumptions(), hourly_profile=(1.0,) * 23 + (3.0,)))
    assert peaked.peak_to_average == pytest.approx(3.0 / (26.0 / 24))


def test_changing_one_assumption_recomputes_everything_downstream() -> None:
    base = derive()
    slower = derive(replace(Assumptions(), step_think_s=6.0))
    assert slower.peak_users > base.peak_users
    assert slower.journeys_per_user_hour < base.journeys_per_user_hour
    assert slower.request_share == base.request_share  # the mix does not depend on pacing
    more_mfa = derive(replace(Assumptions(), mfa_share=1.0))
    assert more_mfa.costs["login"].requests == 5


def test_invalid_assumptions_are_refused() -> None:
    with pytest.raises(ValueError, match="probability"):
        Assumptions(anonymous_share=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        Assumptions(step_think_s=-1.0)


def test_the_document_embeds_the_current_model() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- BEGIN GENERATED.*?-->\n(.*?)<!-- END GENERATED -->", text, flags=re.DOTALL
    )
    assert block is not None, "docs/workload-model.md lacks its generated block"
    assert block.group(1) == render_markdown(derive())


def test_cli_override_changes_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--set", "peak_rps=14000"])
    out = capsys.readouterr().out
    users = derive(replace(Assumptions(), peak_rps=14_000.0)).peak_users
    assert f"| concurrent virtual users for 14,000 requests/s | {users:,.0f} |" in out
