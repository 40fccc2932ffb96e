"""Schema-driven fuzzing of a real mock server, and property tests of the mock's validators.

Schemathesis reads ``/openapi.json`` from a mock served on an ephemeral loopback port (an
``AppRunner`` on its own event loop in a background thread; schemathesis' ASGI loader does not
apply to aiohttp) and sends generated requests to every operation, with a real citizen's access
token. Every response must be a documented status with a conforming body and headers, never a
5xx, and every error must be problem details whose ``status`` is the HTTP status.

Runs are bounded and deterministic: a fixed number of examples per operation, derandomized.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mock_portal import create_app, load_config
from mock_portal.config import MAX_SERVERS, ConfigError, Faults
from mock_portal.faults import FaultEngine
from mock_portal.metrics import PortalMetrics
from mock_portal.openapi import build_document
from mock_portal.protocol import PortalRunner
from mock_portal.services.catalog import FIELD_TYPES, build_catalog

from .conftest import ADMIN_TOKEN, REDIRECT_URI, pkce_pair

EXAMPLES_PER_OPERATION = 25
START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 10.0
CITIZEN = 7
# PUT /admin/faults is left out: its purpose is to make the server under test fail on demand
# (errors, resets, latency), which would fail every later case. test_openapi covers it.
NOT_FUZZED = {("PUT", "/admin/faults")}
PROBLEM = "application/problem+json"


@dataclass
class LiveServer:
    url: str
    loop: asyncio.AbstractEventLoop
    runner: web.AppRunner


def _serve_in_thread(app: web.Application) -> tuple[LiveServer, threading.Thread]:
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def start() -> None:
        runner = PortalRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        started["server"] = LiveServer(f"http://127.0.0.1:{port}", loop, runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # reported to the test thread below
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="mock-portal", daemon=True)
    thread.start()
    assert ready.wait(START_TIMEOUT_S), "the mock did not start"
    if "error" in started:
        raise started["error"]
    return started["server"], thread


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = load_config(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        admin_token=ADMIN_TOKEN,
        citizens=10_000,
    )
    live, thread = _serve_in_thread(create_app(config, registry=CollectorRegistry()))
    try:
        yield live
    finally:
        stop = asyncio.run_coroutine_threadsafe(live.runner.cleanup(), live.loop)
        stop.result(START_TIMEOUT_S)
        live.loop.call_soon_threadsafe(live.loop.stop)
        thread.join(START_TIMEOUT_S)


def _login(session: requests.Session, base: str, n: int) -> str:
    """The real single sign-on flow of a citizen without a second factor: an access token."""
    verifier, challenge = pkce_pair()
    r = session.get(
        f"{base}/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": "portal-web",
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "fuzz",
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    r.raise_for_status()
    credentials = {"login": f"citizen-{n}", "password": f"Passw0rd-{n}"}
    r = session.post(
        f"{base}/oauth2/login",
        json={"login_challenge": r.json()["login_challenge"], **credentials},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT_S,
    )
    assert r.status_code == 302, r.text
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    r = session.post(
        f"{base}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "portal-web",
            "code_verifier": verifier,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def citizen_token(server: LiveServer) -> str:
    with requests.Session() as session:
        return _login(session, server.url, CITIZEN)


@pytest.fixture(scope="module")
def schema(server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def problem_details(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every error is problem details whose ``status`` is the HTTP status (docs/api.md)."""
    if response.status_code < 400:
        return
    if case.path == "/readyz" and response.status_code == 503:
        return  # a readiness probe answers {"status": "starting"|"draining"} (documented)
    media = response.headers.get("content-type", [""])[0].split(";")[0]
    assert media == PROBLEM, f"an error of media type {media!r}"
    body = response.json()
    assert body["status"] == response.status_code, body


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_details,
]

OPERATIONS = sorted(
    (method.upper(), template)
    for template, item in build_document()["paths"].items()
    for method in item
    if (method.upper(), template) not in NOT_FUZZED
)


