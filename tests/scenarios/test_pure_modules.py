"""The arithmetic modules stay importable without gevent: the test process (and the harness)
must never be monkey-patched by importing them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pure_modules_import_neither_gevent_nor_locust() -> None:
    code = (
        "import sys\n"
        "import scenarios.workload, scenarios.profiles, scenarios.arrivals, scenarios.citizens\n"
        "import scenarios.shape_specs, scenarios.seeding, scenarios.accounts\n"
        "import scenarios.telemetry, scenarios.telemetry.hdr, scenarios.telemetry.results\n"
        "print(sorted(m for m in ('gevent', 'locust', 'mock_portal', 'harness')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"


def test_scenarios_never_import_the_mock_or_the_harness() -> None:
    code = (
        "import sys, runpy\n"
        "runpy.run_path('locustfile.py')\n"
        "print(sorted(m for m in ('mock_portal', 'harness', 'aiohttp') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_harness_imports_neither_gevent_nor_locust() -> None:
    """The harness reads the generator's result writer; that must not monkey-patch it."""
    code = (
        "import sys\n"
        "import harness.cli, harness.run.command, harness.results.folder\n"
        "print(sorted(m for m in ('gevent', 'locust', 'aiohttp') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        cwd=ROOT,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_importing_the_telemetry_installs_nothing_even_under_locust() -> None:
    """Only ``plugin.install()`` adds the telemetry's listeners; importing never does."""
    code = (
        "import locust\n"
        "from locust import events\n"
        "def listeners():\n"
        "    return (len(events.init._handlers), len(events.init_command_line_parser._handlers))\n"
        "before = listeners()\n"
        "import scenarios.telemetry, scenarios.telemetry.hdr, scenarios.telemetry.plugin\n"
        "imported = listeners()\n"
        "scenarios.telemetry.plugin.install()\n"
        "scenarios.telemetry.plugin.install()\n"
        "print(before == imported, [b - a for a, b in zip(imported, listeners())])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        cwd=ROOT,
    )  # fmt: skip
    assert out.stdout.strip() == "True [1, 1]"
