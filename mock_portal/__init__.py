"""A fast, stateful stand-in for the public-services portal: single sign-on, the service
catalog, applications, payments and quality ratings, with latency, capacity and fault knobs.

>>> from mock_portal import create_app, load_config
>>> app = create_app(load_config(citizens=1000))
"""

from .app import create_app
from .config import ConfigError, PortalConfig, load_config

__all__ = ["ConfigError", "PortalConfig", "create_app", "load_config"]
