"""Reading requests and writing JSON responses, with every malformation answered as a 4xx."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from .problems import Problem

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 32
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type=JSON, headers=headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 415 for another media type, 400 if it does not parse."""
    ctype = request.content_type
    if ctype not in (JSON, "application/octet-stream") and not ctype.endswith("+json"):
        raise Problem(415, "unsupported-media-type", f"expected {JSON}, got {ctype}")
    body = await request.read()
    if not body:
        raise Problem(400, "malformed-body", "the request body is empty; expected a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed-body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Problem(400, "malformed-body", "the body must be a JSON object")
    return value


async def read_form(request: web.Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; a repeated parameter is an error."""
    if request.content_type != FORM:
        raise Problem(415, "unsupported-media-type", f"expected {FORM}, got {request.content_type}")
    body = await request.read()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "malformed-body", f"the form body does not parse: {exc}") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise Problem(400, "malformed-body", f"parameter {key!r} is repeated")
        form[key] = value
    return form


def string_field(
    data: dict[str, Any], key: str, errors: list[dict[str, str]], max_len: int = 256
) -> str:
    """A required non-empty string member; appends a field error and returns "" otherwise."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        errors.append({"field": key, "message": "required: a non-empty string"})
        return ""
    if len(value) > max_len:
        errors.append({"field": key, "message": f"at most {max_len} characters"})
        return ""
    return value


def query_int(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise Problem(
            400,
            "invalid-parameter",
            f"query parameter {key!r} must be an integer between {low} and {high}",
            errors=[{"field": key, "message": "not an integer"}],
        )
    value = int(raw)
    if not low <= value <= high:
        raise Problem(
            400,
            "invalid-parameter",
            f"query parameter {key!r} must be between {low} and {high}",
            errors=[{"field": key, "message": f"out of range {low}..{high}"}],
        )
    return value


def pagination(request: web.Request) -> tuple[int, int]:
    """``(page, per_page)`` from the query, 1-based pages."""
    page = query_int(request, "page", 1, 1, 1_000_000)
    per_page = query_int(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    return page, per_page


def page_body(items: list[Any], page: int, per_page: int, total: int) -> dict[str, Any]:
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": -(-total // per_page),
    }
