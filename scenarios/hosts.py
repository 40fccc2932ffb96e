"""What one load-generating host is and runs: its facts, the identity of its scenario code,
and the rule of where its load may go.

Pure (no Locust, no gevent): the Locust side (:mod:`scenarios.distributed`) and the harness
(its ``provenance.json`` and target guard) read the same facts and the same rule.

- :func:`identity`: the project's version and a fingerprint of the scenario code (the
  locustfile and every file of the ``scenarios`` package, hashed), which a master and its
  workers compare so that two versions of the journeys never mix in one run;
- :func:`host_facts`: hostname, cores, Python, package versions and git revision;
- :func:`is_loopback_url`: whether a target is on loopback (127.0.0.0/8, ::1). The
  benchmarking range 198.18.0.0/15, where the tests build hosts of their own, is *not*
  loopback: load sent there is load sent to another host.

>>> is_loopback_url("http://127.0.0.1:8080"), is_loopback_url("http://198.18.0.1:8080")
(True, False)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import ipaddress
import os
import platform
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "PACKAGES",
    "PROJECT",
    "WORKERS_JSON",
    "Identity",
    "address_towards",
    "git_revision",
    "host_facts",
    "identity",
    "is_loopback_url",
    "package_versions",
]

PROJECT = "portal-load"
# The packages whose versions decide what a run measures; recorded for every host.
PACKAGES = (
    "locust",
    "aiohttp",
    "uvloop",
    "orjson",
    "prometheus-client",
    "numpy",
    "geventhttpclient",
    "hdrhistogram",
    PROJECT,
)
SCENARIOS_DIR = Path(__file__).resolve().parent
# The master's record of the workers that joined, were refused or were lost, in the run's
# folder (scenarios.distributed writes it; the harness reads it).
WORKERS_JSON = "workers.json"
UNKNOWN_VERSION = "unknown"  # not installed as a package (run from a bare copy of the code)
FINGERPRINT_CHARS = 12  # 48 bits: two versions that differ are told apart


@dataclass(frozen=True)
class Identity:
    """The project's version and the fingerprint of the scenario code a process runs."""

    version: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.version} (scenarios {self.fingerprint})"

    def as_dict(self) -> dict[str, str]:
        return {"version": self.version, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Any) -> Identity | None:
        if not isinstance(data, dict):
            return None
        version, fingerprint = data.get("version"), data.get("fingerprint")
        if not isinstance(version, str) or not isinstance(fingerprint, str):
            return None
        return cls(version, fingerprint)

    def difference(self, other: Identity) -> str | None:
        """What differs from ``other`` (the master's), in words; None if nothing."""
        if self.version != other.version:
            return f"version {self.version}, the master's {other.version}"
        if self.fingerprint != other.fingerprint:
            return (
                f"scenario code {self.fingerprint}, the master's {other.fingerprint} "
                "(the locustfile or the scenarios package differ)"
            )
        return None


def _version() -> str:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def _scenario_files(locustfiles: Iterable[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    files = [
        (f"scenarios/{path.relative_to(SCENARIOS_DIR).as_posix()}", path)
        for path in SCENARIOS_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    files += [(f"locustfile/{Path(f).name}", Path(f)) for f in locustfiles]
    return sorted(files)


def identity(locustfiles: Iterable[str | os.PathLike[str]] = ()) -> Identity:
    """This process's identity: the version, and a hash over the name and bytes of every file
    of the scenarios package and of ``locustfiles`` (by file name, so that two checkouts in
    different folders agree)."""
    digest = hashlib.sha256()
    for name, path in _scenario_files(locustfiles):
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return Identity(_version(), digest.hexdigest()[:FINGERPRINT_CHARS])


def package_versions() -> dict[str, str]:
    versions = {}
    for pkg in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    return versions


def git_revision(root: Path | None = None) -> dict[str, Any]:
    """The revision of the repository ``root`` (default: the folder the process runs in, the
    user's project) is in, and whether tracked files differ from it; None outside git."""
    root = Path.cwd() if root is None else root
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": rev, "dirty": bool(dirty)}


def host_facts() -> dict[str, Any]:
    """Where a process runs, so that a figure can be traced to the machine that made it."""
    return {
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_revision(),
    }


def address_towards(host: str, port: int) -> str | None:
    """This host's own address on the route to ``host`` (no packet is sent: a UDP socket's
    connect only picks the route); names the host as the other side sees it."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((host, port))
            address: str = sock.getsockname()[0]
            return address
    except OSError:
        return None


def is_loopback_url(url: str) -> bool:
    """True if every address the URL's host resolves to is on loopback (127.0.0.0/8, ::1)."""
    try:
        hostname = urlsplit(url).hostname or ""
    except ValueError:  # a malformed URL is no loopback target
        return False
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
