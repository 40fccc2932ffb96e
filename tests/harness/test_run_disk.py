"""Disk trouble of a run, on a small tmpfs each test mounts and unmounts: an output that cannot
be written, one too small for the run, one that fills up while the run goes on, and a log
pump whose log cannot be written."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import Child, child_environment
from tests.harness._runs import (
    LIGHT,
    descendants,
    kill_all,
    load_flows,
    only_run,
    portal_load,
    summary,
    survivors,
    tmpfs,
    wait_for,
)

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120
    )


def _fill(path: Path) -> None:
    """Write into ``path`` until the file system refuses: no space left."""
    with path.open("wb") as ballast:
        try:
            while True:
                ballast.write(b"\0" * 65536)
                ballast.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


@pytest.mark.timeout(120)
def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", "ro") as out:
        done = _cli("run", "--duration", "5s", "--out", str(out / "results"), *LIGHT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("ResultsError: ") and "read-only" in done.stderr


@pytest.mark.timeout(120)
def test_a_run_that_needs_more_space_than_there_is_is_refused_before_it_starts(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "small", "2m") as out:
        done = _cli("run", "--duration", "20s", "--workers", "1", "--no-tty", "--out", str(out))
        left = list(out.iterdir())
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "MiB free; a run of 20 s at about" in done.stderr
    assert left == []  # nothing started, nothing written


@pytest.mark.timeout(240)
def test_a_disk_that_fills_up_stops_the_run_cleanly_with_what_was_written(
    tmp_path: Path,
) -> None:
    tree: dict[int, int] = {}
    with tmpfs(tmp_path / "disk", "32m") as out:
        try:
            with portal_load(
                "run", "--duration", "40s", "--workers", "1", "--out", str(out / "results"),
                *LIGHT,
            ) as proc:  # fmt: skip
                wait_for(lambda: load_flows(out / "results"), 120, "load flowing")
                tree = descendants(proc.pid)
                _fill(out / "ballast")
                output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 3, output
            assert "Traceback" not in output, output
            assert "the results' file system is full" in output
            result = summary(only_run(out / "results"))  # the last complete write, kept
            assert result["status"] == "partial"
            assert result["total"]["count"] > 0
            wait_for(lambda: not survivors(tree), 10, "every child gone")
        finally:
            kill_all(tree)


@pytest.mark.timeout(120)
def test_the_log_pump_drains_a_child_whose_log_cannot_be_written(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """20 MB of output through a 1 MB file system: the child still runs to its end."""
    with tmpfs(tmp_path / "tiny", "1m") as logs:
        chatty = Child(
            "chatty",
            [sys.executable, "-c", "for i in range(200_000): print('x' * 100, flush=True)"],
            logs / "chatty.log",
            child_environment(),
            capture=True,
        )
        chatty.pump()
        code = chatty.wait(60)
        chatty.stop()
    assert code == 0  # never blocked on a full pipe
    assert chatty.log_error is not None and chatty.log_error.errno == errno.ENOSPC
    err = capfd.readouterr().err
    assert err.count("the chatty's output is discarded from now on") == 1, err
