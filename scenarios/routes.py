"""Request names and route templates: which API route each request of the journeys calls.

The load generator names requests for people (``/api/v1/services [search]``,
``/oauth2/token [code]``, ``/api/v1/payments [retry]``); the portal labels its metrics with the
route template it matched (``route="/api/v1/services/{code}"``). :data:`REQUEST_ROUTES` is the
one table between the two, and :func:`route_of` applies it, so that the generator's latency and
the portal's own meet on one row per route (the report, the campaign dashboard, the
``route`` label of ``loadgen_response_time_seconds``).

A name the table does not know (a team's own locustfile) is matched against the API's templates
(:data:`API_ROUTES`): ``/api/v1/payments/pay-123`` is ``/api/v1/payments/{id}``, and a
qualifier in brackets (``/api/v1/me [cached]``) is ignored.

>>> route_of("/api/v1/services/[code]")
'/api/v1/services/{code}'
>>> route_of("/api/v1/payments/charges"), route_of("/api/v1/payments/pay-123")
('/api/v1/payments/charges', '/api/v1/payments/{id}')
>>> route_of("login") is None
True

Pure: no Locust, no gevent; the harness and the exporter import it.
"""

from __future__ import annotations

import functools
import re

__all__ = ["API_ROUTES", "REQUEST_ROUTES", "route_of"]

#: Every route template of the portal's API (docs/api.md) that load is sent to, as the mock
#: labels it; operations (``/metrics``, ``/healthz``, ``/admin/*``) are not load.
API_ROUTES: tuple[str, ...] = (
    "/.well-known/openid-configuration",
    "/oauth2/authorize",
    "/oauth2/login",
    "/oauth2/otp",
    "/oauth2/token",
    "/oauth2/revoke",
    "/api/v1/me",
    "/api/v1/services",
    "/api/v1/services/{code}",
    "/api/v1/applications",
    "/api/v1/applications/{id}",
    "/api/v1/applications/{id}/rating",
    "/api/v1/payments/charges",
    "/api/v1/payments",
    "/api/v1/payments/{id}",
    "/api/v1/payments/{id}/receipt",
)

#: Every request name the journeys (``scenarios/journeys/``) and the capacity probe use, and
#: the route template it calls. Names are grouped by the service they belong to.
REQUEST_ROUTES: dict[str, str] = {
    # single sign-on (scenarios/journeys/sso.py)
    "/oauth2/authorize": "/oauth2/authorize",
    "/oauth2/login": "/oauth2/login",
    "/oauth2/otp": "/oauth2/otp",
    "/oauth2/token [code]": "/oauth2/token",
    "/oauth2/token [refresh]": "/oauth2/token",
    "/oauth2/revoke": "/oauth2/revoke",
    "/api/v1/me": "/api/v1/me",
    # catalog (scenarios/journeys/catalog.py)
    "/api/v1/services": "/api/v1/services",
    "/api/v1/services [search]": "/api/v1/services",
    "/api/v1/services [sync]": "/api/v1/services",
    "/api/v1/services/[code]": "/api/v1/services/{code}",
    # applications (scenarios/journeys/applications.py, account.py)
    "/api/v1/applications": "/api/v1/applications",
    "/api/v1/applications/[id]": "/api/v1/applications/{id}",
    "/api/v1/applications/[id]/rating": "/api/v1/applications/{id}/rating",
    # payments (scenarios/journeys/payments.py, account.py)
    "/api/v1/payments/charges": "/api/v1/payments/charges",
    "/api/v1/payments": "/api/v1/payments",
    "/api/v1/payments [retry]": "/api/v1/payments",
    "/api/v1/payments/[id]": "/api/v1/payments/{id}",
    "/api/v1/payments/[id]/receipt": "/api/v1/payments/{id}/receipt",
}

_QUALIFIER = re.compile(r"\s+\[[^\]]*\]$")
_PLACEHOLDER = re.compile(r"\\\{[^}]+\\\}")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + _PLACEHOLDER.sub("[^/]+", re.escape(template)) + "$")


_LITERAL = frozenset(t for t in API_ROUTES if "{" not in t)
_TEMPLATES = tuple((t, _pattern(t)) for t in API_ROUTES if "{" in t)


@functools.lru_cache(maxsize=4096)
def route_of(name: str) -> str | None:
    """The route template a request name calls, or None when it names no API route."""
    if name in REQUEST_ROUTES:
        return REQUEST_ROUTES[name]
    path = _QUALIFIER.sub("", name.strip()).split("?", 1)[0]
    if "://" in path:  # a full URL as the name: its path
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    if path in _LITERAL:
        return path
    for template, pattern in _TEMPLATES:
        if pattern.match(path):
            return template
    return None
