"""The harness's exceptions; the CLI catches only :class:`HarnessError`.

HarnessError                 base: printed as ``Type: message``, exit code 1
├── UsageError               bad flags or files (campaign, SLO): exit code 2
├── ProcessFailed            a child process (mock, locust, prometheus) failed
└── ResultsError             a results folder is missing or unreadable
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness reports to its user."""

    exit_code = 1


class UsageError(HarnessError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class ProcessFailed(HarnessError):
    """A child process did not start, or died."""


class ResultsError(HarnessError):
    """A results folder is missing, incomplete or unreadable."""
