"""This project's load test: one journey of a visitor browsing the portal's service catalog.

A journey is a task of a Locust user; this one runs on the harness's lean HTTP client
(``PortalUser``: pooled keep-alive connections, JSON helpers, Locust's request events), so
its requests reach the results, the live view, the report and the gate like any other.
Add tasks (``@task(weight)``) or users for more journeys; name requests with ``name=``
so that every service card is one row (and one SLO target), not one row per code.
"""

from __future__ import annotations

import random

from locust import between, task

from scenarios.client import PortalUser

SERVICES = "/api/v1/services"
SERVICE_CARD = "/api/v1/services/[code]"


class CatalogVisitor(PortalUser):
    """Opens the catalog, then the cards of a few services it lists."""

    wait_time = between(0.5, 2.0)  # seconds between two journeys of one visitor

    @task
    def browse_catalog(self) -> None:
        with self.client.get(
            SERVICES, params={"per_page": 20}, name=SERVICES, catch_response=True
        ) as resp:
            items = resp.json().get("items") if resp.ok else None
            if not items:
                resp.failure(f"HTTP {resp.status_code}: no services listed")
                return
        for item in random.sample(items, k=min(3, len(items))):
            code = item["code"]
            with self.client.get(
                f"{SERVICES}/{code}", name=SERVICE_CARD, catch_response=True
            ) as card:
                if card.ok and card.json().get("code") != code:
                    card.failure("the card of another service")
