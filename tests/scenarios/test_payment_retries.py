"""The pay journey retries a failed or unanswered payment with the same key and body."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._probe_runner import run_probe

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_payment_probe.py")


@pytest.fixture(scope="module")
def probe() -> dict:
    return dict(run_probe(PROBE))


def test_every_attempt_carries_the_first_key_and_body(probe: dict) -> None:
    posts = probe["posts"]
    assert len(posts) == 3
    assert len({p["key"] for p in posts}) == 1 and posts[0]["key"]
    assert all(p["body"] == posts[0]["body"] for p in posts)
    assert posts[0]["body"]["charge_id"] == "CH-7-0"
    assert posts[0]["body"]["amount_kopecks"] == 150_000


def test_the_journey_completes_and_records_each_attempt(probe: dict) -> None:
    assert probe["ok"] is True
    attempts = [e for e in probe["events"] if e[0] == "POST"]
    assert [name for _, name, _ in attempts] == [
        "/api/v1/payments",
        "/api/v1/payments [retry]",
        "/api/v1/payments [retry]",
    ]
    assert "503" in attempts[0][2]
    assert "HTTP 0" in attempts[1][2]  # the timed-out attempt
    assert attempts[2][2] is None
    funnel = [name for kind, name, _ in probe["events"] if kind == "FUNNEL"]
    assert funnel == [
        "pay/1 charges",
        "pay/3 retry",
        "pay/3 retry",
        "pay/4 paid",
        "pay/5 settled",
        "pay/6 receipt",
    ]
    assert ("JOURNEY", "pay", None) in [tuple(e) for e in probe["events"]]
