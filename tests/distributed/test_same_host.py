"""Remote workers joining a harness run over loopback: the protocol, on any machine.

Real processes throughout: ``portal-load run`` (its mock, master and local worker) and
``portal-load worker`` or a Locust worker of another copy of the code, joined over
127.0.0.1. The same checks across real hosts are in ``test_namespaces.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.system import free_port
from tests.distributed.conftest import (
    LIGHT,
    Processes,
    copy_environment,
    copy_of_the_scenarios,
    portal_load,
    read_json,
    run_dir,
    worker_from,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_a_remote_worker_joins_the_run_and_its_counts_merge(
    tmp_path: Path, processes: Processes
) -> None:
    master = f"127.0.0.1:{free_port()}"
    run = processes.start(
        portal_load(
            "run",
            "--duration",
            "5s",
            "--workers",
            "1",
            "--remote-workers",
            "1",
            "--master-bind",
            master,
            "--out",
            str(tmp_path),
            *LIGHT,
        )
    )
    line = run.wait_line("on each worker host run:", 60)
    assert f"portal-load worker --master {master}" in line
    worker = processes.start(portal_load("worker", "--master", master))
    code, output = run.finish(150)
    assert code == 0, output
    assert "worker joined from" in output
    assert worker.finish(60)[0] == 0
    folder = run_dir(tmp_path)
    summary = read_json(folder / "summary.json")
    assert summary["status"] == "complete"
    assert summary["checks"]["counts_agree"] is True, summary["checks"]
    per_worker = summary["workers"]["per_worker"]
    assert len(per_worker) == 2
    assert all(w["requests"] > 0 for w in per_worker), per_worker
    assert sum(w["requests"] for w in per_worker) == summary["total"]["count"]
    workers = read_json(folder / "provenance.json")["workers"]
    assert sorted(w["local"] for w in workers) == [False, True]
    remote = next(w for w in workers if not w["local"])
    assert remote["pid"] == worker.pid  # portal-load worker becomes the Locust worker
    for fact in ("host", "cores", "python", "packages", "git", "identity", "address"):
        assert remote[fact], fact
    assert remote["packages"]["locust"]


@pytest.mark.timeout(120)
def test_a_worker_that_never_joins_ends_the_wait_with_exit_2(tmp_path: Path) -> None:
    master = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        portal_load(
            "run",
            "--duration",
            "5s",
            "--workers",
            "1",
            "--remote-workers",
            "2",
            "--join-timeout",
            "3s",
            "--master-bind",
            master,
            "--out",
            str(tmp_path),
            *LIGHT,
        ),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("WorkersMissing: 2 of 2 remote workers did not join within 3 s")
    assert "joined: none" in lines[0]
    summary = read_json(run_dir(tmp_path) / "summary.json")
    assert summary["status"] == "partial"
    assert summary["total"]["count"] == 0


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("edit", "version", "said"),
    [
        ("# one more line\n", "", "scenario code"),
        ("", "9.9.9", "version 9.9.9, the master's"),
    ],
    ids=["other-code", "other-version"],
)
def test_a_worker_of_another_version_is_refused_on_both_sides(
    tmp_path: Path, processes: Processes, edit: str, version: str, said: str
) -> None:
    copy = copy_of_the_scenarios(tmp_path, edit=edit, version=version)
    master = f"127.0.0.1:{free_port()}"
    out = tmp_path / "results"
    run = processes.start(
        portal_load(
            "run",
            "--duration",
            "5s",
            "--workers",
            "1",
            "--remote-workers",
            "1",
            "--join-timeout",
            "6s",
            "--master-bind",
            master,
            "--out",
            str(out),
            *LIGHT,
        )
    )
    run.wait_line("on each worker host run:", 60)
    worker = processes.start(worker_from(copy, master), cwd=copy, env=copy_environment(copy))
    code, worker_output = worker.finish(90)
    assert code == 2, worker_output
    refused = [line for line in worker_output.splitlines() if "refused this worker" in line]
    assert len(refused) == 1, worker_output
    assert said in refused[0]
    code, output = run.finish(90)
    assert code == 2, output
    assert "WorkersMissing: 1 of 1 remote workers did not join" in output
    assert f"refused: {_hostname()} (127.0.0.1): it runs {said}" in output
    master_log = (run_dir(out) / "logs" / "locust-master.log").read_text()
    refusals = [line for line in master_log.splitlines() if "refusing worker" in line]
    assert len(refusals) == 1, master_log
    assert said in refusals[0]
    assert read_json(run_dir(out) / "summary.json")["total"]["count"] == 0


def _hostname() -> str:
    import socket

    return socket.gethostname()
