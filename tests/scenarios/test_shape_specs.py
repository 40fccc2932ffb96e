"""The table of shapes and arrival profiles: what the harness validates before a run, and
what the Locust side builds from options."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from scenarios.profiles import NATIONAL_DAY_HOURLY, Diurnal, Spike, peak_to_average
from scenarios.shape_specs import (
    ARRIVAL_OPTION_PREFIX,
    ARRIVAL_SHAPES,
    SHAPE_OPTION_PREFIX,
    SHAPES,
    ShapeParamError,
    build_profile,
    build_rate_profile,
    markdown_table,
    profile_from_options,
    rate_profile_from_options,
    resolve,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_shape_has_a_profile_and_documented_parameters() -> None:
    assert list(SHAPES) == ["ramp", "step", "spike", "soak", "diurnal"]
    assert list(ARRIVAL_SHAPES) == ["constant", "ramp", "diurnal"]
    for table in (SHAPES, ARRIVAL_SHAPES):
        for spec in table.values():
            for param in spec.params:
                assert param.unit and param.meaning, (spec.name, param.name)
                assert param.check(param.default, spec.name) == param.default
    # the diurnal default is the national curve as it is
    assert SHAPES["diurnal"].param("par").default == round(  # type: ignore[union-attr]
        peak_to_average(NATIONAL_DAY_HOURLY), 2
    )


def test_the_docs_show_the_tables_as_the_code_has_them() -> None:
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    assert markdown_table(SHAPES, SHAPE_OPTION_PREFIX) in doc
    assert markdown_table(ARRIVAL_SHAPES, ARRIVAL_OPTION_PREFIX) in doc


def test_resolve_fills_defaults_and_keeps_given_values() -> None:
    assert resolve(SHAPES, "spike", {"at": 0.5}) == {
        "base": 0.2,
        "at": 0.5,
        "length": 0.2,
        "rise_s": 2.0,
    }
    assert resolve(SHAPES, "step", {"steps": 4.0}) == {"steps": 4, "rise_s": 2.0}
    assert resolve(ARRIVAL_SHAPES, "constant", {}) == {}


@pytest.mark.parametrize(
    ("shape", "given", "param", "message"),
    [
        ("ramp", {"peak_users": 400}, "peak_users", "ramp has no parameter 'peak_users'"),
        ("ramp", {"ramp": 1.5}, "ramp", r"ramp must be in \[0, 1\]"),
        ("step", {"steps": 2.5}, "steps", "must be an integer"),
        ("step", {"steps": 0}, "steps", ">= 1"),
        ("spike", {"at": 0.7, "length": 0.5}, "length", r"at \+ length must be <= 1"),
        ("diurnal", {"start_hour": 24}, "start_hour", r"in \[0, 24\)"),
        ("diurnal", {"par": "high"}, "par", "must be a number"),
        ("soak", {"ramp": True}, "ramp", "must be a number"),
        ("wave", {}, None, "unknown shape 'wave'"),
    ],
)
def test_a_wrong_parameter_is_named(
    shape: str, given: dict[str, object], param: str | None, message: str
) -> None:
    with pytest.raises(ShapeParamError, match=message) as caught:
        resolve(SHAPES, shape, given)
    assert caught.value.param == param
    assert caught.value.shape == shape


def test_build_profile_needs_a_duration_and_a_peak() -> None:
    spike = build_profile("spike", duration_s=20, users=10, params={"base": 0.5})
    assert isinstance(spike, Spike) and spike.rest_users == 5
    with pytest.raises(ShapeParamError, match="duration") as caught:
        build_profile("ramp", duration_s=0, users=10)
    assert caught.value.param == "duration"
    with pytest.raises(ShapeParamError, match="users"):
        build_profile("ramp", duration_s=10, users=0)


def _shape_options(**values: object) -> SimpleNamespace:
    names = {"shape_" + p.name for spec in SHAPES.values() for p in spec.params}
    defaults = {"shape": "none", "shape_duration": None, "run_time": None, "num_users": None}
    return SimpleNamespace(**{**defaults, **dict.fromkeys(names), **values})


def test_shape_options_scale_from_users_and_take_the_run_time_as_default_duration() -> None:
    assert profile_from_options(_shape_options()) is None
    day = profile_from_options(
        _shape_options(shape="diurnal", num_users=40, run_time=60, shape_par=2.0)
    )
    assert isinstance(day, Diurnal)
    assert (day.users, day.duration_s, day.par, day.start_hour) == (40, 60.0, 2.0, 3)
    ramp = profile_from_options(
        _shape_options(shape="ramp", num_users=3, run_time=60, shape_duration=8)
    )
    assert ramp is not None and ramp.duration_s == 8.0 and ramp.users == 3
    with pytest.raises(ShapeParamError, match="has no parameter 'par'"):
        profile_from_options(_shape_options(shape="ramp", run_time=10, shape_par=2.0))


def _arrival_options(**values: object) -> SimpleNamespace:
    names = {"arrival_" + p.name for spec in ARRIVAL_SHAPES.values() for p in spec.params}
    defaults = {
        "arrival_shape": "constant",
        "arrival_rate": 0.0,
        "arrival_profile": "",
        "arrival_duration": 0.0,
    }
    return SimpleNamespace(**{**defaults, **dict.fromkeys(names), **values})


def test_arrival_options_select_the_schedule_and_executors_share_it() -> None:
    assert rate_profile_from_options(_arrival_options()) is None
    one = rate_profile_from_options(_arrival_options(arrival_rate=30.0, arrival_duration=10.0))
    assert one is not None and one.total_arrivals == pytest.approx(300.0)
    third = rate_profile_from_options(
        _arrival_options(arrival_profile="10s:0-60,10s:60"), executors=3
    )
    assert third is not None and third.total_arrivals == pytest.approx((300 + 600) / 3)
    day = rate_profile_from_options(
        _arrival_options(
            arrival_shape="diurnal", arrival_rate=100.0, arrival_par=2.0, arrival_duration=240.0
        )
    )
    assert day is not None and day.total_arrivals / day.duration_s == pytest.approx(50.0)
    ramp = rate_profile_from_options(
        _arrival_options(
            arrival_shape="ramp", arrival_rate=20.0, arrival_duration=10.0, arrival_ramp=0.5
        ),
        executors=2,
    )
    # 5 s from 0 to 10/s, then 5 s at 10/s, per executor
    assert ramp is not None and ramp.total_arrivals == pytest.approx(25 + 50)
    assert ramp.rate_at(2.5) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"arrival_shape": "ramp", "arrival_rate": 10.0}, "needs a duration"),
        ({"arrival_shape": "diurnal"}, "needs a rate"),
        ({"arrival_profile": "5s:10", "arrival_par": 2.0}, "gives the stages itself"),
        ({"arrival_rate": 5.0, "arrival_duration": 10.0, "arrival_par": 2.0}, "no parameter"),
    ],
)
def test_wrong_arrival_options_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ShapeParamError, match=message):
        rate_profile_from_options(_arrival_options(**values))


def test_a_rate_profile_needs_a_positive_rate() -> None:
    with pytest.raises(ShapeParamError, match="rate > 0"):
        build_rate_profile("constant", rate=0.0, duration_s=10)
    flat = build_rate_profile("ramp", rate=10.0, duration_s=10, params={"ramp": 0.0})
    assert [round(flat.rate_at(t), 6) for t in (0, 5, 9.9)] == [10.0, 10.0, 10.0]


def test_option_names_follow_the_parameter_keys() -> None:
    spec = SHAPES["step"]
    assert [p.option(SHAPE_OPTION_PREFIX) for p in spec.params] == [
        "--shape-steps",
        "--shape-rise-s",
    ]
    assert re.fullmatch(
        r"--arrival-start-hour", ARRIVAL_SHAPES["diurnal"].params[1].option("--arrival-")
    )
