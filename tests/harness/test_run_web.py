"""``portal-load run --web``: the address of Locust's web UI is printed, and it answers there
while the run goes; the run still ends by itself, complete."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
WEB_LINE = re.compile(r"portal-load: Locust web UI at (http://127\.0\.0\.1:\d+/) ")


def _get(url: str, deadline: float) -> tuple[int, str]:
    while True:
        try:
            with _NO_PROXY.open(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.timeout(180)
def test_web_prints_the_ui_address_and_the_ui_answers_there(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--web", "--duration", "6s",
         "--users", "4", "--spawn-rate", "4", "--think-scale", "0.05", "--workers", "1",
         "--no-tty", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            lines.append(line)
            match = WEB_LINE.search(line)
            if match:
                url = match.group(1)
                break
        assert url is not None, "".join(lines)
        status, page = _get(url, time.monotonic() + 30)
        assert status == 200
        assert "locust" in page.lower()
        # The UI shows this run: it goes from "ready" (workers connecting) to running.
        deadline = time.monotonic() + 30
        while True:
            _, stats = _get(url + "stats/requests", deadline)
            state = json.loads(stats)["state"]
            if state in ("spawning", "running", "stopped") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert state in ("spawning", "running", "stopped")
        rest, _ = proc.communicate(timeout=120)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines)[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["total"]["count"] > 0
