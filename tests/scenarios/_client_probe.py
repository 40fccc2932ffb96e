"""Exercise ``scenarios.client`` against a tiny gevent WSGI server; print what was observed.

Run as a child process by ``test_client.py``: importing Locust monkey-patches the process,
which the pytest process must never be.
"""

from __future__ import annotations

import json
import socket
import sys
import time

import gevent
import locust  # noqa: F401  (monkey-patches first, as the locust command does)
from gevent.pywsgi import WSGIServer
from locust.event import EventHook

from scenarios.client import PortalSession

received: list[dict] = []


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    path = environ["PATH_INFO"]
    received.append(
        {
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "auth": environ.get("HTTP_AUTHORIZATION"),
            "ctype": environ.get("CONTENT_TYPE"),
            "key": environ.get("HTTP_IDEMPOTENCY_KEY"),
            "body": body.decode(),
            "peer": environ["REMOTE_PORT"],
        }
    )
    if path == "/redirect":
        start_response("302 Found", [("Location", "/json"), ("Content-Length", "0")])
        return [b""]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"type": "https://portal.example/problems/not-found"}']
    if path == "/slow":
        gevent.sleep(1.0)
    if path == "/pause":
        gevent.sleep(0.3)
    if path == "/boom":
        start_response("503 Service Unavailable", [("Retry-After", "1")])
        return [b"busy"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"a": 1}']


def main() -> None:
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    base = f"http://127.0.0.1:{server.server_port}"
    events: list[dict] = []
    hook = EventHook()

    def record(**kw):
        events.append(
            {
                "type": kw["request_type"],
                "name": kw["name"],
                "time_ms": kw["response_time"],
                "length": kw["response_length"],
                "exception": None if kw["exception"] is None else repr(kw["exception"]),
                "url": kw["url"],
                "has_response": kw["response"] is not None,
                "keys": sorted(kw),
            }
        )

    hook.add_listener(record)
    s = PortalSession(base, hook)
    out: dict = {}

    r = s.get("/json", params={"q": "a b"})
    out["plain"] = [r.status_code, r.json(), r.ok]
    s.bearer_token = "tok-1"
    s.post("/echo", json={"k": "v"}, name="/echo [json]", headers={"Idempotency-Key": "K1"})
    s.post("/echo", data={"a": "1 2", "b": "x"})
    s.bearer_token = None
    s.get("/json")
    r = s.get("/redirect")
    out["redirect"] = [r.status_code, r.header("Location")]
    r = s.get("/redirect", allow_redirects=True)
    out["followed"] = [r.status_code, r.json()]
    with s.get("/missing", catch_response=True) as r:
        r.success()
    with s.get("/json", catch_response=True) as r:
        r.failure("not what we wanted")
    s.get("/boom")
    with s.rename_request("/grouped/[id]"):
        s.get("/json?id=1")
    s.start_lag_ms = 5.0
    s.get("/json", name="/lagged")
    s.start_lag_ms = None

    r = s.get("/slow", timeout=0.2)
    out["timeout"] = [r.status_code, type(r.error).__name__]
    r = s.get("/json")  # the pool of one connection is usable again
    out["after_timeout"] = r.status_code

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    dead = PortalSession(f"http://127.0.0.1:{port}", hook)
    r = dead.get("/x")
    out["refused"] = [r.status_code, type(r.error).__name__]

    # Two journeys share one connection: the second waits for the first's 0.3 s response.
    shared = PortalSession(base, hook, concurrency=1)
    shared.start_lag_ms = 0.0
    times: dict[str, float] = {}

    def hold() -> None:
        shared.get("/pause", name="/holds-the-connection")
        times["released"] = time.monotonic()

    first = gevent.spawn(hold)
    gevent.sleep(0.05)
    times["asked"] = time.monotonic()
    shared.get("/json", name="/queued")
    first.join()
    shared.start_lag_ms = None
    out["queue_wait_ms"] = (times["released"] - times["asked"]) * 1000.0

    try:
        s.get("/json\r\nX: y")
    except ValueError as exc:
        out["smuggling"] = str(exc)
    out["events"] = events
    out["received"] = received
    server.stop()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
