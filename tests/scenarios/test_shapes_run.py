"""Every named shape and arrival profile through a real ``locust`` run against the mock: the
options are taken, the user curve (or the arrival rate) follows the profile, and the test
ends by itself at its duration (no ``-t``; the subprocess timeout would fail a run that does
not)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_locust_runs import MOCK_CONFIG, serve_mock

ROOT = Path(__file__).resolve().parents[2]
PEAK = 4
DURATION_S = 5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_mock(tmp_path_factory.mktemp("mock"), MOCK_CONFIG) as url:
        yield url


def locust(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    prefix = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", url, "--headless",
        "--only-summary", "--loglevel", "INFO", "--csv", str(prefix), "--json-file", str(prefix),
        "--think-scale", "0.1", "--poll-interval", "0.1", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


def user_counts(tmp_path: Path) -> list[int]:
    with (tmp_path / "run_stats_history.csv").open(newline="") as f:
        return [int(r["User Count"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize(
    ("shape", "params"),
    [
        ("ramp", ["--shape-ramp", "0.6"]),
        ("step", ["--shape-steps", "2", "--shape-rise-s", "0.2"]),
        (
            "spike",
            [
                "--shape-base",
                "0.25",
                "--shape-at",
                "0.2",
                "--shape-length",
                "0.4",
                "--shape-rise-s",
                "0.2",
            ],
        ),
        ("soak", []),
        ("diurnal", ["--shape-par", "2.5", "--shape-start-hour", "6"]),
    ],
)
def test_a_named_shape_runs_its_duration_at_its_peak_and_ends_by_itself(
    mock_url: str, tmp_path: Path, shape: str, params: list[str]
) -> None:
    offset = 1000 * (1 + ["ramp", "step", "spike", "soak", "diurnal"].index(shape))
    done = locust(
        mock_url, tmp_path, "--shape", shape, "-u", str(PEAK), "--shape-duration",
        str(DURATION_S), "--citizen-offset", str(offset), *params,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Shape test stopping" in done.stderr
    counts = user_counts(tmp_path)
    assert max(counts) == PEAK  # -u is the peak
    running = [c for c in counts if c]
    if shape in ("ramp", "step", "diurnal"):
        assert min(running) < PEAK  # the climb shows before the peak
    if shape == "step":
        assert {2, 4} <= set(running)  # two stairs of two users
    if shape in ("spike", "diurnal"):
        # back down after the peak: the spike's recovery, the evening of the day
        after = running[running.index(PEAK) :]
        assert min(after) < PEAK
    failures = sum(e["num_failures"] for e in json.loads((tmp_path / "run.json").read_text()))
    assert failures == 0


def test_the_run_time_is_the_duration_when_the_shape_has_none(
    mock_url: str, tmp_path: Path
) -> None:
    done = locust(mock_url, tmp_path, "--shape", "ramp", "-u", "2", "-t", "3s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Shape test stopping" in done.stderr
    assert max(user_counts(tmp_path)) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shape", "ramp", "--shape-duration", "5", "--shape-par", "2"], "no parameter 'par'"),
        (["--shape", "spike", "--shape-duration", "5", "--shape-at", "1"], r"at must be in"),
        (["--shape", "step"], "needs a duration"),
        (["--arrival-shape", "ramp", "--arrival-rate", "5"], "needs a duration"),
    ],
)
def test_a_wrong_shape_option_is_one_line_and_exit_2(
    mock_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    done = locust(mock_url, tmp_path, *args)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("locust: error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), errors
    assert user_counts(tmp_path) == []  # refused before any load


@pytest.mark.parametrize(
    ("shape", "params"),
    [
        ("ramp", ["--arrival-base", "0", "--arrival-ramp", "1"]),
        ("diurnal", ["--arrival-par", "2", "--arrival-start-hour", "0"]),
    ],
)
def test_an_arrival_profile_runs_from_its_options(
    mock_url: str, tmp_path: Path, shape: str, params: list[str]
) -> None:
    rate, duration_s = 20.0, 4.0
    done = locust(
        mock_url, tmp_path, "--arrival-shape", shape, "--arrival-rate", f"{rate:g}",
        "--arrival-duration", f"{duration_s:g}", "--citizen-offset", "9000", *params,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "schedule complete" in done.stderr  # the schedule ended the run, not a timeout
    entries = json.loads((tmp_path / "run.json").read_text())
    starts = next(e["num_requests"] for e in entries if e["name"] == "start lag")
    # evenly spaced arrivals: exactly the integral of the rate (ramp 0 -> 20/s over 4 s: 40;
    # the day at par 2 averages half its peak: 40), to the one arrival at each end
    assert abs(starts - rate * duration_s / 2) <= 1
