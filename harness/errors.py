"""The harness's exceptions and exit codes; the CLI catches only :class:`HarnessError`.

HarnessError                 base: printed as ``Type: message``, exit code 1
├── UsageError               bad flags or files (campaign, SLO, baseline refs): exit code 2
├── WorkersMissing           workers of a run never joined, or were refused: exit code 2
├── ProcessFailed            a child process (mock, locust, prometheus) did not start or died
│   └── PrometheusError      the Prometheus server or its HTTP API failed
│       ├── PrometheusStartError    the binary is missing, or it exited or never became ready
│       ├── PrometheusQueryError    the API answered an error, or could not be reached
│       └── PrometheusTimeoutError  a condition on its data did not come true in time
└── ResultsError             a results folder is missing, incomplete or unreadable
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Every exit code of ``portal-load``, in one table.

    A run: ``OK`` complete, ``PARTIAL`` interrupted (results written, marked partial),
    ``DEGRADED`` complete but its figures are in doubt (see the run's ``checks.flags``),
    ``WORKERS_MISSING`` workers expected from other hosts never joined or were refused.
    The gate: ``OK`` pass, ``GATE_FAILED`` an SLO breached or a regression established,
    ``UNDERPOWERED`` too little data to detect the tolerance (only with ``--require-power``).
    ``stack status``: ``NOT_RUNNING``.
    """

    OK = 0
    ERROR = 1
    GATE_FAILED = 1
    USAGE = 2
    WORKERS_MISSING = 2
    PARTIAL = 3
    NOT_RUNNING = 3
    DEGRADED = 4
    UNDERPOWERED = 5
    INTERRUPTED = 130


class HarnessError(Exception):
    """Base of every error the harness reports to its user."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(HarnessError):
    """The user asked for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE


class WorkersMissing(HarnessError):
    """A run's workers did not all join its master in time, or were refused by it: the run
    was not the one asked for (its folder is kept, marked partial)."""

    exit_code = ExitCode.WORKERS_MISSING


class ProcessFailed(HarnessError):
    """A child process did not start, or died."""


class PrometheusError(ProcessFailed):
    """The Prometheus server or its HTTP API failed."""


class PrometheusStartError(PrometheusError):
    """The Prometheus binary is missing, exited, or never became ready."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered an error, or could not be reached."""


class PrometheusTimeoutError(PrometheusError):
    """A condition on Prometheus's data did not become true in time."""


class ResultsError(HarnessError):
    """A results folder is missing, incomplete or unreadable."""
