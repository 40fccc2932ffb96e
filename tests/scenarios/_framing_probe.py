"""Drive ``scenarios.client`` against the servers named on the command line; print JSON.

Run as a child process by ``test_framing.py`` (importing Locust monkey-patches the process,
which the pytest process must never be). ``argv[1]`` is an aiohttp server, ``argv[2]`` a raw
asyncio server that answers each request with the bytes its path names.
"""

from __future__ import annotations

import json
import sys

import gevent
import gevent.lock
import locust  # noqa: F401  (monkey-patches first, as the locust command does)
from locust.event import EventHook

from scenarios.client import PortalSession


def _runtime() -> dict:
    """What the worker's process runs on: the event loop's and gevent's compiled modules."""
    loop = gevent.get_hub().loop
    return {
        "loop": f"{type(loop).__module__}.{type(loop).__name__}",
        "hub_primitives": type(gevent.get_hub()).wait.__module__,
        "greenlet": gevent.Greenlet.__module__,
        "semaphore": gevent.lock.Semaphore.__module__,
        "modules": sorted(m for m in sys.modules if m.startswith(("gevent._gevent_c", "orjson"))),
    }


def seen(resp) -> list:
    return [resp.status_code, resp.content.decode(), type(resp.error).__name__]


def tls(base: str) -> None:
    """The same framing over TLS (the server's certificate is self-signed)."""
    s = PortalSession(base, EventHook())
    out = {
        "json": seen(s.get("/json")),
        "chunked": len(s.get("/chunked?big=1").content),
        "big": len(s.get("/big").content),
        "echo": seen(s.post("/echo", json={"k": "v"})),
        "timeout": seen(s.get("/slow", timeout=0.2)),
        "after_timeout": seen(s.get("/json")),
    }
    json.dump(out, sys.stdout)


def main() -> None:
    if sys.argv[2] == "--tls":
        tls(sys.argv[1])
        return
    aio, raw = sys.argv[1], sys.argv[2]
    events: list[dict] = []
    hook = EventHook()
    hook.add_listener(
        lambda **kw: events.append(
            {
                "name": kw["name"],
                "exception": None if kw["exception"] is None else repr(kw["exception"]),
            }
        )
    )
    s = PortalSession(aio, hook)
    out: dict = {"runtime": _runtime()}

    out["chunked"] = seen(s.get("/chunked"))
    out["big_chunked"] = len(s.get("/chunked?big=1").content)
    out["empty"] = seen(s.get("/empty"))
    out["big"] = len(s.get("/big").content)
    out["no_content"] = seen(s.delete("/no-content"))
    out["not_modified"] = seen(s.get("/not-modified"))
    out["after_bodiless"] = seen(s.get("/json"))
    out["head"] = seen(s.request("HEAD", "/json"))
    out["close"] = seen(s.get("/close"))
    out["after_close"] = seen(s.get("/json"))
    r = s.get("/json")
    out["header"] = [r.header("x-probe"), r.header("Content-Type"), "X-PROBE" in r.headers]
    out["form"] = seen(s.post("/echo", data={"a": "1"}))

    # The server drops idle connections after 0.2 s: a GET is retried once on a new one.
    gevent.sleep(0.5)
    out["stale_get"] = seen(s.get("/json"))
    gevent.sleep(0.5)
    out["stale_post"] = seen(s.post("/echo", json={"k": "v"}))

    out["timeout"] = seen(s.get("/slow", timeout=0.2))
    out["after_timeout"] = seen(s.get("/json"))
    slow = PortalSession(aio, hook, network_timeout=0.2)
    out["network_timeout"] = seen(slow.get("/slow"))

    refused = []
    for headers in ({"X-A": "1\r\nX-B: 2"}, {"X-A\r\nX-B": "2"}, {"X-A": "1\n"}):
        try:
            s.get("/json", headers=headers)
        except ValueError as exc:
            refused.append(str(exc).split(" ")[1])
    try:
        s.get("/json\r\nX-B: 2")
    except ValueError as exc:
        refused.append(str(exc).split(" ")[1])
    out["refused"] = refused

    r = PortalSession(raw, hook)
    out["malformed"] = seen(r.get("/bad-status"))
    out["bad_length"] = seen(r.get("/bad-length"))
    out["truncated"] = seen(r.get("/truncated"))
    out["interim"] = seen(r.get("/interim"))
    out["to_close"] = seen(r.get("/to-close"))
    out["bad_chunk"] = seen(r.get("/bad-chunk"))
    out["events"] = events
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
