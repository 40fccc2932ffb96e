"""Test citizens: credentials derived from the index, and an allocator that never hands one
citizen to two journeys running at once.

The mock (and any test deployment) knows the same pool (docs/api.md): login ``citizen-<n>``,
password ``Passw0rd-<n>``, a second factor when ``n % 5 == 0``. Locust workers do not talk to
each other, so the allocator stripes the pool: worker ``w`` takes ``offset + w``,
``offset + w + stride``, ``offset + w + 2 * stride``, ... With ``stride`` at least the number
of workers, two workers never meet; one worker never reuses a citizen until it has gone round
its whole stripe (``pool_size / stride`` citizens), far more than it runs at once.

Pure Python: no Locust, no gevent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

__all__ = ["Citizen", "CitizenAllocator"]

# Default stride: the most Locust workers a campaign is expected to run (one per core of a
# few load-generator hosts). A larger value only shortens each worker's stripe.
DEFAULT_STRIDE = 64
DEFAULT_POOL_SIZE = 1_000_000  # the mock's default pool (docs/api.md)
MFA_EVERY = 5


@dataclass(frozen=True, slots=True)
class Citizen:
    """One test citizen of the deterministic pool."""

    n: int

    @property
    def login(self) -> str:
        return f"citizen-{self.n}"

    @property
    def password(self) -> str:
        return f"Passw0rd-{self.n}"

    @property
    def has_mfa(self) -> bool:
        return self.n % MFA_EVERY == 0


class CitizenAllocator:
    """Hands out the citizens of one worker's stripe, round robin.

    >>> a = CitizenAllocator(worker_index=1, stride=4, pool_size=20)
    >>> [a.next().n for _ in range(6)]
    [1, 5, 9, 13, 17, 1]
    """

    def __init__(
        self,
        *,
        worker_index: int = 0,
        stride: int = DEFAULT_STRIDE,
        pool_size: int = DEFAULT_POOL_SIZE,
        offset: int = 0,
    ) -> None:
        if stride < 1 or not 0 <= worker_index < stride:
            raise ValueError(
                f"worker index {worker_index} must be in [0, stride={stride}); raise the stride "
                "to at least the number of workers"
            )
        if not 0 <= offset < pool_size or pool_size - offset <= worker_index:
            raise ValueError(f"offset {offset} leaves no citizen for worker {worker_index}")
        self.worker_index = worker_index
        self.stride = stride
        self.pool_size = pool_size
        self.offset = offset
        self.capacity = len(range(offset + worker_index, pool_size, stride))
        self._counter = itertools.count()

    def next(self) -> Citizen:
        k = next(self._counter) % self.capacity
        return Citizen(self.offset + self.worker_index + k * self.stride)
