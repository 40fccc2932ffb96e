"""Test citizens of the deterministic pool: credentials derived from the index, and a pool
that never hands one citizen to two users at once.

The mock (and any test deployment of the same kind) knows the same pool (docs/api.md): login
``citizen-<n>``, password ``Passw0rd-<n>``, a second factor when ``n % 5 == 0`` whose code is
fixed (``000000`` unless configured). Locust workers do not talk to each other, so the pool is
striped: worker ``w`` takes ``offset + w``, ``offset + w + stride``, ``offset + w + 2 *
stride``, ... With ``stride`` at least the number of workers, two workers never meet; within a
worker a citizen is leased to one user (or open-model visit) at a time and handed out again
only once released, round robin over the whole stripe (``pool_size / stride`` citizens).

Accounts from a file instead of this pool: :mod:`scenarios.accounts`. Pure Python: no Locust,
no gevent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

__all__ = ["DEFAULT_MFA_CODE", "Citizen", "CitizenPool"]

# Default stride: the most Locust workers a campaign is expected to run (one per core of a
# few load-generator hosts). A larger value only shortens each worker's stripe.
DEFAULT_STRIDE = 64
DEFAULT_POOL_SIZE = 1_000_000  # the mock's default pool (docs/api.md)
DEFAULT_MFA_CODE = "000000"  # the mock's test-mode second factor unless configured
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
    def has_mfa(self) -> bool | None:
        """Whether the portal asks this citizen for a second factor."""
        return self.n % MFA_EVERY == 0

    @property
    def email(self) -> str:
        return f"citizen-{self.n}@mail.example"

    def second_factor(self, fixed_code: str, now_s: float | None = None) -> str:
        """The one-time code to answer with: the deployment's fixed test code."""
        return fixed_code


class CitizenPool:
    """Leases the citizens of one worker's stripe, round robin, never one already leased.

    >>> pool = CitizenPool(worker_index=1, stride=4, pool_size=20)
    >>> first = pool.acquire()
    >>> [first.n] + [pool.acquire().n for _ in range(4)], pool.acquire()
    ([1, 5, 9, 13, 17], None)
    >>> pool.release(first); pool.acquire().n
    1
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
        self._leased: set[int] = set()

    def acquire(self) -> Citizen | None:
        """The next citizen of the stripe that no one holds, or None when all are held."""
        if len(self._leased) >= self.capacity:
            return None
        while True:
            k = next(self._counter) % self.capacity
            if k not in self._leased:
                self._leased.add(k)
                return Citizen(self.offset + self.worker_index + k * self.stride)

    def release(self, citizen: Citizen) -> None:
        """Give ``citizen`` back; it is handed out again after the rest of the stripe."""
        self._leased.discard((citizen.n - self.offset - self.worker_index) // self.stride)

    @property
    def leased(self) -> int:
        return len(self._leased)