@pytest.mark.parametrize(
    ("method", "template"), OPERATIONS, ids=[" ".join(op) for op in OPERATIONS]
)
def test_fuzz_operation(
    server: LiveServer, citizen_token: str, schema: Any, method: str, template: str
) -> None:
    operation = schema[template][method]
    token = ADMIN_TOKEN if template.startswith("/admin/") else citizen_token
    auth = {"Authorization": f"Bearer {token}"}
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        with requests.Session() as session:
            response = case.call_and_validate(
                base_url=server.url,
                session=session,
                headers=auth,
                checks=CHECKS,
                timeout=REQUEST_TIMEOUT_S,
            )
        statuses[response.status_code] += 1

    fuzz()
    # A run where the token never reached the server would pass every check above with 401s.
    if template.startswith(("/api/v1/", "/admin/")):
        assert set(statuses) - {401}, f"{method} {template}: every case refused: {statuses}"


def test_the_fuzzed_server_still_serves_the_citizen(server: LiveServer, citizen_token: str) -> None:
    """Guards against a fuzz run that passes because everything was refused."""
    r = requests.get(
        f"{server.url}/api/v1/me",
        headers={"Authorization": f"Bearer {citizen_token}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert r.status_code == 200 and r.json()["sub"] == f"citizen-{CITIZEN}"


# -- properties of the mock's own validators ------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=100, derandomize=True, database=None, deadline=None)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _services_by_field_type() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for service in build_catalog():
        for field in service.fields:
            out.setdefault(field.type, field)
    return out


PATTERNED = sorted(name for name, (_, regex, _) in FIELD_TYPES.items() if regex is not None)


@pytest.mark.parametrize("field_type", PATTERNED)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_field_accepts_exactly_what_its_published_pattern_matches(
    field_type: str, data: st.DataObject
) -> None:
    """The pattern a form field publishes (JSON Schema: the whole value) is the rule it checks."""
    field = _services_by_field_type()[field_type]
    pattern = FIELD_TYPES[field_type][1]
    assert pattern is not None
    matching = st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True)
    value = data.draw(
        st.tuples(matching, st.sampled_from(["", "\n", " ", "x"])).map("".join) | st.text()
    )
    accepted = field.check(value) is None
    within_limits = value.strip() != "" and len(value) <= field.rules.get("max_length", 300)
    assert accepted == (within_limits and re.fullmatch(pattern, value, re.ASCII) is not None)


def test_every_form_example_passes_its_own_rules() -> None:
    for service in build_catalog():
        example = {f["name"]: f["example"] for f in service.detail()["fields"]}
        assert service.validate(example) == [], service.code


@PROPERTY_SETTINGS
@given(fields=JSON_VALUES)
def test_form_validation_answers_field_errors_for_any_json(fields: Any) -> None:
    service = build_catalog()[0]
    errors = service.validate(fields)
    for error in errors:
        assert set(error) == {"field", "message"}
        assert error["field"] == "fields" or error["field"].startswith("fields.")
        assert len(error["field"]) <= len("fields.") + 64


@PROPERTY_SETTINGS
@given(raw=JSON_VALUES)
def test_fault_parsing_refuses_with_config_error_only(raw: Any) -> None:
    """Any JSON is either a fault document that round-trips, or a ConfigError saying where."""
    try:
        faults = Faults.parse(raw)
    except ConfigError as exc:
        assert str(exc).startswith("faults"), exc
    else:
        assert Faults.parse(faults.to_json()).to_json() == faults.to_json()


LATENCIES = st.one_of(
    st.builds(lambda ms: {"kind": "fixed", "ms": ms}, st.integers(0, 10_000)),
    st.builds(lambda ms: {"kind": "exponential", "ms": ms}, st.integers(1, 10_000)),
    st.builds(
        lambda lo, extra: {"kind": "uniform", "min_ms": lo, "max_ms": lo + extra},
        st.integers(0, 1000),
        st.integers(0, 1000),
    ),
    st.builds(
        lambda median, extra: {"kind": "lognormal", "median_ms": median, "p99_ms": median + extra},
        st.integers(1, 1000),
        st.integers(1, 1000),
    ),
)
FAULT_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "routes": st.dictionaries(
            st.sampled_from(["*", "/healthz", "/api/v1/services"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "latency": LATENCIES,
                    "error": st.fixed_dictionaries(
                        {"rate": st.floats(0, 1)}, optional={"status": st.integers(400, 599)}
                    ),
                    "reset_rate": st.floats(0, 1),
                    "slow_body_ms": st.integers(0, 1000),
                },
            ),
            max_size=2,
        ),
        "capacity": st.dictionaries(
            st.sampled_from(["auth", "catalog", "applications", "payments"]),
            st.fixed_dictionaries(
                {
                    "servers": st.integers(1, 2**63 - 1),
                    "service_time": LATENCIES.filter(lambda lat: lat.get("ms", 1) > 0),
                }
            ),
            max_size=2,
        ),
        "shed_in_flight": st.integers(0, 10_000),
        "seed": st.none() | st.integers(0, 2**32),
    },
)


