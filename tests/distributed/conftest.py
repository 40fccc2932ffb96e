"""Helpers of the distributed tests: processes stopped whatever happens, counts read back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_portal.routes import OPERATIONS_ROUTES, UNMATCHED

ROOT = Path(__file__).resolve().parents[2]
# Short and light: these tests check the plumbing across hosts, not the throughput.
LIGHT = ["--users", "6", "--spawn-rate", "6", "--think-scale", "0.05", "--no-tty"]


class Proc:
    """A started child whose output is read as it comes (so a test can wait for a line)."""

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: stopped with whatever it started
            **kwargs,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, marker: str, timeout_s: float) -> str:
        """The first line with ``marker``; fails if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if marker in line:
                    return line
            if self.popen.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {marker!r}:\n{self.output}")

    def finish(self, timeout_s: float) -> tuple[int, str]:
        """Wait for the exit: (exit code, whole output)."""
        code = self.popen.wait(timeout=timeout_s)
        self._close()
        return code, self.output

    def _close(self) -> None:
        self._reader.join(timeout=10)
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after 60 s; the group is signalled even
        when the first process has exited (a child it left may still run)."""
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait()
        self._close()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


class Processes:
    """Children of one test, each stopped at the end (SIGTERM, then SIGKILL) by its pid."""

    def __init__(self) -> None:
        self.started: list[Proc] = []

    def start(self, argv: list[str], **kwargs: Any) -> Proc:
        proc = Proc(argv, **kwargs)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


def portal_load(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


def mock_count(metrics_text: str) -> float:
    """The mock's own count of the load's requests, from its ``/metrics``: not the operations
    routes, nor the harness's look at whether the target answers (``GET`` of its base URL,
    a route the API does not have)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            load = sample.labels.get("route") not in (*OPERATIONS_ROUTES, UNMATCHED)
            if sample.name == "portal_http_requests_total" and load:
                total += sample.value
    return total


def copy_of_the_scenarios(tmp_path: Path, *, edit: str = "", version: str = "") -> Path:
    """Another checkout of the load generator: the locustfile and scenarios package, with
    ``edit`` appended to one module, and ``version`` installed as the project's version."""
    copy = tmp_path / "other-version"
    shutil.copytree(ROOT / "scenarios", copy / "scenarios",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "locustfile.py", copy / "locustfile.py")
    if edit:
        with (copy / "scenarios" / "workload.py").open("a", encoding="utf-8") as f:
            f.write(edit)
    if version:
        info = copy / f"portal_load-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: portal-load\nVersion: {version}\n", encoding="utf-8"
        )
    return copy


def worker_from(copy: Path, master: str) -> list[str]:
    """A Locust worker of the copy's code (what ``portal-load worker`` runs on its host)."""
    host, _, port = master.rpartition(":")
    return [sys.executable, "-m", "locust", "-f", str(copy / "locustfile.py"), "--worker",
            "--master-host", host, "--master-port", port, "--loglevel", "WARNING"]  # fmt: skip


def copy_environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(copy)
    return env
