"""``portal-load init [DIR] [--force]``: scaffold a load-test project a team can commit
(:mod:`harness.scaffold.project_files`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.errors import ExitCode
from harness.scaffold.project_files import init_project


def _init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    scaffold = init_project(root, force=args.force)
    replaced = set(scaffold.overwritten)
    for path in scaffold.written:
        verb = "overwrote" if path in replaced else "wrote"
        print(f"{verb} {path}")
    where = "" if root.resolve() == Path.cwd().resolve() else f"cd {root}\n  "
    print(
        f"\nNext:\n  {where}portal-load run campaign.toml\n  portal-load gate latest --slo slo.toml"
    )
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    """Register ``init``."""
    parser = sub.add_parser(
        "init",
        help="scaffold a load-test project: campaign, locustfile, SLOs, a CI workflow",
    )
    parser.add_argument("dir", nargs="?", default=".", help="project folder (default: here)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite the template's files where they exist"
    )
    parser.set_defaults(func=_init)
