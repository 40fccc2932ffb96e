"""Anonymous catalog browsing, and what other journeys need from the catalog.

Browse: the first page of the catalog, a search or a category filter built from what that
page showed, then a few service cards (counts from ``scenarios.workload.Assumptions``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from scenarios.funnel import Journey
from scenarios.workload import Assumptions

if TYPE_CHECKING:
    from scenarios.journeys.context import JourneyContext

__all__ = ["SERVICE_NAME", "browse", "service_codes"]

SERVICE_NAME = "/api/v1/services/[code]"
SEARCH_NAME = "/api/v1/services [search]"
LIST_NAME = "/api/v1/services"
SYNC_NAME = "/api/v1/services [sync]"
MAX_PER_PAGE = 100  # the API's page size limit (docs/api.md: every listing is paginated)
MAX_SYNC_PAGES = 50  # 500+ services fit in 6 pages of 100; a bound, never reached

_ASSUMPTIONS = Assumptions()
_WORD = re.compile(r"[A-Za-z]{5,}")

# Service codes of the catalog, fetched once per process by the first journey that needs one.
_CODES: list[str] = []


def _page_ok(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return "listing without items"
    return None


def service_codes(j: Journey) -> list[str]:
    """Every service code of the catalog (cached for the process after the first call)."""
    if not _CODES:
        codes: list[str] = []
        page, pages = 1, 1
        while page <= min(pages, MAX_SYNC_PAGES):
            _, body = j.call(
                "GET",
                "/api/v1/services",
                params={"page": page, "per_page": MAX_PER_PAGE},
                name=SYNC_NAME,
                check=_page_ok,
            )
            codes += [item["code"] for item in body["items"]]
            pages = int(body.get("pages", 1))
            page += 1
        if not codes:
            j.fail("the catalog is empty")
        _CODES[:] = codes
    return _CODES


def browse(ctx: JourneyContext) -> bool:
    """Browse the catalog as an anonymous visitor (or a signed-in one; the token is kept)."""
    with Journey(ctx, "browse", ("catalog", "search", "service cards")) as j:
        rng = ctx.rng
        _, body = j.call("GET", "/api/v1/services", name=LIST_NAME, check=_page_ok)
        items = body["items"]
        if not items:
            j.fail("the catalog's first page is empty")
        j.step("catalog")
        seen = list(items)
        for _ in range(_ASSUMPTIONS.catalog_pages - 1):
            ctx.think()
            item = rng.choice(items)
            words = _WORD.findall(str(item.get("title", "")))
            if words and rng.random() < 0.5:
                params = {"q": rng.choice(words).lower()}
            else:
                params = {"category": item["category"]}
            _, body = j.call(
                "GET", "/api/v1/services", params=params, name=SEARCH_NAME, check=_page_ok
            )
            if not body["items"]:
                j.fail(f"search by {next(iter(params))} found nothing it was built from")
            seen += body["items"]
            j.step("search")
        for _ in range(_ASSUMPTIONS.service_views):
            ctx.think()
            code = rng.choice(seen)["code"]
            j.call(
                "GET",
                f"/api/v1/services/{code}",
                name=SERVICE_NAME,
                check=lambda b, code=code: (
                    None
                    if isinstance(b, dict) and b.get("code") == code
                    else "another service's card"
                ),
            )
        j.step("service cards")
    return j.ok
