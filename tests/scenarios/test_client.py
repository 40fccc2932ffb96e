"""``PortalSession``: what reaches the server and what reaches Locust's request event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._probe_runner import run_probe

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_client_probe.py")
EVENT_KEYS = [
    "context",
    "exception",
    "name",
    "request_type",
    "response",
    "response_length",
    "response_time",
    "start_time",
    "url",
]


@pytest.fixture(scope="module")
def probe() -> dict:
    return dict(run_probe(PROBE))


def test_every_request_fires_one_standard_event(probe: dict) -> None:
    http = [e for e in probe["events"] if not e["type"].endswith("+CO")]
    assert all(e["keys"] == EVENT_KEYS for e in probe["events"])
    assert [e["name"] for e in http] == [
        "/json",
        "/echo [json]",
        "/echo",
        "/json",
        "/redirect",
        "/redirect",
        "/missing",
        "/json",
        "/boom",
        "/grouped/[id]",
        "/lagged",
        "/slow",
        "/json",
        "/x",
        "/holds-the-connection",
        "/queued",
    ]
    assert http[0]["length"] == len(b'{"a": 1}')
    assert http[0]["url"].endswith("/json?q=a+b")
    assert all(e["time_ms"] >= 0 for e in http)


def test_bodies_headers_and_token_reach_the_server(probe: dict) -> None:
    got = probe["received"]
    assert got[0]["query"] == "q=a+b" and got[0]["auth"] is None
    assert got[1]["auth"] == "Bearer tok-1"
    assert got[1]["ctype"] == "application/json"
    assert json.loads(got[1]["body"]) == {"k": "v"}
    assert got[1]["key"] == "K1"
    assert got[2]["ctype"] == "application/x-www-form-urlencoded"
    assert got[2]["body"] == "a=1+2&b=x"
    assert got[3]["auth"] is None  # the token was cleared


def test_keep_alive_reuses_one_connection(probe: dict) -> None:
    paths = [r["path"] for r in probe["received"]]
    before, after = paths.index("/slow"), paths.index("/slow") + 1
    assert len({r["peer"] for r in probe["received"][: before + 1]}) == 1
    # the timed-out request's connection was closed: the next request opened a new one
    assert probe["received"][after]["peer"] != probe["received"][before]["peer"]


def test_redirects_are_returned_unless_asked_to_follow(probe: dict) -> None:
    assert probe["redirect"] == [302, "/json"]
    assert probe["followed"] == [200, {"a": 1}]


def test_status_and_catch_response_decide_success(probe: dict) -> None:
    by_name = {}
    for e in probe["events"]:
        by_name.setdefault(e["name"], []).append(e)
    assert by_name["/missing"][0]["exception"] is None  # 404 marked success in the block
    assert by_name["/json"][2]["exception"] == "CatchResponseError('not what we wanted')"
    assert by_name["/boom"][0]["exception"] == "HTTPStatusError('HTTP 503')"
    assert by_name["/redirect"][0]["exception"] is None


def test_transport_errors_become_failed_responses(probe: dict) -> None:
    assert probe["refused"] == [0, "ConnectionRefusedError"]
    failed = [e for e in probe["events"] if e["name"] == "/x"]
    assert failed[0]["exception"].startswith("ConnectionRefusedError")


def test_a_request_timeout_fails_the_request_and_frees_its_connection(probe: dict) -> None:
    assert probe["timeout"] == [0, "RequestTimeout"]
    assert probe["after_timeout"] == 200
    slow = [e for e in probe["events"] if e["name"] == "/slow"]
    assert slow[0]["exception"].startswith("RequestTimeout")
    assert 200 <= slow[0]["time_ms"] < 1000


def test_start_lag_adds_a_corrected_twin(probe: dict) -> None:
    lagged = [e for e in probe["events"] if e["name"] == "/lagged"]
    assert [e["type"] for e in lagged] == ["GET", "GET+CO"]
    assert lagged[1]["time_ms"] == pytest.approx(lagged[0]["time_ms"] + 5.0)
    corrected = [e["name"] for e in probe["events"] if e["type"].endswith("+CO")]
    assert corrected == ["/lagged", "/holds-the-connection", "/queued"]


def test_waiting_for_a_connection_is_in_the_corrected_time_only(probe: dict) -> None:
    queued = [e for e in probe["events"] if e["name"] == "/queued"]
    assert [e["type"] for e in queued] == ["GET", "GET+CO"]
    # It asked 0.05 s into the other request's 0.3 s and waited until that one was read:
    # the wait is in the corrected time only (the scheduling after the release aside).
    waited_ms = probe["queue_wait_ms"]
    assert waited_ms > 100
    assert queued[1]["time_ms"] - queued[0]["time_ms"] == pytest.approx(waited_ms, abs=30)
    holder = [e for e in probe["events"] if e["name"] == "/holds-the-connection"]
    assert 300 <= holder[0]["time_ms"] == pytest.approx(holder[1]["time_ms"])


def test_header_injection_is_refused(probe: dict) -> None:
    assert "invalid request target" in probe["smuggling"]
