"""Malformed and abusive requests get a clear 4xx, never a 5xx, and the server keeps serving."""

from __future__ import annotations

import asyncio

from .conftest import Portal, bearer, login


async def _raw(portal: Portal, payload: bytes) -> bytes:
    """Send raw bytes on a fresh connection; return what the server answers before closing."""
    server = portal.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout=10)
    finally:
        writer.close()


async def _still_serves(portal: Portal) -> None:
    r = await portal.client.get("/healthz")
    assert r.status == 200


async def test_oversized_body_is_413_problem(portal: Portal) -> None:
    auth = bearer(await login(portal.client, 1))
    r = await portal.client.post(
        "/api/v1/applications",
        data=b'{"service_code": "' + b"x" * 300_000 + b'"}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status == 413
    assert r.content_type == "application/problem+json"
    assert (await r.json())["status"] == 413
    await _still_serves(portal)


async def test_over_long_request_line_is_400(portal: Portal) -> None:
    answer = await _raw(portal, b"GET /api/v1/services?q=" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n")
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400"))
    await _still_serves(portal)


async def test_too_many_headers_is_400(portal: Portal) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(300))
    answer = await _raw(portal, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400"))
    await _still_serves(portal)


async def test_over_long_header_is_400(portal: Portal) -> None:
    answer = await _raw(portal, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n")
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400"))
    await _still_serves(portal)


async def test_garbage_request_is_4xx(portal: Portal) -> None:
    answer = await _raw(portal, b"\x00\x01\x02 nonsense\r\n\r\n")
    assert answer[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4")
    await _still_serves(portal)


async def test_malformed_bodies_are_4xx_problems(portal: Portal) -> None:
    auth = bearer(await login(portal.client, 2))
    cases = [
        ("/api/v1/applications", b"{not json", "application/json", 400),
        ("/api/v1/applications", b"[1, 2]", "application/json", 400),
        ("/api/v1/applications", b"", "application/json", 400),
        ("/api/v1/applications", b"service_code=1", "application/x-www-form-urlencoded", 415),
        ("/api/v1/applications", b'{"service_code": 5}', "application/json", 422),
        (
            "/api/v1/applications",
            b'{"service_code": "10001", "fields": []}',
            "application/json",
            422,
        ),
        ("/api/v1/applications", b"\xff\xfe", "application/json", 400),
        ("/oauth2/token", b"grant_type=password", "application/x-www-form-urlencoded", 401),
        ("/oauth2/token", b"\xff=\xfe", "application/x-www-form-urlencoded", 400),
        ("/oauth2/token", b'{"grant_type": "x"}', "application/json", 415),
        ("/oauth2/login", b'{"login": 1}', "application/json", 400),
    ]
    for path, body, ctype, status in cases:
        r = await portal.client.post(path, data=body, headers={**auth, "Content-Type": ctype})
        assert r.status == status, (path, body, await r.text())
        assert r.content_type == "application/problem+json"
        assert (await r.json())["status"] == status


async def test_bad_query_parameters_are_400(portal: Portal) -> None:
    auth = bearer(await login(portal.client, 3))
    for path in (
        "/api/v1/services?page=0",
        "/api/v1/services?per_page=1000",
        "/api/v1/services?page=abc",
        "/api/v1/services?category=nope",
        "/api/v1/applications?status=lost",
        "/api/v1/applications?page=-1",
    ):
        r = await portal.client.get(path, headers=auth)
        assert r.status == 400, path
        assert (await r.json())["errors"]


async def test_unknown_route_and_method_are_problems(portal: Portal) -> None:
    r = await portal.client.get("/api/v2/everything")
    assert r.status == 404
    assert r.content_type == "application/problem+json"
    r = await portal.client.delete("/api/v1/services")
    assert r.status == 405
    assert "GET" in r.headers["Allow"]
    assert (await r.json())["status"] == 405


async def test_catalog_search_and_pagination(portal: Portal) -> None:
    everything = await (await portal.client.get("/api/v1/services?per_page=100")).json()
    assert everything["total"] >= 500
    assert everything["pages"] == -(-everything["total"] // 100)
    page2 = await (await portal.client.get("/api/v1/services?per_page=100&page=2")).json()
    assert {s["code"] for s in page2["items"]}.isdisjoint(s["code"] for s in everything["items"])
    found = await (await portal.client.get("/api/v1/services?q=PASSPORT")).json()
    assert found["total"] > 0
    assert all("passport" in s["title"].lower() or s["category"] == "passports"
               for s in found["items"])  # fmt: skip
    vehicles = await (await portal.client.get("/api/v1/services?category=vehicles")).json()
    assert {s["category"] for s in vehicles["items"]} == {"vehicles"}
    assert (await portal.client.get("/api/v1/services/99999")).status == 404
