"""The portal's services, one module each: single sign-on, the catalog, applications,
payments, and the operator's endpoints (admin and operations).

Each module's ``setup(app)`` adds its routes (and its background jobs) to a portal app.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from . import admin, applications, auth, catalog, ops, payments

SETUPS: tuple[Callable[[web.Application], None], ...] = (
    auth.setup,
    catalog.setup,
    applications.setup,
    payments.setup,
    admin.setup,
    ops.setup,
)
