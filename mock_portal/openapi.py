"""The OpenAPI 3.1 document of the mock portal's API."""

from __future__ import annotations

from typing import Any


def build_document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "Portal mock", "version": "1"}, "paths": {}}
