"""Warnings that come in floods, written as a few lines.

Malformed requests come by the thousand from a fuzzer, client disconnects from a load test
being stopped, and store failures from every request while a disk is full: each kind is
logged a few lines at a time, never a traceback per event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

LOG_LINES_PER_WINDOW = 10
LOG_WINDOW_S = 10.0


class RateLimitedLog:
    """Warnings of one kind, at most ``lines`` per ``window_s``; the rest are counted, and said
    in one line with the first warning of a later window.

    >>> limited = RateLimitedLog(logging.getLogger("x"), lines=1, window_s=60)
    >>> limited.warning("first"), limited.warning("second"), limited.suppressed
    (True, False, 1)
    """

    def __init__(
        self, logger: logging.Logger, *, lines: int = LOG_LINES_PER_WINDOW,
        window_s: float = LOG_WINDOW_S,
    ) -> None:  # fmt: skip
        self._log = logger
        self._lines = lines
        self._window_s = window_s
        self._opened = time.monotonic()
        self._written = 0
        self.suppressed = 0

    def warning(self, message: str, *args: Any) -> bool:
        """Log ``message % args`` unless this window is full; True if it was written."""
        now = time.monotonic()
        if now - self._opened >= self._window_s:
            if self.suppressed:
                self._log.warning(
                    "%d more such warnings in the last %.0f s were not logged",
                    self.suppressed, now - self._opened,
                )  # fmt: skip
            self._opened, self._written, self.suppressed = now, 0, 0
        if self._written >= self._lines:
            self.suppressed += 1
            return False
        self._written += 1
        self._log.warning(message, *args)
        return True
