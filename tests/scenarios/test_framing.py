"""The client's HTTP/1.1 framing against a real aiohttp server (and a raw asyncio server for
answers aiohttp would never give), both on ephemeral ports in this process's event loop; the
client runs in a child process, since importing Locust monkey-patches the process."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_framing_probe.py")
PEERS = web.AppKey("peers", list)
# A self-signed certificate for 127.0.0.1, valid for a century: the test server's, and nothing
# else's.
TLS = Path(__file__).with_name("tls")

RAW_ANSWERS = {
    b"/bad-status": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    b"/bad-length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    b"/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    b"/interim": b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"/to-close": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
    b"/bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


def _app() -> web.Application:
    app = web.Application()
    app[PEERS] = []

    @web.middleware
    async def peers(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        port = request.transport.get_extra_info("peername")[1]
        app[PEERS].append([request.method, request.path, port])
        return await handler(request)

    app.middlewares.append(peers)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if request.query.get("big"):
            for _ in range(100):
                await resp.write(b"x" * 1000)
        else:
            await resp.write(b"hello ")
            await resp.write(b"world")
        await resp.write_eof()
        return resp

    async def close(request: web.Request) -> web.Response:
        resp = web.Response(text="bye")
        resp.force_close()
        return resp

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    app.router.add_get("/chunked", chunked)
    app.router.add_get("/empty", _fixed(lambda: web.Response(body=b"")))
    app.router.add_get("/big", _fixed(lambda: web.Response(body=b"y" * 200_000)))
    app.router.add_delete("/no-content", _fixed(lambda: web.Response(status=204)))
    app.router.add_get("/not-modified", _fixed(lambda: web.Response(status=304)))
    app.router.add_get(
        "/json", _fixed(lambda: web.json_response({"a": 1}, headers={"X-Probe": "yes"}))
    )
    app.router.add_get("/close", close)
    app.router.add_post("/echo", echo)
    app.router.add_get("/slow", slow)
    return app


def _fixed(make: Callable[[], web.Response]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return make()

    return handler


@pytest.fixture
async def raw_server() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        writer.write(RAW_ANSWERS[path])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def _run_probe(*args: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result: dict = json.loads(out)
    return result


@pytest.fixture
async def probe(aiohttp_server: Any, raw_server: str) -> dict:
    app = _app()
    server = await aiohttp_server(app, keepalive_timeout=0.2)
    result = await _run_probe(str(server.make_url("")).rstrip("/"), raw_server)
    result["peers"] = app[PEERS]
    return result


async def test_https_is_framed_the_same_way(aiohttp_server: Any) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    app = _app()
    server = await aiohttp_server(app, ssl=context)
    result = await _run_probe(str(server.make_url("")).rstrip("/"), "--tls")
    assert result == {
        "json": [200, '{"a": 1}', "NoneType"],
        "chunked": 100_000,
        "big": 200_000,
        "echo": [200, '{"k":"v"}', "NoneType"],
        "timeout": [0, "", "RequestTimeout"],
        "after_timeout": [200, '{"a": 1}', "NoneType"],
    }
    assert len({port for _, _, port in app[PEERS][:4]}) == 1  # kept alive


async def test_framing_of_bodies(probe: dict) -> None:
    assert probe["chunked"] == [200, "hello world", "NoneType"]
    assert probe["big_chunked"] == 100_000
    assert probe["empty"] == [200, "", "NoneType"]
    assert probe["big"] == 200_000
    assert probe["no_content"] == [204, "", "NoneType"]
    assert probe["not_modified"] == [304, "", "NoneType"]
    assert probe["after_bodiless"] == [200, '{"a": 1}', "NoneType"]
    assert probe["head"] == [200, "", "NoneType"]
    assert probe["form"] == [200, "a=1", "NoneType"]
    assert probe["header"] == ["yes", "application/json; charset=utf-8", True]
    # every request up to the one whose response closed the connection shared one connection
    paths = [path for _, path, _ in probe["peers"]]
    ports = [port for _, _, port in probe["peers"]]
    assert len(set(ports[: paths.index("/close") + 1])) == 1, probe["peers"]


def _next_request_reconnected(probe: dict, path: str) -> bool:
    """Whether the request after the first one to ``path`` came on another connection (the
    server saw another client port)."""
    paths = [p for _, p, _ in probe["peers"]]
    ports = [port for _, _, port in probe["peers"]]
    at = paths.index(path)
    return bool(ports[at + 1] != ports[at])


async def test_connection_close_is_honoured(probe: dict) -> None:
    assert probe["close"] == [200, "bye", "NoneType"]
    assert probe["after_close"] == [200, '{"a": 1}', "NoneType"]
    assert _next_request_reconnected(probe, "/close")


async def test_a_connection_the_server_dropped_is_replaced(probe: dict) -> None:
    assert probe["stale_get"] == [200, '{"a": 1}', "NoneType"]
    assert probe["stale_post"] == [200, '{"k":"v"}', "NoneType"]
    # each of them reached the server once
    assert [m for m, path, _ in probe["peers"] if path == "/echo"] == ["POST", "POST"]


async def test_timeouts_fail_the_request_and_close_the_connection(probe: dict) -> None:
    assert probe["timeout"] == [0, "", "RequestTimeout"]
    assert probe["after_timeout"] == [200, '{"a": 1}', "NoneType"]
    assert probe["network_timeout"] == [0, "", "NetworkTimeout"]
    assert _next_request_reconnected(probe, "/slow")


async def test_broken_answers_are_failed_responses(probe: dict) -> None:
    assert probe["malformed"] == [0, "", "ProtocolError"]
    assert probe["bad_length"] == [0, "", "ProtocolError"]
    assert probe["truncated"] == [0, "", "ProtocolError"]
    assert probe["bad_chunk"] == [0, "", "ProtocolError"]
    assert probe["interim"] == [200, "ok", "NoneType"]
    assert probe["to_close"] == [200, "until close", "NoneType"]
    failed = {e["name"]: e["exception"] for e in probe["events"]}
    assert failed["/bad-status"] == "ProtocolError(\"malformed status line b'HTTP/1.1 2x0 OK'\")"


async def test_header_injection_is_refused(probe: dict) -> None:
    assert probe["refused"] == ["value", "header", "value", "request"]


async def test_the_client_runs_on_compiled_gevent(probe: dict) -> None:
    runtime = probe["runtime"]
    assert runtime["loop"] in ("gevent.libev.corecext.loop", "gevent.libuv.loop.loop")
    assert runtime["hub_primitives"].startswith("gevent._gevent_c")
    assert runtime["greenlet"].startswith("gevent._gevent_c")
    assert runtime["semaphore"].startswith("gevent._gevent_c")
    assert "orjson.orjson" in runtime["modules"] or "orjson" in runtime["modules"]
