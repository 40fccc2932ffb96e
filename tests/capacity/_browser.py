"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client), and a
minimal PNG decoder: enough to open a report, collect console errors, find the charts and
take a screenshot, without a browser-automation dependency."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import find_tool

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*",
)  # fmt: skip
START_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0


def chromium_binary() -> str | None:
    return find_tool("chromium")


@dataclass
class Page:
    ws: aiohttp.ClientWebSocketResponse
    events: list[dict[str, Any]] = field(default_factory=list)
    _next: int = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            while True:
                msg = json.loads((await self.ws.receive()).data)
                if msg.get("id") == ident:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return dict(msg.get("result", {}))
                self.events.append(msg)

    async def wait_event(self, method: str) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            while True:
                msg = json.loads((await self.ws.receive()).data)
                self.events.append(msg)
                if msg.get("method") == method:
                    return msg

    def console_errors(self) -> list[str]:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails", {}))[:300])
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in (
                "error",
                "assert",
            ):
                out.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
                )
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(str(p["entry"].get("text")))
        return out


@contextlib.asynccontextmanager
async def chromium(binary: str) -> AsyncIterator[Page]:
    """A fresh headless Chromium (own profile, debugging on a port it picks) and one page."""
    profile = tempfile.mkdtemp(prefix="report-chromium-")
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        async with asyncio.timeout(START_TIMEOUT_S):
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None:
                    raise RuntimeError(f"chromium exited with {proc.returncode}")
                await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession(trust_env=False) as http:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                        pages = [t for t in await resp.json() if t.get("type") == "page"]
                    if pages:
                        break
                    await asyncio.sleep(0.1)
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                    await page.call(domain)
                yield page
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def open_and_capture(page: Page, url: str, width: int) -> tuple[list[dict[str, Any]], bytes]:
    """Load ``url``; returns the chart boxes (page coordinates) and a full-page PNG."""
    await page.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                    deviceScaleFactor=1, mobile=False)  # fmt: skip
    await page.call("Page.navigate", url=url)
    await page.wait_event("Page.loadEventFired")
    script = """JSON.stringify({
        height: document.documentElement.scrollHeight,
        charts: [...document.querySelectorAll('svg.chart')].map(e => {
            const r = e.getBoundingClientRect();
            return {name: e.dataset.chart, x: r.x + scrollX, y: r.y + scrollY,
                    w: r.width, h: r.height};
        })})"""
    res = await page.call("Runtime.evaluate", expression=script, returnByValue=True)
    layout = json.loads(res["result"]["value"])
    shot = await page.call(
        "Page.captureScreenshot", format="png", captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": layout["height"], "scale": 1},
    )  # fmt: skip
    return layout["charts"], base64.b64decode(shot["data"])


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def region(self, x: int, y: int, w: int, h: int) -> list[tuple[int, ...]]:
        c = self.channels
        out = []
        for row in self.rows[max(0, y) : min(self.height, y + h)]:
            for px in range(max(0, x), min(self.width, x + w)):
                out.append(tuple(row[px * c : px * c + 3]))
        return out


def decode_png(data: bytes) -> Image:
    """8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) to rows of bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6) and body[12] == 0, "unsupported PNG"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return Image(width, height, channels, rows)


def ink(pixels: list[tuple[int, ...]]) -> tuple[float, float]:
    """Shares of pixels that are dark (text, axes) and saturated (data: series, markers)."""
    if not pixels:
        return 0.0, 0.0
    dark = sum(1 for p in pixels if min(p) < 200)
    coloured = sum(1 for p in pixels if max(p) - min(p) > 60)
    return dark / len(pixels), coloured / len(pixels)
