"""RFC 9457 problem details: the one shape of every error the mock returns.

Handlers raise :class:`Problem`; the error middleware turns it, and any aiohttp HTTP exception,
into ``application/problem+json`` whose ``status`` equals the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "https://portal.example/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Problem(Exception):
    """An error answered as problem details.

    >>> Problem(404, "not-found", "No application A1 for this citizen").status
    404
    """

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra

    def response(self) -> web.Response:
        return problem_response(
            self.status,
            self.slug,
            self.detail,
            errors=self.errors,
            headers=self.headers,
            extra=self.extra,
        )


def title_of(status: int) -> str:
    return _TITLES.get(status, "Client Error" if status < 500 else "Server Error")


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title_of(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def validation_error(errors: Sequence[Mapping[str, str]], detail: str | None = None) -> Problem:
    """422 with a list of ``{"field": ..., "message": ...}``."""
    return Problem(
        422,
        "validation-error",
        detail or f"{len(errors)} field(s) failed validation",
        errors=errors,
    )
