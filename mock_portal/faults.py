"""Behaviour knobs applied on the request path: latency, errors, resets, slow bodies,
simulated backend capacity and load shedding.

Simulated capacity is a multi-server FCFS queue kept in virtual time: each of ``servers``
clerks has the instant it becomes free; an arriving request takes the earliest-free clerk,
starts at ``max(now, free_at)`` and finishes one sampled service time later, and the handler
answers at that finish instant. The queue is exact whatever the event loop's timer resolution,
so one mock process saturates at ``servers / mean service time`` requests per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import random
import socket
import struct

from .config import Capacity, Faults, Latency, RouteFaults
from .metrics import PortalMetrics


def sample(latency: Latency, rng: random.Random) -> float:
    """One draw from a latency distribution, in seconds."""
    kind = latency.kind
    if kind == "fixed":
        return latency.value_s
    if kind == "uniform":
        return rng.uniform(latency.low_s, latency.high_s)
    if kind == "exponential":
        return rng.expovariate(1.0 / latency.value_s) if latency.value_s > 0 else 0.0
    return latency.median_s * math.exp(latency.sigma * rng.gauss(0.0, 1.0))


class ServerPool:
    """A bounded pool of simulated backend servers (see the module docstring)."""

    def __init__(self, service: str, spec: Capacity, rng: random.Random, metrics: PortalMetrics):
        self.spec = spec
        self._rng = rng
        self._free_at = [0.0] * spec.servers
        self._waiting = 0
        self._depth = metrics.queue_depth.labels(service)
        metrics.capacity_rps.labels(service).set(spec.capacity_rps)

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, heapq.heappop(self._free_at))
        finish = start + sample(self.spec.service_time, self._rng)
        heapq.heappush(self._free_at, finish)
        queued = start > now
        if queued:
            self._waiting += 1
            self._depth.set(self._waiting)
        try:
            await asyncio.sleep(finish - now)
        finally:
            if queued:
                self._waiting -= 1
                self._depth.set(self._waiting)


class FaultEngine:
    """The live fault configuration of one process; replaced whole on ``PUT /admin/faults``."""

    def __init__(self, faults: Faults, metrics: PortalMetrics) -> None:
        self.metrics = metrics
        self.version = 0
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.pools: dict[str, ServerPool] = {}
        self.apply(faults, version=0)

    def apply(self, faults: Faults, version: int) -> None:
        self.faults = faults
        self.version = version
        if faults.seed is not None:
            self.rng.seed(faults.seed)
        for service in list(self.pools):
            if service not in faults.capacity:
                self.metrics.capacity_rps.labels(service).set(0)
        self.pools = {
            service: ServerPool(service, spec, self.rng, self.metrics)
            for service, spec in faults.capacity.items()
        }
        self.active = bool(faults.routes or faults.capacity or faults.shed_in_flight)

    def route_faults(self, route: str) -> RouteFaults | None:
        routes = self.faults.routes
        if not routes:
            return None
        return routes.get(route) or routes.get("*")

    def count(self, route: str, kind: str) -> None:
        self.metrics.faults.labels(route, kind).inc()

    def hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


def reset_connection(transport: asyncio.BaseTransport | None) -> None:
    """Close the client's connection with a TCP RST, as a crashed backend or proxy would."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()
