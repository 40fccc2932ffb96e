"""Options of the journeys: pacing, seed, test accounts and second factors, as Locust custom
arguments.

Each option is also read from the environment (``PORTAL_THINK_SCALE`` for ``--think-scale``,
``PORTAL_SEED`` for ``--seed``, and so on); Locust forwards custom arguments from the master
to its workers when it starts them, so a distributed run is configured in one place. (A file
named by ``--accounts`` must exist at that path on every worker's host.)
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

from locust import events
from locust.runners import WorkerRunner

from scenarios.citizens import DEFAULT_MFA_CODE, DEFAULT_POOL_SIZE, DEFAULT_STRIDE
from scenarios.journeys.context import Pacing
from scenarios.seeding import fresh_seed

__all__ = ["Settings", "usage_error"]

logger = logging.getLogger(__name__)

_DEFAULT_PACING = Pacing()


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The journeys' options as parsed (defaults when Locust is used as a library)."""

    pacing: Pacing = _DEFAULT_PACING
    seed: int | None = None
    mfa_code: str = DEFAULT_MFA_CODE
    accounts: str = ""
    account_partitions: int = 0
    citizen_stride: int = DEFAULT_STRIDE
    citizen_offset: int = 0
    citizen_pool: int = DEFAULT_POOL_SIZE

    @classmethod
    def from_environment(cls, environment: Any) -> Settings:
        options = getattr(environment, "parsed_options", None)
        if options is None or not hasattr(options, "think_scale"):
            return cls()
        return cls(
            pacing=Pacing(
                think_scale=options.think_scale,
                poll_interval_s=options.poll_interval,
                poll_timeout_s=options.poll_timeout,
                payment_timeout_s=options.payment_timeout,
            ),
            seed=options.seed,
            mfa_code=options.mfa_code,
            accounts=options.accounts,
            account_partitions=options.account_partitions,
            citizen_stride=options.citizen_stride,
            citizen_offset=options.citizen_offset,
            citizen_pool=options.citizen_pool,
        )


def usage_error(message: str) -> NoReturn:
    """End the process as argparse does for a bad option: one line on stderr, exit 2."""
    sys.stderr.write(f"locust: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("journeys (scenarios.settings)")
    group.add_argument(
        "--think-scale",
        type=float,
        default=1.0,
        env_var="PORTAL_THINK_SCALE",
        help="multiplier of every human pause (0 removes them; the workload model's means at 1)",
    )
    group.add_argument(
        "--poll-interval",
        type=float,
        default=_DEFAULT_PACING.poll_interval_s,
        env_var="PORTAL_POLL_INTERVAL",
        help="seconds between two status polls of an application or payment",
    )
    group.add_argument(
        "--poll-timeout",
        type=float,
        default=_DEFAULT_PACING.poll_timeout_s,
        env_var="PORTAL_POLL_TIMEOUT",
        help="seconds a journey waits for a decision or a settlement before failing",
    )
    group.add_argument(
        "--payment-timeout",
        type=float,
        default=_DEFAULT_PACING.payment_timeout_s,
        env_var="PORTAL_PAYMENT_TIMEOUT",
        help="seconds a payment request may take before it is retried with the same key",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=None,
        env_var="PORTAL_SEED",
        help="seed of every random choice of the journeys, per worker and user "
        "(default: a fresh one, logged)",
    )
    group.add_argument(
        "--mfa-code",
        default=DEFAULT_MFA_CODE,
        env_var="PORTAL_MFA_CODE",
        help="one-time code of a second factor, for accounts without a TOTP secret",
    )
    group.add_argument(
        "--accounts",
        default="",
        env_var="PORTAL_ACCOUNTS",
        help="CSV of test accounts (header: login,password[,totp_secret]) instead of the "
        "derived citizen-<n> pool; each account is used by one user at a time",
    )
    group.add_argument(
        "--account-partitions",
        type=int,
        default=0,
        env_var="PORTAL_ACCOUNT_PARTITIONS",
        help="shares the accounts are split into, worker w taking share w "
        "(0: the expected number of workers)",
    )
    group.add_argument(
        "--citizen-stride",
        type=int,
        default=DEFAULT_STRIDE,
        env_var="PORTAL_CITIZEN_STRIDE",
        help="at least the number of workers: worker w uses citizens w, w+stride, ...",
    )
    group.add_argument(
        "--citizen-offset",
        type=int,
        default=0,
        env_var="PORTAL_CITIZEN_OFFSET",
        help="first citizen index (separates concurrent campaigns against one deployment)",
    )
    group.add_argument(
        "--citizen-pool",
        type=int,
        default=DEFAULT_POOL_SIZE,
        env_var="PORTAL_CITIZEN_POOL",
        help="size of the deployment's test citizen pool",
    )


@events.init.add_listener
def _resolve_seed(environment: Any, **_kwargs: Any) -> None:
    """The master (or a local run) fixes the seed before any user starts; Locust hands it to
    the workers with the rest of the options."""
    options = environment.parsed_options
    if options is None or not hasattr(options, "seed"):
        return
    if isinstance(environment.runner, WorkerRunner):
        return
    if options.seed is None:
        options.seed = fresh_seed()
        logger.info("seed %d (repeat this run with --seed %d)", options.seed, options.seed)
    else:
        logger.info("seed %d", options.seed)
