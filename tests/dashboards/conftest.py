"""The observability tests import ``dashboards`` from the repository (tests/conftest.py cleans
the environment)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The generators of dashboards/ are checked against this checkout's files, whichever copy
# of the package is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
