"""The mock's connections under abuse, on a real process: clients that disconnect mid-body,
bodies declared over the limit (with and without ``Expect: 100-continue``)."""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ._process import counter, fresh_session, mock_process, sso_login, wait_until

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


DESCRIPTORS = 150  # the mock's descriptor limit in the slowloris test: fewer than the attack
SLOWLORIS = 200  # connections the attacker keeps open, sending a header line every 0.5 s
ATTACK_S = 6.0


def _config(tmp_path: Path, *, header_timeout_s: float, keepalive_timeout_s: float) -> Path:
    path = tmp_path / f"portal-{header_timeout_s}-{keepalive_timeout_s}.toml"
    path.write_text(
        f"header_timeout_s = {header_timeout_s}\nkeepalive_timeout_s = {keepalive_timeout_s}\n"
    )
    return path


def _descriptor_limit() -> None:  # in the mock's process, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


async def _slowloris(host: str, port: int, stop: asyncio.Event, closed: list[int]) -> None:
    """Hold a connection that never finishes its headers; reopen it whenever it is closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: portal\r\n")
            while not stop.is_set():
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(65536), 0.5) == b"":
                        break  # the mock closed it
                except TimeoutError:
                    writer.write(b"X-Trickle: 1\r\n")
            closed.append(1)
        except OSError:
            closed.append(1)
        finally:
            writer.close()
        await asyncio.sleep(0.2)


async def _attack_while_a_client_works(base: str) -> tuple[list[int], int]:
    host, port = _address(base)
    stop = asyncio.Event()
    closed: list[int] = []
    attackers = [
        asyncio.create_task(_slowloris(host, port, stop, closed)) for _ in range(SLOWLORIS)
    ]
    await asyncio.sleep(1.0)  # the attack is in place
    statuses = []
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with fresh_session() as session:
            deadline = time.monotonic() + ATTACK_S - 1.0
            n = 1
            while time.monotonic() < deadline:
                r = await session.get(f"{base}/api/v1/services/10001", timeout=timeout)
                await r.read()
                statuses.append(r.status)
                n += 1 if n % 5 != 4 else 2
                await sso_login(session, base, n)  # a login writes to the store
                statuses.append(200)
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*attackers, return_exceptions=True)
    return statuses, len(closed)


def test_a_slowloris_attack_leaves_room_for_a_working_client(tmp_path: Path) -> None:
    config = _config(tmp_path, header_timeout_s=2, keepalive_timeout_s=75)
    with mock_process("--config", str(config), data_dir=tmp_path / "data",
                      preexec_fn=_descriptor_limit) as mock:  # fmt: skip
        statuses, closed = asyncio.run(_attack_while_a_client_works(mock.base))
        assert statuses and set(statuses) == {200}, statuses
        assert closed > 0, "the mock closed slowloris connections"
        text = asyncio.run(_metrics_text(mock.base))
        reasons = _by_label(text, "portal_connections_closed_total", "reason")
        assert reasons.get("header_timeout", 0) + reasons.get("evicted", 0) > 0
        assert "unable to open database file" not in mock.output()


async def _metrics_text(base: str) -> str:
    async with fresh_session() as session:
        return await (await session.get(f"{base}/metrics")).text()


def _by_label(text: str, name: str, label: str) -> dict[str, float]:
    return {
        s.labels[label]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def _closed_within(base: str, first: bytes, then: bytes, within_s: float) -> bool:
    """Send ``first``, then ``then`` every 0.3 s: does the mock close within ``within_s``?"""
    with socket.create_connection(_address(base), timeout=within_s) as sock:
        sock.sendall(first)
        sock.settimeout(0.3)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if then:
                    sock.sendall(then)
                continue
            except ConnectionError:
                return True
            if data == b"":
                return True
    return False


def test_trickled_headers_and_silent_connections_are_closed(tmp_path: Path) -> None:
    # The keep-alive timer (30 s) is far off: what closes them is the header timeout (2 s).
    config = _config(tmp_path, header_timeout_s=2, keepalive_timeout_s=30)
    with mock_process("--config", str(config), data_dir=tmp_path / "data") as mock:
        assert _closed_within(mock.base, b"GET /healthz HTTP/1.1\r\n", b"X-A: b\r\n", 8)
        assert _closed_within(mock.base, b"", b"", 8)
        # A request answered, then idle: the header timeout does not apply to waiting.
        request = b"GET /healthz HTTP/1.1\r\nHost: portal\r\n\r\n"
        assert not _closed_within(mock.base, request, b"", 4)


def test_an_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    config = _config(tmp_path, header_timeout_s=30, keepalive_timeout_s=1)
    with mock_process("--config", str(config), data_dir=tmp_path / "data") as mock:
        request = b"GET /healthz HTTP/1.1\r\nHost: portal\r\n\r\n"
        assert _closed_within(mock.base, request, b"", 8)
