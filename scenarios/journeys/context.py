"""What a journey runs with: the HTTP session, the citizen, their tokens, and the clock.

Closed-model users keep one :class:`JourneyContext` for their whole life (one citizen, one
session that signs in and out); the open-model executor makes one per arrival. Pauses are the
workload model's means (``scenarios.workload.Assumptions``) scaled by ``think_scale``, drawn
uniformly within +-50 % so that users do not march in step.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent

from scenarios.citizens import DEFAULT_MFA_CODE
from scenarios.workload import Assumptions

if TYPE_CHECKING:
    from scenarios.accounts import Account
    from scenarios.citizens import Citizen
    from scenarios.client import PortalSession

__all__ = ["JourneyContext", "Pacing", "Tokens"]

# Floor of a poll pause: even with think times off, a status poll never becomes a busy loop.
POLL_FLOOR_S = 0.05
# A token is refreshed before a journey once less than this share of its lifetime is left (a
# browser refreshes shortly before expiry; 20 % of the mock's 900 s is three minutes), and
# never later than REFRESH_MARGIN_S before expiry: the longest journey (an application polled
# until its decision) must not outlive its token.
REFRESH_AT_REMAINING = 0.2
REFRESH_MARGIN_S = 30.0


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """Pauses of a journey, seconds; ``think_scale`` 0 removes every human pause."""

    think_scale: float = 1.0
    step_think_s: float = Assumptions().step_think_s
    journey_think_s: float = Assumptions().journey_think_s
    poll_interval_s: float = Assumptions().poll_interval_s
    poll_timeout_s: float = 60.0
    payment_timeout_s: float = 15.0  # patience of the payment page before it retries

    def __post_init__(self) -> None:
        for name in ("think_scale", "step_think_s", "journey_think_s", "poll_interval_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"Pacing.{name} must be >= 0")
        if self.poll_timeout_s <= 0 or self.payment_timeout_s <= 0:
            raise ValueError("Pacing.poll_timeout_s and payment_timeout_s must be > 0")


@dataclass(slots=True)
class Tokens:
    """The citizen's OAuth tokens; ``expires_at`` on the monotonic clock."""

    access_token: str
    refresh_token: str
    expires_in_s: float
    expires_at: float

    @classmethod
    def from_response(cls, body: dict[str, object]) -> Tokens:
        expires_in = float(body["expires_in"])  # type: ignore[arg-type]
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_in_s=expires_in,
            expires_at=time.monotonic() + expires_in,
        )

    def needs_refresh(self) -> bool:
        margin = max(REFRESH_AT_REMAINING * self.expires_in_s, REFRESH_MARGIN_S)
        return self.expires_at - time.monotonic() < margin


class JourneyContext:
    """State one journey (or a closed-model user's sequence of journeys) works on."""

    def __init__(
        self,
        client: PortalSession,
        *,
        citizen: Citizen | Account | None = None,
        pacing: Pacing | None = None,
        rng: random.Random | None = None,
        mfa_code: str = DEFAULT_MFA_CODE,
    ) -> None:
        self.client = client
        self.citizen = citizen
        """The test account signed in: a derived citizen or an account of ``--accounts``."""
        self.pacing = pacing or Pacing()
        self.rng = rng or random.Random()
        self.mfa_code = mfa_code
        """The fixed one-time code, for accounts without a TOTP secret (``--mfa-code``)."""
        self.tokens: Tokens | None = None

    def second_factor_code(self) -> str:
        """What to answer the portal's second-factor challenge with, now."""
        if self.citizen is None:
            raise ValueError("a second factor needs a citizen on the journey context")
        return self.citizen.second_factor(self.mfa_code)

    def set_tokens(self, tokens: Tokens | None) -> None:
        self.tokens = tokens
        self.client.bearer_token = tokens.access_token if tokens is not None else None

    def think(self, mean_s: float | None = None) -> None:
        """A human pause before the next step (``step_think_s`` by default)."""
        mean = self.pacing.step_think_s if mean_s is None else mean_s
        pause = mean * self.pacing.think_scale * self.rng.uniform(0.5, 1.5)
        if pause > 0:
            gevent.sleep(pause)

    def between_journeys(self) -> float:
        """Locust ``wait_time``: the pause between two journeys of a visit."""
        return self.pacing.journey_think_s * self.pacing.think_scale * self.rng.uniform(0.5, 1.5)

    def poll_pause(self) -> None:
        gevent.sleep(max(POLL_FLOOR_S, self.pacing.poll_interval_s))
