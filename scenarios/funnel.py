"""Journey timings and funnels, recorded beside the request statistics.

A journey runs inside ``with Journey(ctx, "pay") as j:``. It reports, as Locust request
events (so they reach the CSV files, the web UI and the master like any request):

- ``FUNNEL`` ``pay/1 charges``, ``pay/2 nothing to pay``, ... one event per step reached, whose
  response time is the time from the journey's start to that step: the count of each row is
  how many journeys reached the step. Steps are declared up front, so a step keeps its number
  whichever branch led to it (``login/3 code`` counts logins with and without a second
  factor);
- ``JOURNEY`` ``pay``: the journey's duration, a failure when it stopped early, with the step
  and the reason (bounded text: statuses and problem types, never ids). Every journey that
  starts ends with exactly one such event, so its count is the funnel's step 0 (no separate
  "start" event: at thousands of journeys a second each event costs load-generator CPU).

``j.call(...)`` makes a request with ``catch_response=True``, checks the status, marks the
request failed with a reason, and aborts the journey; nothing escapes the ``with`` block but
Locust's own control flow (``StopUser``, ``RescheduleTask``, greenlet kills).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from gevent import GreenletExit
from locust.exception import InterruptTaskSet, RescheduleTask, StopUser

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from scenarios.client import PortalResponse
    from scenarios.journeys.context import JourneyContext

__all__ = ["FUNNEL", "JOURNEY", "Journey", "JourneyFailed"]

logger = logging.getLogger(__name__)

JOURNEY = "JOURNEY"
FUNNEL = "FUNNEL"

_CONTROL_FLOW = (StopUser, RescheduleTask, InterruptTaskSet, GreenletExit)


class JourneyFailed(Exception):
    """Raised inside a journey to stop it; recorded as the journey's failure reason."""


class Journey:
    """Context manager around one journey; see the module docstring."""

    def __init__(self, ctx: JourneyContext, name: str, steps: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.name = name
        self.client = ctx.client
        self.ok = False
        self._index = {step: i for i, step in enumerate(("start", *steps))}
        self._step_name = "start"

    def __enter__(self) -> Journey:
        self._start_time = time.time()
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is not None and isinstance(exc, _CONTROL_FLOW):
            return False
        elapsed_ms = (time.perf_counter() - self._start) * 1000.0
        error: BaseException | None = None
        if isinstance(exc, JourneyFailed):
            error = exc
        elif exc is not None:
            logger.warning("journey %s crashed at %s", self.name, self._step_name, exc_info=exc)
            error = JourneyFailed(f"{self._step_name}: {type(exc).__name__}: {exc}")
        self.ok = error is None
        self.client.report(
            JOURNEY, self.name, elapsed_ms, exception=error, start_time=self._start_time
        )
        return True

    def step(self, step: str) -> None:
        """Record that the journey reached ``step`` (one of the declared steps)."""
        if step not in self._index:
            raise ValueError(f"journey {self.name} declares no step {step!r}")
        self._step_name = step
        self._report_step(step)

    def fail(self, reason: str) -> None:
        """Stop the journey at the current step with ``reason``."""
        raise JourneyFailed(f"{self._step_name}: {reason}")

    def _report_step(self, step: str) -> None:
        elapsed_ms = (time.perf_counter() - self._start) * 1000.0
        self.client.report(
            FUNNEL,
            f"{self.name}/{self._index[step]} {step}",
            elapsed_ms,
            corrected=False,
            locust_stats=False,
        )

    def call(
        self,
        method: str,
        url: str,
        *,
        expect: int | Collection[int] = 200,
        name: str | None = None,
        check: Callable[[Any], str | None] | None = None,
        **kwargs: Any,
    ) -> tuple[PortalResponse, Any]:
        """One request of the journey: ``(response, parsed JSON body or None)``.

        A status not in ``expect``, a body that is not JSON, or ``check(body)`` returning a
        reason marks the request failed and aborts the journey.
        """
        expected = (expect,) if isinstance(expect, int) else tuple(expect)
        reason = None
        body = None
        with self.client.request(method, url, name=name, catch_response=True, **kwargs) as resp:
            if resp.status_code not in expected:
                reason = _status_reason(resp, expected)
            else:
                if resp.content:
                    try:
                        body = resp.json()
                    except ValueError:
                        reason = f"HTTP {resp.status_code} body is not JSON"
                if reason is None and check is not None:
                    reason = check(body)
            if reason is None:
                resp.success()
            else:
                resp.failure(reason)
        if reason is not None:
            self.fail(f"{method} {name or url}: {reason}")
        return resp, body


def _status_reason(resp: PortalResponse, expected: tuple[int, ...]) -> str:
    if resp.status_code == 0:
        return f"no response ({type(getattr(resp, 'error', None)).__name__})"
    what = ""
    if (resp.content or b"")[:1] == b"{":
        try:
            problem = resp.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            kind = str(problem.get("type") or problem.get("error") or problem.get("title", ""))
            what = " " + kind.rsplit("/", 1)[-1]
            errors = problem.get("errors")
            if isinstance(errors, list) and errors:
                names = sorted({str(e.get("field", "?")) for e in errors if isinstance(e, dict)})
                what += f" [{', '.join(names[:4])}]"
    want = "/".join(map(str, expected))
    return f"HTTP {resp.status_code}{what} (expected {want})"
