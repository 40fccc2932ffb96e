"""``portal_runtime_info`` of a real started mock: uvloop is its loop, the access log is off
and aiohttp's speedups are their C extensions (a pure-Python fallback would cost a lot of CPU
per request without failing anything else)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ._process import mock_process

pytestmark = pytest.mark.slow

FAST = {
    "loop": "uvloop.Loop",
    "access_log": "false",
    "aiohttp_c_parser": "true",
    "multidict_c": "true",
    "yarl_c": "true",
    "frozenlist_c": "true",
    "propcache_c": "true",
}


def _runtime(base: str) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:  # noqa: S310 - loopback
        text = r.read().decode()
    return [
        dict(s.labels)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "portal_runtime_info" and s.value == 1
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_started_mock_runs_on_uvloop_without_access_log_on_c_extensions(
    tmp_path: Path, workers: str
) -> None:
    with mock_process("--workers", workers, data_dir=tmp_path) as mock:
        assert _runtime(mock.base) == [FAST]