@PROPERTY_SETTINGS
@given(raw=FAULT_DOCUMENTS)
def test_an_accepted_fault_document_applies_and_round_trips(raw: dict[str, Any]) -> None:
    """What PUT /admin/faults accepts can be applied (a bounded pool) and read back."""
    try:
        faults = Faults.parse(raw)
    except ConfigError as exc:
        assert str(exc).startswith("faults.capacity."), exc  # servers or mean service time
        return
    assert all(c.servers <= MAX_SERVERS for c in faults.capacity.values())
    FaultEngine(faults, PortalMetrics(CollectorRegistry()))
    shown = faults.to_json()
    assert Faults.parse(shown).to_json() == shown


def test_authorize_refuses_a_challenge_with_a_trailing_newline(server: LiveServer) -> None:
    """The PKCE rules are checked on the whole value (``$`` alone lets a final newline in)."""
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "portal-web",
        "redirect_uri": REDIRECT_URI,
        "code_challenge_method": "S256",
    }
    url = f"{server.url}/oauth2/authorize"
    ok = requests.get(url, params={**params, "code_challenge": challenge}, timeout=10)
    assert ok.status_code == 200
    bad = requests.get(url, params={**params, "code_challenge": challenge + "\n"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_non_ascii_tokens_are_refused_not_crashed(server: LiveServer) -> None:
    """Found by fuzzing: a non-ASCII token made the constant-time compare raise (500)."""
    forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InBvcnRhbC0xIn0.e30.\u00e9"
    base = server.url
    me = requests.get(
        f"{base}/api/v1/me", headers={"Authorization": f"Bearer {forged}"}, timeout=10
    )
    assert me.status_code == 401
    client = {"client_id": "portal-web"}
    refresh = {**client, "grant_type": "refresh_token", "refresh_token": "a.\u00e9"}
    assert requests.post(f"{base}/oauth2/token", data=refresh, timeout=10).status_code == 400
    revoke = {**client, "token": "a.\u00e9"}
    assert requests.post(f"{base}/oauth2/revoke", data=revoke, timeout=10).status_code == 200
    login = {"login_challenge": "a.\u00e9", "login": "citizen-1", "password": "x"}
    assert requests.post(f"{base}/oauth2/login", json=login, timeout=10).status_code == 400


def test_a_capacity_pool_too_large_to_build_is_refused(server: LiveServer) -> None:
    """Found by property testing: servers = 2**40 was accepted, then failed with MemoryError."""
    pool = {"servers": 2**40, "service_time": {"kind": "fixed", "ms": 1}}
    r = requests.put(
        f"{server.url}/admin/faults",
        json={"capacity": {"auth": pool}},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 422 and "servers" in r.json()["detail"]


MALFORMED_HTTP = {
    "not HTTP": b"GARBAGE\r\n\r\n",
    "header without a colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    "header line too long": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: %s\r\n\r\n" % (b"a" * 9000),
    "NUL in a header": b"GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
    "unknown HTTP version": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    "bad chunk size": (
        b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\nZZ\r\n\r\n"
    ),
    "Content-Length with chunked (smuggling)": (
        b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("raw", MALFORMED_HTTP.values(), ids=MALFORMED_HTTP.keys())
def test_malformed_http_gets_a_problem_and_a_closed_connection(
    server: LiveServer, raw: bytes
) -> None:
    """Requests that aiohttp refuses before the app sees them are problem details too."""
    port = urlsplit(server.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after answering
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    assert status_line.split(" ", 2)[1] == "400", answer[:300]
    headers = {k.lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}
    assert headers["content-type"] == PROBLEM
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"].endswith("/malformed-request")
    assert problem["detail"].startswith("the request is not valid HTTP/1.1: ")
    assert "\n" not in problem["detail"]
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
