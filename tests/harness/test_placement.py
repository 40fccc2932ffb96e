"""Where a run's processes go: one process per core, and above two cores the Locust master and
the harness on a core of their own, off the cores of the mock and the workers.

The plan is checked for machines of several sizes; the run itself only on this machine, as it
is: the cores each process of a real ``portal-load run`` is allowed are those of the plan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.campaign.model import Campaign
from harness.system import Placement, die_with_parent, placement, usable_cores

from ._runs import LIGHT, cmdline, descendants, only_run, portal_load, wait_for


def test_two_cores_or_fewer_leave_the_placement_to_the_operating_system() -> None:
    for cores in ([0], [0, 1], [3, 7]):
        plan = placement(cores)
        assert plan == Placement() and not plan.pinned


def test_above_two_cores_the_first_is_the_master_and_harness_and_the_rest_are_hot() -> None:
    plan = placement(range(16))
    assert plan.cold == {0}
    assert plan.hot == set(range(1, 16))
    # the cores of a container or of taskset, not numbered from 0
    plan = placement([9, 2, 5, 7])
    assert plan.cold == {2} and plan.hot == {5, 7, 9}


def test_one_process_per_hot_core_and_never_no_worker() -> None:
    assert placement(range(16)).default_workers(mock_processes=1) == 14
    assert placement(range(16)).default_workers(mock_processes=0) == 15  # a remote target
    assert placement(range(3)).default_workers(mock_processes=4) == 1
    # not pinned: one worker per core this process may use
    assert Placement().default_workers(mock_processes=1) == len(usable_cores())


def test_a_campaign_without_a_count_takes_the_placements_number_of_workers() -> None:
    expected = placement().default_workers(1)
    assert Campaign().local_worker_count() == expected
    assert Campaign(workers=3).local_worker_count() == 3
    assert Campaign(master_only=True, remote_workers=1).local_worker_count() == 0
    assert f"count = {expected}" in Campaign().to_toml()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity")
def test_a_child_runs_on_its_cores_from_its_start() -> None:
    core = usable_cores()[-1]
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        preexec_fn=die_with_parent(cores={core}),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == f"[{core}]"


def _allowed(pid: int) -> set[int]:
    return set(os.sched_getaffinity(pid))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_a_real_run_places_its_processes_as_planned_on_this_machine(tmp_path: Path) -> None:
    plan = placement()
    everywhere = set(usable_cores())
    seen: dict[str, set[int]] = {}
    with portal_load(
        "run", "--duration", "10s", "--out", str(tmp_path), *LIGHT
    ) as proc:  # fmt: skip

        def all_started() -> bool:
            for pid in descendants(proc.pid):
                line = cmdline(pid)
                kind = (
                    "mock" if "mock_portal" in line
                    else "worker" if "--worker" in line
                    else "master" if "--master" in line
                    else None
                )  # fmt: skip
                if kind:
                    seen[kind] = seen.get(kind, set()) | _allowed(pid)
            seen["harness"] = _allowed(proc.pid)
            return {"mock", "worker", "master"} <= set(seen)

        wait_for(all_started, 60, "the mock, the master and a worker")
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode in (0, 4), output
    summary = (only_run(tmp_path) / "summary.json").read_text()
    assert '"count"' in summary
    if plan.pinned:
        assert seen["mock"] == plan.hot and seen["worker"] == plan.hot, seen
        assert seen["master"] == plan.cold and seen["harness"] == plan.cold, seen
        assert "cores: mock and workers on" in output
    else:  # two cores: every process may run anywhere, and nothing is said
        assert all(cores == everywhere for cores in seen.values()), seen
        assert "cores:" not in output
