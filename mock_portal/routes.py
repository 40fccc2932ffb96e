"""The mock's route facts, kept once: which simulated backend serves a route, and which routes
are operations rather than load.

A pure module (no aiohttp), so the harness reads the same table as the mock's middleware:

>>> service_of("/api/v1/payments/{id}")
'payments'
>>> service_of("/metrics") is None
True
>>> "/admin/faults" in OPERATIONS_ROUTES
True
"""

from __future__ import annotations

# The route template of a request that matched no route (404, 405): a bounded metric label.
UNMATCHED = "unmatched"

# Route template prefix -> the simulated backend service that serves it (docs/api.md's services).
SERVICE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/oauth2/", "auth"),
    ("/.well-known/", "auth"),
    ("/api/v1/me", "auth"),
    ("/api/v1/services", "catalog"),
    ("/api/v1/applications", "applications"),
    ("/api/v1/payments", "payments"),
)

# Services that can have a simulated backend pool, in the order of the table above.
SERVICES: tuple[str, ...] = tuple(dict.fromkeys(service for _, service in SERVICE_PREFIXES))

# Never faulted nor shed, and not load: the operator must be able to observe the mock and undo
# a fault (a "*" fault of status 500 would otherwise also refuse the PUT that removes it).
OPERATIONS_ROUTES: frozenset[str] = frozenset(
    ("/metrics", "/healthz", "/readyz", "/admin/faults", "/admin/ledger", "/openapi.json")
)


def service_of(route: str) -> str | None:
    """The simulated service of a route template (or a path), or None for operations."""
    for prefix, service in SERVICE_PREFIXES:
        if route.startswith(prefix):
            return service
    return None
