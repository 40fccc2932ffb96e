"""What the journeys of one Locust process share during a test: its settings, its seed and
worker index, its test accounts, and the numbers of its users.

:func:`runtime_for` gives the process's :class:`Runtime`, made when the first user of a test
needs it (after the master's options reached a worker) and made again at each test start, so
a test started twice in one process repeats its choices. Users number themselves per stream
in the order they are created (``citizen`` 0, 1, 2, ...), and draw every random choice from
``runtime.rng(stream, number)``: the seed, the worker index, the stream and the number make a
generator of its own (:mod:`scenarios.seeding`).
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from scenarios import seeding
from scenarios.accounts import AccountPool, read_accounts
from scenarios.citizens import CitizenPool
from scenarios.settings import Settings, usage_error

if TYPE_CHECKING:
    from scenarios.accounts import Account
    from scenarios.citizens import Citizen

__all__ = ["Runtime", "runtime_for"]

logger = logging.getLogger(__name__)

# How often a user that found every account held looks again (users far outnumbering the
# accounts of a worker wait here instead of sharing one).
LEASE_RETRY_S = 0.1


class Runtime:
    """The journeys' shared state in one process for one test (see the module docstring)."""

    def __init__(self, environment: Any) -> None:
        self.settings = Settings.from_environment(environment)
        runner = getattr(environment, "runner", None)
        self.worker_index = max(0, getattr(runner, "worker_index", 0) or 0)
        seed = self.settings.seed
        self.seed = seeding.fresh_seed() if seed is None else seed
        self.credentials = credential_pool(self.settings, environment, self.worker_index)
        self._numbers: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)
        self._waiting_logged = False

    def next_number(self, stream: str) -> int:
        """The next user number of ``stream`` in this process (0, 1, 2, ...)."""
        return next(self._numbers[stream])

    def rng(self, *path: int | str) -> random.Random:
        """The generator of ``path`` (under this test's seed and this worker's index)."""
        return seeding.stream(self.seed, self.worker_index, *path)

    def try_lease(self) -> Citizen | Account | None:
        """A test account no other user of this worker holds, or None when all are held."""
        return self.credentials.acquire()

    def lease(self) -> Citizen | Account:
        """A test account for a user's life; waits while every one of this worker's is held."""
        while True:
            account = self.credentials.acquire()
            if account is not None:
                return account
            if not self._waiting_logged:
                self._waiting_logged = True
                logger.warning(
                    "every one of the %d test accounts of worker %d is in use; further users "
                    "wait for one to be released",
                    self.credentials.capacity,
                    self.worker_index,
                )
            gevent.sleep(LEASE_RETRY_S)

    def release(self, account: Citizen | Account) -> None:
        self.credentials.release(account)  # type: ignore[arg-type]


def credential_pool(
    settings: Settings, environment: Any, worker_index: int
) -> CitizenPool | AccountPool:
    """The accounts of ``--accounts`` (this worker's share), or the derived citizen pool."""
    if not settings.accounts:
        return CitizenPool(
            worker_index=worker_index,
            stride=settings.citizen_stride,
            pool_size=settings.citizen_pool,
            offset=settings.citizen_offset,
        )
    partitions = settings.account_partitions or _expected_workers(environment)
    return AccountPool(
        read_accounts(settings.accounts),
        worker_index=worker_index,
        partitions=partitions,
        source=settings.accounts,
    )


def _expected_workers(environment: Any) -> int:
    runner = getattr(environment, "runner", None)
    if isinstance(runner, WorkerRunner | MasterRunner):
        # Locust hands the master's --expect-workers to its workers (--processes sets it)
        return max(1, int(getattr(environment.parsed_options, "expect_workers", 1) or 1))
    return 1


_RUNTIMES: dict[int, Runtime] = {}


def runtime_for(environment: Any) -> Runtime:
    """This process's :class:`Runtime` for the current test."""
    runtime = _RUNTIMES.get(id(environment))
    if runtime is None:
        runtime = _RUNTIMES[id(environment)] = Runtime(environment)
    return runtime


@events.test_start.add_listener
def _new_test(environment: Any, **_kwargs: Any) -> None:
    _RUNTIMES.pop(id(environment), None)


@events.init.add_listener
def _check_accounts(environment: Any, **_kwargs: Any) -> None:
    """Read ``--accounts`` on the master (or a local run) before any load: a malformed file is
    one line and exit 2, not a failure in every user of every worker."""
    if isinstance(environment.runner, WorkerRunner):
        return
    settings = Settings.from_environment(environment)
    if not settings.accounts:
        return
    try:
        accounts = read_accounts(settings.accounts)
        partitions = settings.account_partitions or _expected_workers(environment)
        for index in range(partitions):
            AccountPool(
                accounts, worker_index=index, partitions=partitions, source=settings.accounts
            )
    except ValueError as error:  # AccountsFileError included
        usage_error(f"--accounts: {error}")
    logger.info("test accounts: %d from %s", len(accounts), settings.accounts)
