"""Shared fixtures: a clean environment for every test.

Variables of the developer's shell are removed when this file is imported, before any test
module imports prometheus_client (which picks its multiprocess mode once, at import) and
before module-scoped fixtures start servers and child processes. Child processes inherit the
cleaned environment, and a home directory of their own: Locust reads ``~/.locust.conf`` and
git reads ``~/.gitconfig``, neither of which a test may depend on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Variables that would make a test depend on the developer's machine.
_LEAKY = frozenset(
    (
        "PROMETHEUS_MULTIPROC_DIR",
        "prometheus_multiproc_dir",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "XDG_CONFIG_HOME",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
    )
)

for _name in list(os.environ):
    if _name in _LEAKY or _name.startswith(("LOCUST_", "PORTAL_")):
        del os.environ[_name]


@pytest.fixture(scope="session", autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        yield


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test set for itself (through monkeypatch) is undone; what an earlier test leaked
    into the environment is removed again."""
    for name in list(os.environ):
        if name in _LEAKY or name.startswith(("LOCUST_", "PORTAL_")):
            monkeypatch.delenv(name)
