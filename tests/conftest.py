"""Shared fixtures: a clean environment for every test.

Variables of the developer's shell are removed when this file is imported, before any test
module imports prometheus_client (which picks its multiprocess mode once, at import) and
before module-scoped fixtures start servers and child processes. Child processes inherit the
cleaned environment, and a home directory of their own: Locust reads ``~/.locust.conf`` and
git reads ``~/.gitconfig``, neither of which a test may depend on.

Tests that run an outside tool say so with ``@pytest.mark.needs("prometheus", ...)`` (the
tools are :data:`TOOLS`). Where the tool is missing the test is skipped, with the line that
installs it; under ``CI=true`` it fails with that line instead, so a CI job that lacks a tool
can never pass by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator

import pytest

#: Outside tools of the tests: the names their binary goes by, and the Debian package with it.
TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "prometheus": (("prometheus",), "prometheus"),
    "promtool": (("promtool",), "prometheus"),
    "wrk": (("wrk",), "wrk"),
    "taskset": (("taskset",), "util-linux"),
    "chromium": (("chromium", "chromium-browser"), "chromium"),
    "ip": (("ip",), "iproute2"),
}

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


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as GitHub Actions, GitLab and .ci/run set)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_tool(tool: str) -> str | None:
    """The path of one of :data:`TOOLS`, or None where it is not installed."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}: add it to TOOLS in tests/conftest.py")
    names, _ = TOOLS[tool]
    return next((path for path in map(shutil.which, names) if path), None)


def missing_tool(tool: str) -> str:
    """The line that says a tool is missing and how to install it."""
    package = TOOLS[tool][1]
    return (
        f"{tool} is not installed: apt-get install -y {package} "
        "(.ci/run installs every tool the tests need)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs"):
        for tool in marker.args:
            if find_tool(tool) is None:
                if in_ci():
                    pytest.fail(f"CI=true: {missing_tool(tool)}", pytrace=False)
                pytest.skip(missing_tool(tool))


def forked_workers(count: int) -> list[str]:
    """Locust's ``--processes COUNT`` on a free port: the master its forks join otherwise
    binds Locust's fixed default (5557), which two runs at once would share."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    return ["--processes", str(count), "--master-bind-port", port, "--master-port", port]
