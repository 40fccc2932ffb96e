"""Seeded random streams: one generator per worker, user and purpose, derived from one seed.

Every random choice of the scenarios (which journey comes next, the form values, the think
times, the open model's arrival times, a visit's draws) comes from a ``random.Random`` made by
:func:`stream` from the run's seed and a path naming its owner, e.g.
``stream(seed, worker_index, "citizen", user_number)``. Streams never share state, so the
sequence of one user does not depend on how its draws interleave with another's, nor on the
global ``random`` module, which nothing here uses. The same seed gives the same sequences;
another seed, others.

What stays unseeded on purpose: PKCE verifiers, OAuth ``state`` values and idempotency keys
(``secrets``, ``uuid4``), which must be unique across runs: a repeated idempotency key would
replay an earlier run's payment instead of making a new one.

Pure Python: no Locust, no gevent.
"""

from __future__ import annotations

import hashlib
import random
import secrets

__all__ = ["derive", "fresh_seed", "stream"]

_SEED_BITS = 63  # fits a signed 64-bit integer wherever a seed is stored or printed


def derive(seed: int, *path: int | str) -> int:
    """A 64-bit seed for ``path`` under ``seed`` (SHA-256, so stable across processes and
    Python versions, unlike ``hash()``)."""
    text = ":".join(str(part) for part in (seed, *path))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def stream(seed: int, *path: int | str) -> random.Random:
    """The random generator of ``path`` under ``seed``."""
    return random.Random(derive(seed, *path))


def fresh_seed() -> int:
    """A new seed for a run that was given none."""
    return secrets.randbits(_SEED_BITS)
