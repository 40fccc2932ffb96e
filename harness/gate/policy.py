"""What a gate checks: the objectives, the comparison's policy and the default baseline.

Read from a campaign's ``[slo]`` and ``[gate]`` tables by :mod:`harness.campaign`, or from an
SLO file; :func:`harness.gate.judge.judge` applies it to a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.gate.compare import Policy
from harness.gate.slo import Objective


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """Objectives (``[slo]``), the comparison policy (``[gate]``) and the default baseline."""

    objectives: tuple[Objective, ...] = ()
    policy: Policy = field(default_factory=Policy)
    baseline: str | None = None

    @property
    def configured(self) -> bool:
        """Whether there is anything to gate on without a baseline given on the command line."""
        return bool(self.objectives) or self.baseline is not None
