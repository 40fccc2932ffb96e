"""The portal's journeys with every random draw recorded, for the seed tests.

Each user and each open-model visit draws from its own generator; here each generator is
wrapped so that every draw (and the journey chosen, the account signed in) is appended to
``$PORTAL_RECORD_DIR/<pid>.jsonl`` as ``[worker index, owner, kind, value]``. The classes keep
the seed streams of the ones they extend, so they make the same choices as the real ones.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from scenarios import (
    open_model,
    shapes,  # noqa: F401  (--shape and its options)
    users,
)
from scenarios.telemetry import plugin

plugin.install()

_OUT = Path(os.environ["PORTAL_RECORD_DIR"]) / f"{os.getpid()}.jsonl"


def _record(worker: int, owner: str, kind: str, value: Any) -> None:
    with _OUT.open("a") as f:
        f.write(json.dumps([worker, owner, kind, value]) + "\n")


class Recording(random.Random):
    """A generator that continues ``source``'s sequence and records every draw."""

    def __init__(self, source: random.Random, worker: int, owner: str) -> None:
        super().__init__()
        self.setstate(source.getstate())
        self.worker = worker
        self.owner = owner

    def random(self) -> float:
        value = super().random()
        _record(self.worker, self.owner, "random", value)
        return value

    def getrandbits(self, k: int) -> int:
        value = super().getrandbits(k)
        _record(self.worker, self.owner, "bits", value)
        return value


class RecordedCitizen(users.CitizenUser):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.owner = f"{self.seed_stream}/{self.number}"
        self.rng = Recording(self.rng, self.runtime.worker_index, self.owner)

    def on_start(self) -> None:
        super().on_start()
        _record(self.runtime.worker_index, self.owner, "login", self.account.login)

    def next_journey(self) -> str:
        name = super().next_journey()
        _record(self.runtime.worker_index, self.owner, "journey", name)
        return name


class RecordedVisitor(users.AnonymousVisitor):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rng = Recording(self.rng, self.runtime.worker_index, f"anonymous/{self.number}")


class RecordedVisits(open_model.OpenModelVisits):
    fixed_count = 1  # kept by Locust, and so chosen as the executor when the open model runs

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.arrival_rng = Recording(
            self.arrival_rng, self.runtime.worker_index, f"open/{self.number}/arrivals"
        )

    def visit_rng(self, index: int) -> random.Random:
        owner = f"open/{self.number}/visit/{index}"
        return Recording(super().visit_rng(index), self.runtime.worker_index, owner)
