"""The mock's connections under abuse, on a real process: clients that disconnect mid-body,
bodies declared over the limit (with and without ``Expect: 100-continue``)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ._process import counter, fresh_session, mock_process, wait_until

pytestmark = pytest.mark.slow

HUGE = 1_000_000_000_000  # a terabyte: nothing may wait for it


def _address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _metric(base: str, name: str) -> float:
    async def read() -> float:
        async with fresh_session() as session:
            return counter(await (await session.get(f"{base}/metrics")).text(), name)

    return asyncio.run(read())


def test_a_client_that_disconnects_mid_body_is_one_warning_line(tmp_path: Path) -> None:
    with mock_process(data_dir=tmp_path) as mock:
        for _ in range(15):
            with socket.create_connection(_address(mock.base), timeout=5) as sock:
                sock.sendall(
                    b"POST /oauth2/token HTTP/1.1\r\nHost: portal\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 1000\r\n\r\ngrant_type=refresh"
                )
                time.sleep(0.05)  # the handler is reading the body when the client leaves
        assert wait_until(lambda: _metric(mock.base, "portal_client_disconnects_total") == 15, 10)
        output = mock.output()
        assert "Traceback" not in output
        lines = [line for line in output.splitlines() if "disconnected before" in line]
        assert len(lines) == 10, "one line per disconnect, at most 10 per window"
        assert "POST /oauth2/token" in lines[0]


def _answer(base: str, request: bytes) -> tuple[bytes, float]:
    """Everything the mock sends until it closes, and how long that took."""
    started = time.monotonic()
    data = b""
    with socket.create_connection(_address(base), timeout=5) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return data, time.monotonic() - started


@pytest.mark.parametrize("expect", [True, False], ids=["expect-100-continue", "no-expect"])
def test_a_body_declared_over_the_limit_is_refused_at_once(tmp_path: Path, expect: bool) -> None:
    with mock_process(data_dir=tmp_path) as mock:
        request = (  # the token endpoint reads the body before anything else
            b"POST /oauth2/token HTTP/1.1\r\nHost: portal\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {HUGE}\r\n".encode()
            + (b"Expect: 100-continue\r\n" if expect else b"")
            + b"\r\n"
        )
        data, elapsed_s = _answer(mock.base, request)
        assert data.startswith(b"HTTP/1.1 413 "), data[:200]
        assert b"100 Continue" not in data
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Content-Type: application/problem+json" in head
        assert b'"status":413' in body
        if expect:  # no body will come: the connection is closed at once, not after 5 s
            assert elapsed_s < 5
        assert _refused(mock.base) == 1, "counted as the route's 413"


def _refused(base: str) -> float:
    async def read() -> float:
        async with fresh_session() as session:
            text = await (await session.get(f"{base}/metrics")).text()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "portal_http_requests_total"
            and s.labels == {"route": "/oauth2/token", "method": "POST", "status": "413"}
        )

    return asyncio.run(read())
