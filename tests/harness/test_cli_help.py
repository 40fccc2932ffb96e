"""``--help`` of every command and subcommand of ``portal-load``, through the entry point.

The commands are found by walking the argparse tree of :func:`harness.cli.build_parser`, so a
command added later is covered without editing this file. argparse formats help strings only
when help is asked for: a stray ``%`` in one (``"errors < 1%"``) is a traceback at
``--help`` and nowhere else.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.cli import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_the_walk_finds_the_nested_commands() -> None:
    assert ("run",) in COMMANDS
    assert ("baseline", "save") in COMMANDS
    assert ("stack", "status") in COMMANDS
    assert ("capacity-exporter",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "portal-load")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""
    usage = " ".join(("usage: portal-load", *path))
    assert proc.stdout.startswith(usage), proc.stdout[:300]
    assert "-h, --help" in proc.stdout
