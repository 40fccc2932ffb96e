"""When a signed-in citizen refreshes: print what ``ensure_session`` did for each token age.

Run as a child process by ``test_refresh.py`` (importing the journeys imports Locust, which
monkey-patches the process the pytest process must never be).
"""

from __future__ import annotations

import json
import sys
import time

import locust  # noqa: F401  (monkey-patches first, as the locust command does)

from scenarios.journeys import sso
from scenarios.journeys.context import Tokens


class _Ctx:
    def __init__(self, tokens: Tokens | None) -> None:
        self.tokens = tokens


def main() -> None:
    calls: list[str] = []
    sso.login = lambda ctx: calls.append("login") or True  # type: ignore[assignment]
    sso.refresh = lambda ctx: calls.append("refresh") or True  # type: ignore[assignment]
    out = {}
    lifetime = 900.0
    for label, left in (("fresh", 890.0), ("at 25 %", 225.0), ("at 15 %", 135.0), ("10 s", 10.0)):
        tokens = Tokens("a", "r", expires_in_s=lifetime, expires_at=time.monotonic() + left)
        calls.clear()
        sso.ensure_session(_Ctx(tokens))  # type: ignore[arg-type]
        out[label] = list(calls)
    for left in (40.0, 20.0):
        short = Tokens("a", "r", expires_in_s=60.0, expires_at=time.monotonic() + left)
        calls.clear()
        sso.ensure_session(_Ctx(short))  # type: ignore[arg-type]
        out[f"60 s token, {left:g} s left"] = list(calls)
    calls.clear()
    sso.ensure_session(_Ctx(None))  # type: ignore[arg-type]
    out["signed out"] = list(calls)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
