"""``--seed`` (``PORTAL_SEED``) repeats every random choice of the journeys, per worker.

Real ``locust`` runs of ``locustfile_recorded.py`` (the open model on a master and two forked
workers, one executor each; the closed model's mix of classes in one process, since Locust's
dispatcher hands the classes to workers in the order of their random ids), each against a
fresh mock (the same state, so the same answers), record every draw of every user's
and every visit's generator. The same seed twice gives the same sequence for each owner
(worker, user or visit); how far a sequence got in the run's seconds depends on the timing of
the target, so the shorter is compared with the start of the longer. Another seed gives other
sequences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import forked_workers

from .test_locust_runs import MOCK_CONFIG, serve_mock

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile_recorded.py")

pytestmark = pytest.mark.slow

Owner = tuple[int, str]  # (worker index, owner)
Record = dict[Owner, list[tuple[str, object]]]


def recorded_run(tmp_path: Path, *args: str, seed: str, env_seed: bool = False) -> Record:
    """One run against its own fresh mock; the draws of each owner, in order."""
    out = tmp_path / "record"
    out.mkdir(parents=True)
    with serve_mock(tmp_path / "mock", MOCK_CONFIG) as url:
        env = {**os.environ, "PORTAL_RECORD_DIR": str(out)}
        seed_args = ["--seed", seed]
        if env_seed:
            env["PORTAL_SEED"] = seed
            seed_args = []
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url, "--headless",
            "--only-summary", "--loglevel", "WARNING", "-t", "3s",
            "--think-scale", "0.05", "--poll-interval", "0.1", *seed_args, *args,
        ]  # fmt: skip
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    record: Record = defaultdict(list)
    for path in sorted(out.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            worker, owner, kind, value = json.loads(line)
            record[(worker, owner)].append((kind, value))
    return record


def agreeing(a: Record, b: Record) -> tuple[int, list[Owner]]:
    """How many draws the owners of both runs share, and the owners whose sequences part."""
    compared, parted = 0, []
    for owner in a.keys() & b.keys():
        n = min(len(a[owner]), len(b[owner]))
        compared += n
        if a[owner][:n] != b[owner][:n]:
            parted.append(owner)
    return compared, parted


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(["-u", "6", "-r", "6", "RecordedCitizen", "RecordedVisitor"], id="closed"),
        pytest.param(
            [
                *forked_workers(2),
                *("--open-executors", "2"),
                *("--arrival-rate", "30", "--arrival-poisson", "RecordedVisits"),
            ],
            id="open",
        ),
    ],
)
def test_the_same_seed_repeats_every_choice_and_another_does_not(
    tmp_path: Path, model: list[str]
) -> None:
    first = recorded_run(tmp_path / "a", *model, seed="7")
    again = recorded_run(tmp_path / "b", *model, seed="7", env_seed=True)  # PORTAL_SEED
    other = recorded_run(tmp_path / "c", *model, seed="8")

    workers = {worker for worker, _ in first}
    assert workers == ({0, 1} if "--processes" in model else {0})
    shared = first.keys() & again.keys()
    assert len(shared) >= 0.8 * len(first.keys() | again.keys())
    compared, parted = agreeing(first, again)
    assert compared > 200 and parted == []
    kinds = {kind for draws in first.values() for kind, _ in draws}
    if "RecordedCitizen" in model:
        assert {"random", "journey", "login"} <= kinds  # think times, journeys, accounts
    else:
        assert any(owner.endswith("/arrivals") for _, owner in first)  # arrival times

    compared, parted = agreeing(first, other)
    assert compared > 20 and len(parted) == len(first.keys() & other.keys())
