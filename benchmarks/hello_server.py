"""The baseline of ``mock_vs_hello``: the smallest aiohttp + uvloop + orjson server.

It answers ``GET /`` with a small JSON object and nothing else: no middleware, no metrics, no
access log, so its throughput is what the stack itself costs per request. It prints one line,
``hello ready on http://127.0.0.1:PORT``, once it accepts connections, and stops on SIGTERM or
SIGINT. Run it as ``python -m benchmarks.hello_server --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

import orjson
import uvloop
from aiohttp import web

BACKLOG = 4096  # the same accept backlog as the mock, so connection bursts are treated alike
BODY = orjson.dumps({"message": "hello, citizen"})


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    site = web.SockSite(runner, sock, backlog=BACKLOG)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"hello ready on http://{host}:{sock.getsockname()[1]}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Bare aiohttp hello-world (benchmark baseline).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
