"""The installed package: its version and the data files it ships.

``portal-load`` runs from a wheel in any folder, so nothing in the harness is found by a path
relative to the source tree: every file it needs at run time is package data, found through
:mod:`importlib.resources` from the package that ships it:

==========================  =====================  ============================================
what                        package                path inside it
==========================  =====================  ============================================
the project's locustfile    ``scenarios``          ``locustfile.py``
telemetry for another one   ``scenarios``          ``telemetry/locustfile.py``
Prometheus configuration    ``dashboards``         ``prometheus/`` (``prometheus.yml``, rules)
Grafana dashboards          ``dashboards``         ``grafana/`` (``*.json``, provisioning)
``portal-load init``        ``harness.scaffold``   ``project/``
==========================  =====================  ============================================

From a source checkout (an editable install) the same calls find the files of the checkout.
Locust and Prometheus are handed file names, so each resource must be a real file or folder
on disk, as it is when the package is installed from a wheel or a checkout; a package
imported from a zip archive is refused with a message that says so.

    >>> locustfile().name
    'locustfile.py'
    >>> (prometheus_config_dir() / "prometheus.yml").is_file()
    True
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from pathlib import Path

from harness.errors import HarnessError

__all__ = [
    "DISTRIBUTION",
    "grafana_dir",
    "locustfile",
    "prometheus_config_dir",
    "resource_dir",
    "telemetry_locustfile",
    "version",
]

#: The distribution's name on a package index (``pip install portal-load``).
DISTRIBUTION = "portal-load"
#: What :func:`version` answers when the harness runs from files no installer recorded.
UNKNOWN_VERSION = "0+unknown"


def version() -> str:
    """The installed distribution's version, e.g. ``0.1.0``."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def resource_dir(package: str, *parts: str) -> Path:
    """The folder or file ``parts`` inside ``package``, as a path on disk."""
    resource = importlib.resources.files(package).joinpath(*parts)
    if not isinstance(resource, Path):
        raise HarnessError(
            f"{package}/{'/'.join(parts)} is not a file on disk ({type(resource).__name__}); "
            f"install {DISTRIBUTION} from a wheel or a checkout, not as a zip archive"
        )
    if not resource.exists():
        raise HarnessError(
            f"{resource}: missing from the installed {DISTRIBUTION} {version()}; "
            "reinstall it (its package data is incomplete)"
        )
    return resource


def locustfile() -> Path:
    """The locustfile of the project's journeys (``scenarios/locustfile.py``)."""
    return resource_dir("scenarios", "locustfile.py")


def telemetry_locustfile() -> Path:
    """The telemetry alone, loaded beside a locustfile of the user's (``--locustfile``)."""
    return resource_dir("scenarios", "telemetry", "locustfile.py")


def prometheus_config_dir() -> Path:
    """``prometheus.yml`` with its ``rules/`` and ``targets/``, as committed."""
    return resource_dir("dashboards", "prometheus")


def grafana_dir() -> Path:
    """The generated Grafana dashboards (``*.json``) and their ``provisioning/`` files."""
    return resource_dir("dashboards", "grafana")
