"""SLO thresholds: parsing (k6-like, with one-line errors) and evaluation on a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import UsageError
from harness.gate.baseline import load_run
from harness.gate.slo import abort_reason, evaluate, parse_slo, parse_target, parse_threshold

from ._runs import write_run

TOTAL = parse_target("total", "slo")


@pytest.mark.parametrize(
    ("text", "metric", "percentile", "op", "value"),
    [
        ("p95 < 300ms", "p", 95.0, "<", 300.0),
        ("p(99.9) < 1s", "p", 99.9, "<", 1000.0),
        ("p99.9<=1.5s", "p", 99.9, "<=", 1500.0),
        ("avg < 250", "avg", None, "<", 250.0),
        ("mean < 250us", "avg", None, "<", 0.25),
        ("med > 1m", "med", None, ">", 60_000.0),
        ("error_rate < 0.1%", "error_rate", None, "<", 0.001),
        ("error_rate < 0.02", "error_rate", None, "<", 0.02),
        ("rps > 900", "rps", None, ">", 900.0),
        ("count >= 100", "count", None, ">=", 100.0),
    ],
)
def test_thresholds_parse_like_k6(text, metric, percentile, op, value) -> None:
    t = parse_threshold(text, "slo.total", TOTAL)
    assert (t.metric, t.percentile, t.op) == (metric, percentile, op)
    assert t.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("p95 300ms", "malformed threshold"),
        ("p95 < fast", "malformed threshold"),
        ("p95 < 10%", "a latency takes"),
        ("p(abc) < 1s", "p(...) needs a number"),
        ("p0 < 1s", "percentile must be in (0, 100]"),
        ("p101 < 1s", "percentile must be in (0, 100]"),
        ("latency < 1s", "unknown metric 'latency'"),
        ("error_rate < 5ms", "fraction or a percentage"),
        ("error_rate < 150%", "within 0..1"),
        ("rps > 9s", "plain number"),
        ("conversion > 90%", "funnel:NAME"),
        ("p95(3) < 1s", "not both"),
    ],
)
def test_malformed_thresholds_say_what_is_wrong_in_one_line(text, says) -> None:
    with pytest.raises(UsageError) as info:
        parse_threshold(text, "slo.toml: slo.total", TOTAL)
    message = str(info.value)
    assert says in message
    assert message.startswith("slo.toml: slo.total")
    assert "\n" not in message


def test_table_form_and_targets() -> None:
    objectives = parse_slo(
        {
            "total": ["p95 < 300ms"],
            "GET /api/v1/me": [
                {"threshold": "p99 < 100ms", "abort_on_fail": True, "delay_abort_eval": "2s"}
            ],
            "/api/v1/services": "p50 < 20ms",
            "journey:login": ["p95 < 2s"],
            "funnel:pay": ["conversion(6) > 50%"],
        },
        "slo",
    )
    kinds = [(o.target.kind, o.target.method, o.target.name) for o in objectives]
    assert kinds == [
        ("total", "", ""),
        ("key", "GET", "/api/v1/me"),
        ("name", "", "/api/v1/services"),
        ("journey", "", "login"),
        ("funnel", "", "pay"),
    ]
    me = objectives[1].threshold
    assert me.abort_on_fail and me.delay_abort_eval_s == 2.0
    assert objectives[4].threshold.step == 6
    with pytest.raises(UsageError, match="unknown keys abortOnFail"):
        parse_slo({"total": [{"threshold": "p95 < 1s", "abortOnFail": True}]}, "slo")
    with pytest.raises(UsageError, match="expected a list of thresholds"):
        parse_slo({"total": 3}, "slo")


def _run(tmp_path: Path):
    rng = np.random.default_rng(7)
    series = {
        ("/api/v1/me", "GET"): np.full(200, 10.0),
        ("/api/v1/services", "GET"): np.full(100, 30.0),
        ("/api/v1/services", "POST"): np.full(100, 50.0),
    }
    journeys = {
        ("login", "JOURNEY"): rng.uniform(100, 200, 50),
        ("login/1 challenge", "FUNNEL"): np.ones(50),
        ("login/2 code", "FUNNEL"): np.ones(45),
        ("login/3 profile", "FUNNEL"): np.ones(40),
    }
    return load_run(
        write_run(
            tmp_path / "run",
            series,
            journeys=journeys,
            failures={("/api/v1/me", "GET"): 2},
            duration_s=10.0,
        )
    )


def test_evaluation_on_a_run(tmp_path: Path) -> None:
    run = _run(tmp_path)
    results = evaluate(
        run,
        parse_slo(
            {
                "total": ["count == 400", "rps > 39", "error_rate < 0.4%", "failures <= 2"],
                "GET /api/v1/me": ["p99 < 10.1ms", "max < 10ms"],
                "/api/v1/services": ["p50 < 31ms", "p95 < 51ms", "min >= 29.9ms"],
                "journey:login": ["p95 < 200ms"],
                "funnel:login": ["conversion > 79%", "conversion(2) > 91%", "count == 50"],
                "funnel:missing": ["conversion > 1%"],
            },
            "slo",
        ),
    )
    verdicts = {(r.target, r.threshold): r.passed for r in results}
    assert verdicts == {
        ("total", "count == 400"): True,
        ("total", "rps > 39"): True,
        ("total", "error_rate < 0.4%"): False,  # 2 / 400 = 0.5 %
        ("total", "failures <= 2"): True,
        ("GET /api/v1/me", "p99 < 10.1ms"): True,
        ("GET /api/v1/me", "max < 10ms"): False,  # HDR keeps 10 ms as 10.007 ms
        ("/api/v1/services", "p50 < 31ms"): True,  # both methods merged
        ("/api/v1/services", "p95 < 51ms"): True,
        ("/api/v1/services", "min >= 29.9ms"): True,
        ("journey:login", "p95 < 200ms"): True,
        ("funnel:login", "conversion > 79%"): True,  # 40 / 50
        ("funnel:login", "conversion(2) > 91%"): False,  # 45 / 50
        ("funnel:login", "count == 50"): True,
        ("funnel:missing", "conversion > 1%"): False,  # no data fails
    }


def test_abort_waits_for_its_delay_and_enough_requests(tmp_path: Path) -> None:
    run = _run(tmp_path)
    objectives = parse_slo(
        {
            "GET /api/v1/me": [
                {"threshold": "p95 < 5ms", "abort_on_fail": True, "delay_abort_eval": "5s"}
            ],
            "total": ["p95 < 1ms"],  # breached, but not abort_on_fail
        },
        "slo",
    )
    assert abort_reason(run, objectives, elapsed_s=4.0) is None
    reason = abort_reason(run, objectives, elapsed_s=6.0)
    assert reason is not None and "GET /api/v1/me: p95 < 5ms breached" in reason
    few = parse_slo({"journey:login": [{"threshold": "p95 < 1ms", "abort_on_fail": True}]}, "s")
    assert abort_reason(run, few, elapsed_s=60.0) is not None  # 50 journeys >= 20
