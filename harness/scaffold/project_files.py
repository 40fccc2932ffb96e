"""A starter load-test project a team can commit (``portal-load init DIR``).

The files come from the template ``harness/scaffold/project/`` (package data), each written
to its place in ``DIR``::

    portal-load init perf          # perf/campaign.toml, locustfile.py, slo.toml, ...
    cd perf
    portal-load run campaign.toml
    portal-load gate latest --slo slo.toml

``init`` never changes a file it did not write unless asked: when any of the files exists it
writes nothing and exits 2 with one line naming them; ``--force`` overwrites them. Other files
in ``DIR`` are left alone. Exit codes: 0 written, 1 a harness error, 2 a usage error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import package
from harness.errors import HarnessError, UsageError

__all__ = ["TEMPLATE", "Scaffold", "init_project"]

#: Each file of the template and where it goes in the project. The template stores dotfiles
#: without their dot (a ``.gitignore`` inside this package would apply to its own folder)
#: and the workflow flat (it is the only file of its folder).
TEMPLATE: tuple[tuple[str, str], ...] = (
    ("campaign.toml", "campaign.toml"),
    ("locustfile.py", "locustfile.py"),
    ("slo.toml", "slo.toml"),
    ("README.md", "README.md"),
    ("perf-gate.yml", ".github/workflows/perf-gate.yml"),
    ("gitignore", ".gitignore"),
)
#: Replaced by the installed version, so that the project's CI installs the harness it was
#: started with.
VERSION_PLACEHOLDER = "@VERSION@"


@dataclass(frozen=True)
class Scaffold:
    """What :func:`init_project` did: the project folder and the files written in it."""

    root: Path
    written: tuple[Path, ...]
    overwritten: tuple[Path, ...]


def init_project(root: Path, *, force: bool = False) -> Scaffold:
    """Write the starter project into ``root`` (created if missing).

    Raises :class:`UsageError` when a file of the template exists and ``force`` is false;
    then nothing is written.
    """
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a folder")
    targets = [root / destination for _, destination in TEMPLATE]
    existing = [path for path in targets if path.exists() or path.is_symlink()]
    if existing and not force:
        names = ", ".join(str(path.relative_to(root)) for path in existing)
        raise UsageError(f"{root}: {names} already exist; pass --force to overwrite them")
    template = package.resource_dir("harness.scaffold", "project")
    version = package.version()
    for (source, _), target in zip(TEMPLATE, targets, strict=True):
        text = (template / source).read_text(encoding="utf-8")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text.replace(VERSION_PLACEHOLDER, version), encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"cannot write {target}: {exc.strerror or exc}") from None
    return Scaffold(root=root, written=tuple(targets), overwritten=tuple(existing))
