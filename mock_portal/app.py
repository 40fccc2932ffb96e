"""The app factory: one portal's state, its services (each route's handler wrapped by
:mod:`mock_portal.middleware`) and their lifecycle."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from .config import PortalConfig
from .metrics import PortalMetrics
from .middleware import (
    CLIENT_MAX_SIZE,
    MAX_FIELD_SIZE,
    MAX_HEADERS,
    MAX_LINE_SIZE,
    install,
)
from .services import SETUPS
from .state import PORTAL, Portal, background_tasks
from .store import Store


def create_app(
    config: PortalConfig | None = None, *, registry: CollectorRegistry | None = None
) -> web.Application:
    """A mock portal app: ``web.run_app(create_app(load_config("portal.toml")))``.

    Each app has its own metrics registry (pass one in to read it from a test) and its own
    database under ``config.data_dir`` (a temporary folder, removed at cleanup, when None).
    """
    config = config or PortalConfig()
    if config.secret is None:
        config = config.with_overrides(secret=secrets.token_bytes(32))
    metrics = PortalMetrics(registry or CollectorRegistry(auto_describe=True))
    portal = Portal(config, metrics)

    app = web.Application(
        client_max_size=CLIENT_MAX_SIZE,
        handler_args={
            "max_line_size": MAX_LINE_SIZE,
            "max_field_size": MAX_FIELD_SIZE,
            "max_headers": MAX_HEADERS,
            "keepalive_timeout": config.keepalive_timeout_s,
        },
    )

    @contextlib.asynccontextmanager
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        tmp = None
        data_dir = config.data_dir
        if data_dir is None:
            tmp = tempfile.mkdtemp(prefix="mock-portal-")
            data_dir = Path(tmp)
        store = Store(data_dir, config, metrics)
        portal.open(store)
        try:
            async with background_tasks(portal):
                portal.ready = True
                yield
                portal.ready = False
        finally:
            store.close()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    app[PORTAL] = portal
    app.cleanup_ctx.append(lifecycle)
    for setup in SETUPS:
        setup(app)
    install(app, portal)  # after every route is added
    return app
