"""Run the ``pay`` journey against a scripted portal; print what the portal received.

The first payment request answers 503, the second is too slow for the client's timeout, the
third succeeds: the journey must send all three with one idempotency key and one body. Run as
a child process by ``test_payment_retries.py`` (Locust monkey-patches the process).
"""

from __future__ import annotations

import json
import sys
import time

import gevent
import locust  # noqa: F401  (monkey-patches first, as the locust command does)
from gevent.pywsgi import WSGIServer
from locust.event import EventHook

from scenarios.client import PortalSession
from scenarios.journeys.context import JourneyContext, Pacing, Tokens
from scenarios.journeys.payments import pay

CHARGE = {"id": "CH-7-0", "amount_kopecks": 150_000, "kind": "fine"}
PAYMENT = {"id": "PAY-1", "charge_id": "CH-7-0", "amount_kopecks": 150_000}
posts: list[dict] = []


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read()

    def answer(status: str, value: dict, extra: tuple = ()) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json"), *extra])
        return [json.dumps(value).encode()]

    if path == "/api/v1/payments/charges":
        return answer("200 OK", {"items": [CHARGE], "total": 1})
    if path == "/api/v1/payments":
        posts.append({"key": environ.get("HTTP_IDEMPOTENCY_KEY"), "body": json.loads(body)})
        if len(posts) == 1:
            return answer("503 Service Unavailable", {"status": 503}, (("Retry-After", "0"),))
        if len(posts) == 2:
            gevent.sleep(1.0)  # processed, but the answer comes after the client gave up
        return answer("201 Created", {**PAYMENT, "status": "processing"})
    if path == "/api/v1/payments/PAY-1":
        return answer("200 OK", {**PAYMENT, "status": "succeeded"})
    if path == "/api/v1/payments/PAY-1/receipt":
        return answer("200 OK", {"amount_kopecks": 150_000})
    return answer("404 Not Found", {"status": 404})


def main() -> None:
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    events: list[tuple[str, str, str | None]] = []
    hook = EventHook()
    hook.add_listener(
        lambda **kw: events.append(
            (
                kw["request_type"],
                kw["name"],
                None if kw["exception"] is None else str(kw["exception"]),
            )
        )
    )
    session = PortalSession(f"http://127.0.0.1:{server.server_port}", hook)
    ctx = JourneyContext(
        session, pacing=Pacing(think_scale=0, poll_interval_s=0.05, payment_timeout_s=0.3)
    )
    ctx.set_tokens(
        Tokens(
            access_token="a", refresh_token="r", expires_in_s=900, expires_at=time.monotonic() + 900
        )
    )
    ok = pay(ctx)
    server.stop()
    json.dump({"ok": ok, "posts": posts, "events": events}, sys.stdout)


if __name__ == "__main__":
    main()
