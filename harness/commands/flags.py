"""Flags that set campaign keys: one table per command, each flag naming the key it sets.

A flag's value reaches the campaign loader as typed, with the flag's name, so a mistake in
it is reported as the user wrote it (``--duration: expected a duration ...``). Every such
flag can also come from the environment, as Locust's ``LOCUST_*`` do: ``--users 50`` is
``PORTAL_LOAD_USERS=50``; a switch is ``PORTAL_LOAD_PROMETHEUS=true``. The command line wins
over the environment, the environment over the campaign file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.campaign import Override
from harness.errors import UsageError

ENV_PREFIX = "PORTAL_LOAD_"
NAMES_KEY = "load.user_classes"  # the names after a path+names flag's path
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Flag:
    """``--name`` sets campaign ``key``; ``kind``: ``value``, ``switch`` (no argument, sets
    true), ``list`` (repeatable) or ``path+names`` (a path, then names that set
    ``load.user_classes``: ``--locustfile mine.py UserA UserB``)."""

    name: str
    key: str
    help: str
    kind: str = "value"
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


def add_flags(parser: argparse.ArgumentParser, flags: Sequence[Flag]) -> None:
    for f in flags:
        if f.kind == "switch":
            parser.add_argument(f.name, action="store_true", default=None, help=f.help)
        elif f.kind == "list":
            parser.add_argument(f.name, action="append", metavar=f.metavar, help=f.help)
        elif f.kind == "path+names":
            parser.add_argument(
                f.name, nargs="+", metavar=(f.metavar or "PATH", "NAME"), help=f.help
            )
        else:
            parser.add_argument(f.name, metavar=f.metavar, help=f.help)


def overrides(
    args: argparse.Namespace, flags: Sequence[Flag], environ: Mapping[str, str] | None = None
) -> list[Override]:
    """The flags given (or their environment variables) as campaign overrides."""
    env = os.environ if environ is None else environ
    out = []
    for f in flags:
        value = getattr(args, f.dest, None)
        where = f.name
        if value is None and f.env in env:
            value, where = _from_env(f, env[f.env]), f.env
        if f.kind == "path+names" and isinstance(value, list):
            path, names = value[0], value[1:]
            out.append(Override(f.key, path, where))
            if names:
                out.append(Override(NAMES_KEY, names, where))
        elif value is not None:
            out.append(Override(f.key, value, where))
    return out


def _from_env(flag: Flag, text: str) -> object:
    if flag.kind == "switch":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return None
        raise UsageError(f"{flag.env}: expected true or false, got {text!r}")
    if flag.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text
