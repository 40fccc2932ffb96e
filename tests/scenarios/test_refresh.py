"""A citizen's tokens are refreshed before a journey when close to expiry, and only then."""

from __future__ import annotations

from pathlib import Path

from ._probe_runner import run_probe


def test_ensure_session_refreshes_only_near_expiry() -> None:
    got = run_probe(Path(__file__).with_name("_refresh_probe.py"))
    assert got == {
        # a 900 s token: refreshed once less than 20 % (180 s) is left
        "fresh": [],
        "at 25 %": [],
        "at 15 %": ["refresh"],
        "10 s": ["refresh"],
        # a short token: 20 % would be 12 s, but never later than 30 s before expiry
        "60 s token, 40 s left": [],
        "60 s token, 20 s left": ["refresh"],
        "signed out": ["login"],
    }
