"""A fast, stateful stand-in for the public-services portal: single sign-on, the service
catalog, applications, payments and quality ratings, with latency, capacity and fault knobs.

>>> from mock_portal import create_app, load_config
>>> app = create_app(load_config(citizens=1000))

Importing the package (or :mod:`mock_portal.config`, :mod:`mock_portal.routes`) does not
import aiohttp: ``create_app`` is loaded on first use, so a tool that only reads the mock's
config or route table stays free of the server's dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ConfigError, PortalConfig, load_config

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["ConfigError", "PortalConfig", "create_app", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
