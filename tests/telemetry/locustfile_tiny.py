"""A tiny locustfile for the telemetry's integration tests (independent of the journeys).

Each task makes known requests against the mock portal: the catalog, the health check, an
unknown service (a 404 the task marks failed with a fixed reason) and a ``JOURNEY`` event,
so every section of ``summary.json`` gets rows.
"""

from __future__ import annotations

import time

from locust import FastHttpUser, constant, task

from scenarios.telemetry import plugin

plugin.install()  # the telemetry's arguments and listeners, in this process only


class Browser(FastHttpUser):
    wait_time = constant(0.02)

    @task(4)
    def catalog(self) -> None:
        self.client.get("/api/v1/services?per_page=5", name="/api/v1/services")

    @task(2)
    def health(self) -> None:
        self.client.get("/healthz")

    @task(1)
    def missing_service(self) -> None:
        with self.client.get(
            "/api/v1/services/no-such-service", name="/api/v1/services/{code}", catch_response=True
        ) as resp:
            if resp.status_code == 404:
                resp.failure("HTTP 404 not-found (expected 200)")
            else:
                resp.success()

    @task(1)
    def journey(self) -> None:
        start = time.perf_counter()
        self.client.get("/healthz", name="/healthz (journey)")
        self.environment.events.request.fire(
            request_type="JOURNEY",
            name="browse",
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=0,
            response=None,
            context={},
            exception=None,
            start_time=time.time(),
            url=None,
        )
