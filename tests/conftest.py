"""Shared fixtures: a clean environment for every test."""

from __future__ import annotations

import os

import pytest

# Variables that would make a test depend on the developer's machine.
_LEAKY = (
    "PROMETHEUS_MULTIPROC_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("LOCUST_", "PORTAL_")):
            monkeypatch.delenv(name, raising=False)
