"""Helpers of the tests that run ``portal-load run`` as a user does and hurt it: the CLI as a
child, its run folder, its process tree read from ``/proc``, a small tmpfs, a tool required."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import in_ci

# Short and light: these tests check what a fault does to a run, not the throughput.
LIGHT = ["--users", "8", "--spawn-rate", "8", "--think-scale", "0.05", "--no-tty"]


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``condition``; under ``CI=true`` fail instead."""
    if condition:
        return
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


@contextmanager
def portal_load(*args: str, **popen: object) -> Iterator[subprocess.Popen[str]]:
    """``portal-load ARGS`` as a child, stopped at the end as a user stops it (SIGTERM), and
    killed only if that does not end it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def portal_load_to_end(
    *args: str, cwd: Path, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """``portal-load ARGS`` in ``cwd``, to its end: exit code, stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            if predicate():
                return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not met in {timeout_s:g} s")


def load_flows(out: Path) -> bool:
    """The run's load generator has written results with requests in them."""
    return any(summary(p)["total"]["count"] > 0 for p in out.glob("*") if p.is_dir())


# -- processes, as /proc shows them -----------------------------------------------------------
def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return int(fields[1]), fields[0], int(fields[19])


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` now: pid -> start time (to tell a reused pid apart)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
            started[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child in started and child not in found:
                found[child] = started[child]
                todo.append(child)
    return found


def survivors(tree: dict[int, int]) -> dict[int, str]:
    """The processes of ``tree`` still running (not gone, not a zombie): pid -> command line."""
    left = {}
    for pid, start in tree.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == start and stat[1] != "Z":
            left[pid] = cmdline(pid)
    return left


def kill_all(tree: dict[int, int]) -> None:
    for pid in survivors(tree):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- a small file system -------------------------------------------------------------------
@contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` for the test, unmounted after it."""
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join((f"size={size}", *options))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
