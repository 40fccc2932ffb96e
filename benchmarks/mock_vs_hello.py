"""Side by side on one core: the mock portal under a mixed portal workload, and a bare
aiohttp + uvloop + orjson hello-world, in the same run.

Both servers are pinned to one core (``taskset -c 1``), ``wrk`` to another (``taskset -c 0``).
The mock runs as it is shipped: one worker, every metric on, tokens signed and checked,
payments and applications written to SQLite. It gets the mix of ``wrk/portal_mix.lua`` (real
logins included); the hello-world gets plain ``GET /``. Unless ``--no-readonly``, each round
also runs the read-only mix on the mock (the reads of the same mix: catalog pages, service
cards, ``/me``, charges, an application's and a payment's status, following the applications
and payments the setup phase made). Rounds alternate mock, mock read-only and hello (A B C A B
C ...) after a warm-up of each, so drift of the machine hits all. A soak phase then keeps the
mix on the mock and samples its resident memory::

    python -m benchmarks.mock_vs_hello                        # 2 rounds of 15 s, 30 s soak
    python -m benchmarks.mock_vs_hello --soak-seconds 300     # the figures of RESULTS.md
    python -m benchmarks.mock_vs_hello --duration 2 --rounds 1 --warmup 0 --soak-seconds 0

Before the load, a setup phase logs in ``--citizens`` test citizens over the real single
sign-on flow and hands their tokens to the Lua script, with PKCE pairs and the service codes.
Every request goes to 127.0.0.1 and every phase is bounded in time. Exit status: 0 when both
servers answered and the mock's error share stayed under ``--max-error-share``, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MIX_SCRIPT = HERE / "wrk" / "portal_mix.lua"

SERVER_CORE = "1"
WRK_CORE = "0"
READY_TIMEOUT_S = 60.0  # the mock builds its catalog and database before it says ready
STOP_TIMEOUT_S = 15.0
WRK_GRACE_S = 30.0  # beyond -d, for wrk's start, its 2 s request timeout and its report
RSS_SAMPLE_AT_S = 30.0  # the "RSS after 30 s" figure of the soak
# Targets of server CPU per request, hello's over the mock's: the mixed portal traffic at most
# twice the hello-world's, the read-only mix at most 1/0.75 of it.
TARGET_CPU_RATIO = {"portal": 0.5, "readonly": 0.75}
SEED_CITIZEN = 1  # citizens SEED_CITIZEN.. are logged in by the setup phase
FIRST_MIX_CITIZEN = 10_000  # citizens logged in by the mix (and whose charges it pays)
PKCE_PAIRS = 256
REDIRECT_URI = "http://localhost/callback"
ADDRESS_FIELDS = {"applicant_snils", "contact_phone", "address", "move_in_date", "residents"}
SETUP_FOLLOWED = 32  # citizens of the setup phase who submit an application and pay a charge


class BenchError(Exception):
    """The benchmark could not run: a tool is missing, a server did not start, wrk failed."""


# -- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def server(name: str, argv: Sequence[str], ready: re.Pattern[str]) -> Iterator[Server]:
    """A child process pinned to SERVER_CORE, until the block ends (SIGTERM, then SIGKILL)."""
    cmd = ["taskset", "-c", SERVER_CORE, *argv]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = _wait_ready(proc, ready, name)
        threading.Thread(target=_drain, args=(proc, name), daemon=True).start()
        yield Server(name, proc, url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[str], ready: re.Pattern[str], name: str) -> str:
    assert proc.stdout is not None
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            m = ready.search(line)
            if m:
                found.append(m.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT_S)
    if not found:
        raise BenchError(f"{name} did not start within {READY_TIMEOUT_S:.0f} s: {''.join(seen)}")
    return found[0]


def _drain(proc: subprocess.Popen[str], name: str) -> None:
    """Keep reading the server's output; errors it logs are printed, not lost."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Error" in line or "Traceback" in line or line.startswith(("  ", "ERROR")):
            print(f"[{name}] {line.rstrip()}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB (VmRSS of /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


# -- setup: real logins, service codes, PKCE pairs -------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def login(session: aiohttp.ClientSession, base: str, n: int) -> str:
    """The access token of citizen ``n`` after the whole single sign-on flow."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "portal-web",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile applications payments",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with session.get(f"{base}/oauth2/authorize", params=params) as r:
        r.raise_for_status()
        login_challenge = (await r.json())["login_challenge"]
    body = {
        "login_challenge": login_challenge,
        "login": f"citizen-{n}",
        "password": f"Passw0rd-{n}",
    }
    async with session.post(f"{base}/oauth2/login", json=body, allow_redirects=False) as r:
        if r.status == 200:
            mfa_token = (await r.json())["mfa_token"]
            otp = {"mfa_token": mfa_token, "code": "000000"}
            async with session.post(f"{base}/oauth2/otp", json=otp, allow_redirects=False) as r2:
                location = r2.headers.get("Location", "")
        else:
            location = r.headers.get("Location", "")
    code = parse_qs(urlsplit(location).query).get("code")
    if not code:
        raise BenchError(f"login of citizen-{n} gave no authorization code")
    form = {
        "grant_type": "authorization_code",
        "code": code[0],
        "redirect_uri": REDIRECT_URI,
        "client_id": "portal-web",
        "code_verifier": verifier,
    }
    async with session.post(f"{base}/oauth2/token", data=form) as r:
        r.raise_for_status()
        return str((await r.json())["access_token"])


async def prepare(base: str, citizens: int) -> dict[str, Any]:
    """Tokens of ``citizens`` citizens, every service code, the address-change services."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sem = asyncio.Semaphore(16)

        async def bounded(coro: Any) -> Any:
            async with sem:
                return await coro

        ns = range(SEED_CITIZEN, SEED_CITIZEN + citizens)
        tokens = await asyncio.gather(*(bounded(login(session, base, n)) for n in ns))
        codes: list[str] = []
        page, pages = 1, 1
        while page <= pages:
            url = f"{base}/api/v1/services?per_page=100&page={page}"
            async with session.get(url) as r:
                listing = await r.json()
            codes += [s["code"] for s in listing["items"]]
            pages, page = listing["pages"], page + 1

        async def fields_of(code: str) -> set[str]:
            async with session.get(f"{base}/api/v1/services/{code}") as r:
                return {f["name"] for f in (await r.json())["fields"] if f["required"]}

        required = await asyncio.gather(*(bounded(fields_of(c)) for c in codes))
        address = [c for c, req in zip(codes, required, strict=True) if req == ADDRESS_FIELDS]
        if not address:
            raise BenchError("the catalog has no address-change service for the application step")
        followed = list(zip(ns, tokens, strict=True))[:SETUP_FOLLOWED]
        apps = await asyncio.gather(
            *(bounded(submit(session, base, t, address[0], n)) for n, t in followed)
        )
        pays = await asyncio.gather(*(bounded(pay_all(session, base, t, n)) for n, t in followed))
    return {
        "tokens": [{"n": n, "tok": t} for n, t in zip(ns, tokens, strict=True)],
        "services": codes,
        "address_services": address,
        "apps": [{"id": a, "tok": t} for a, (_, t) in zip(apps, followed, strict=True)],
        "pays": [
            {"id": p, "tok": t} for ps, (_, t) in zip(pays, followed, strict=True) for p in ps
        ],
        "verifiers": [dict(zip(("v", "c"), pkce_pair(), strict=True)) for _ in range(PKCE_PAIRS)],
    }


async def submit(session: aiohttp.ClientSession, base: str, tok: str, code: str, n: int) -> str:
    """The id of an address-change application of citizen ``n``."""
    body = {
        "service_code": code,
        "fields": {
            "applicant_snils": "112-233-445 95",
            "contact_phone": "+79161234567",
            "address": f"Lenina street 1, apt {n}",
            "move_in_date": "2026-05-17",
            "residents": n % 4 + 1,
        },
    }
    auth = {"Authorization": f"Bearer {tok}"}
    async with session.post(f"{base}/api/v1/applications", json=body, headers=auth) as r:
        if r.status != 201:
            raise BenchError(f"setup application of citizen-{n}: {r.status} {await r.text()}")
        return str((await r.json())["id"])


async def pay_all(session: aiohttp.ClientSession, base: str, tok: str, n: int) -> list[str]:
    """The ids of payments of every outstanding charge of citizen ``n``."""
    auth = {"Authorization": f"Bearer {tok}"}
    async with session.get(f"{base}/api/v1/payments/charges", headers=auth) as r:
        charges = [c["id"] for c in (await r.json())["items"]]
    ids = []
    for charge in charges:
        headers = {**auth, "Idempotency-Key": f"setup-{charge}"}
        body = {"charge_id": charge, "method": "card"}
        async with session.post(f"{base}/api/v1/payments", json=body, headers=headers) as r:
            if r.status != 201:
                raise BenchError(f"setup payment of {charge}: {r.status} {await r.text()}")
            ids.append(str((await r.json())["id"]))
    return ids


def lua_literal(value: Any) -> str:
    """A Lua literal of JSON-like data (strings here are tokens and codes: no escaping needed)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {lua_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ",\n".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, str):
        if not re.fullmatch(r"[\w.\-~ ]*", value):
            raise BenchError(f"unexpected characters in {value[:40]!r}")
        return f'"{value}"'
    return repr(value)


# -- wrk -------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    label: str
    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors_4xx5xx: int  # wrk's "Non-2xx or 3xx responses": statuses >= 400
    socket_errors: int
    sent: dict[str, int] = field(default_factory=dict)  # by the Lua mix
    classes: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    last_citizen: int = 0
    server_cpu_s: float = 0.0  # user + system CPU the server spent during the run

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.server_cpu_s / self.requests if self.requests else 0.0

    @property
    def non_2xx(self) -> int:
        """Answers that were not 2xx, except the 302 that ends a login step by design."""
        if not self.classes:
            return self.errors_4xx5xx
        return sum(v for k, v in self.classes.items() if k not in ("2xx", "3xx"))


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if m is None:
        raise BenchError(f"unexpected wrk time {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(label: str, out: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+),", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and total and p50 and p99):
        raise BenchError(f"cannot read wrk's report:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result = WrkResult(
        label=label,
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1000,
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        errors_4xx5xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )
    for what, key, count in re.findall(r"^portal_mix (\w+) (\S+) (\d+)$", out, re.M):
        if what == "sent":
            result.sent[key] = int(count)
        elif what == "status":
            result.classes[key] = int(count)
        elif what == "problem":
            result.problems[key.replace("_", " ", 1)] = int(count)
        elif what == "citizens":
            result.last_citizen = int(count)
    return result


def run_wrk(
    label: str,
    url: str,
    duration_s: int,
    connections: int,
    script: Path | None = None,
    env: dict[str, str] | None = None,
) -> WrkResult:
    cmd = ["taskset", "-c", WRK_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s"]
    cmd += ["--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=duration_s + WRK_GRACE_S,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk ({label}) ran past {duration_s + WRK_GRACE_S:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(f"wrk ({label}) failed ({done.returncode}): {done.stderr}{done.stdout}")
    return parse_wrk(label, done.stdout)


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    data_file: Path
    next_citizen: int = FIRST_MIX_CITIZEN

    def mix(self, mock: Server, duration_s: int, label: str, kind: str = "portal") -> WrkResult:
        env = {
            "PORTAL_MIX_DATA": str(self.data_file),
            "PORTAL_MIX_THREADS": "1",
            "PORTAL_MIX_KIND": kind,
        }
        data = self.data_file.read_text()
        self.data_file.write_text(
            re.sub(r"first_citizen = \d+", f"first_citizen = {self.next_citizen}", data)
        )
        cpu0 = cpu_seconds(mock.pid)
        result = run_wrk(label, mock.url, duration_s, self.args.connections, MIX_SCRIPT, env)
        result.server_cpu_s = cpu_seconds(mock.pid) - cpu0
        self.next_citizen = max(self.next_citizen, result.last_citizen + 1)
        return result

    def hello(self, hello: Server, duration_s: int, label: str) -> WrkResult:
        cpu0 = cpu_seconds(hello.pid)
        result = run_wrk(label, hello.url + "/", duration_s, self.args.connections)
        result.server_cpu_s = cpu_seconds(hello.pid) - cpu0
        return result


def _line(r: WrkResult) -> str:
    share = r.non_2xx / r.requests if r.requests else 0.0
    return (
        f"  {r.label:<14} {r.rps:>9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
        f"{r.requests:>9,} requests  non-2xx {r.non_2xx} ({share:.3%})  "
        f"socket errors {r.socket_errors}  server CPU {r.cpu_us_per_request:.0f} us/request"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: apt-get install wrk util-linux)")
    python = sys.executable
    mock_argv = [python, "-m", "mock_portal", "--port", "0", "--workers", "1"]
    hello_argv = [python, "-m", "benchmarks.hello_server", "--port", "0"]
    ready_mock = re.compile(r"mock portal ready on (http://\S+)")
    ready_hello = re.compile(r"hello ready on (http://\S+)")
    report: dict[str, Any] = {"rounds": [], "command": " ".join(sys.argv)}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mock-")))
        mock = stack.enter_context(server("mock", mock_argv, ready_mock))
        hello = stack.enter_context(server("hello", hello_argv, ready_hello))
        t0 = time.monotonic()
        data = asyncio.run(prepare(mock.url, args.citizens))
        data["first_citizen"] = FIRST_MIX_CITIZEN
        data_file = tmp / "portal_mix_data.lua"
        data_file.write_text("return " + lua_literal(data) + "\n")
        print(
            f"setup: {args.citizens} citizens logged in, {len(data['services'])} services, "
            f"{len(data['address_services'])} address forms ({time.monotonic() - t0:.1f} s); "
            f"mock pid {mock.pid} RSS {rss_mib(mock.pid):.1f} MiB",
            flush=True,
        )
        bench = Bench(args, data_file)
        if args.warmup > 0:
            bench.mix(mock, args.warmup, "warm-up mock")
            if args.readonly:
                bench.mix(mock, args.warmup, "warm-up mock", "readonly")
            bench.hello(hello, args.warmup, "warm-up hello")
        mocks: list[WrkResult] = []
        reads: list[WrkResult] = []
        hellos: list[WrkResult] = []
        for i in range(1, args.rounds + 1):
            m = bench.mix(mock, args.duration, f"mock  round {i}")
            print(_line(m), flush=True)
            mocks.append(m)
            entry = {"mock": m.__dict__}
            if args.readonly:
                ro = bench.mix(mock, args.duration, f"mock-ro round {i}", "readonly")
                print(_line(ro), flush=True)
                reads.append(ro)
                entry["mock_readonly"] = ro.__dict__
            h = bench.hello(hello, args.duration, f"hello round {i}")
            print(_line(h), flush=True)
            hellos.append(h)
            entry["hello"] = h.__dict__
            report["rounds"].append(entry)
        report["rss_mib_after_rounds"] = rss_mib(mock.pid)
        if args.soak_seconds > 0:
            report["soak"] = soak(bench, mock, args.soak_seconds)
        report["rss_mib_final"] = rss_mib(mock.pid)
    mock_rps = sum(r.requests for r in mocks) / sum(r.seconds for r in mocks)
    hello_rps = sum(r.requests for r in hellos) / sum(r.seconds for r in hellos)
    requests = sum(r.requests for r in mocks)
    non_2xx = sum(r.non_2xx for r in mocks)
    sent: dict[str, int] = {}
    problems: dict[str, int] = {}
    for r in mocks:
        for k, v in r.sent.items():
            sent[k] = sent.get(k, 0) + v
        for k, v in r.problems.items():
            problems[k] = problems.get(k, 0) + v
    mock_cpu_us = _cpu_us(mocks)
    hello_cpu_us = _cpu_us(hellos)
    if reads:
        readonly_cpu_us = _cpu_us(reads)
        report.update(
            readonly_cpu_us_per_request=readonly_cpu_us,
            readonly_cpu_ratio=hello_cpu_us / readonly_cpu_us if readonly_cpu_us else 0.0,
            readonly_requests=sum(r.requests for r in reads),
            readonly_non_2xx=sum(r.non_2xx for r in reads),
        )
    report.update(
        mock_cpu_us_per_request=mock_cpu_us,
        hello_cpu_us_per_request=hello_cpu_us,
        cpu_ratio=hello_cpu_us / mock_cpu_us if mock_cpu_us else 0.0,
        mock_rps=mock_rps,
        hello_rps=hello_rps,
        ratio=mock_rps / hello_rps,
        mock_requests=requests,
        mock_non_2xx=non_2xx,
        mock_non_2xx_share=non_2xx / requests if requests else 0.0,
        hello_non_2xx=sum(r.non_2xx for r in hellos),
        mock_p50_ms=max(r.p50_ms for r in mocks),
        mock_p99_ms=max(r.p99_ms for r in mocks),
        hello_p50_ms=max(r.p50_ms for r in hellos),
        hello_p99_ms=max(r.p99_ms for r in hellos),
        sent=sent,
        problems=problems,
    )
    return report


def _cpu_us(results: list[WrkResult]) -> float:
    """Server CPU per request over runs, in microseconds."""
    return 1e6 * sum(r.server_cpu_s for r in results) / max(1, sum(r.requests for r in results))


def soak(bench: Bench, mock: Server, seconds: int) -> dict[str, Any]:
    """The mix on the mock for ``seconds``; RSS sampled at RSS_SAMPLE_AT_S and at the end."""
    samples: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        if not stop.wait(RSS_SAMPLE_AT_S):
            samples[f"{RSS_SAMPLE_AT_S:.0f}s"] = rss_mib(mock.pid)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = bench.mix(mock, seconds, f"mock soak {seconds}s")
    stop.set()
    sampler.join()
    samples[f"{seconds}s"] = rss_mib(mock.pid)
    print(_line(result), flush=True)
    return {"result": result.__dict__, "rss_mib": samples}


def print_summary(report: dict[str, Any], args: argparse.Namespace) -> None:
    total = sum(report["sent"].values()) or 1
    mix = ", ".join(f"{k} {v / total:.1%}" for k, v in sorted(report["sent"].items()))
    print()
    print(
        f"mock req/s: {report['mock_rps']:.0f} (mixed workload, {args.rounds} x {args.duration} s)"
    )
    print(f"hello req/s: {report['hello_rps']:.0f} (GET /, {args.rounds} x {args.duration} s)")
    # The req/s ratio moves with whatever else shares the machine; the targets are set on the
    # ratios of server CPU per request below.
    print(f"ratio mock/hello: {report['ratio']:.3f} (req/s, one after the other on one core)")
    print(
        f"server CPU per request: mock {report['mock_cpu_us_per_request']:.0f} us, hello "
        f"{report['hello_cpu_us_per_request']:.0f} us; ratio hello/mock "
        f"{report['cpu_ratio']:.3f} (what the req/s ratio is on a core of its own; "
        f"target >= {TARGET_CPU_RATIO['portal']}: {_met(report['cpu_ratio'], 'portal')})"
    )
    if "readonly_cpu_ratio" in report:
        print(
            "server CPU per request, read-only mix: mock "
            f"{report['readonly_cpu_us_per_request']:.0f} us, hello "
            f"{report['hello_cpu_us_per_request']:.0f} us; ratio hello/mock "
            f"{report['readonly_cpu_ratio']:.3f} (target >= {TARGET_CPU_RATIO['readonly']}: "
            f"{_met(report['readonly_cpu_ratio'], 'readonly')}); non-2xx "
            f"{report['readonly_non_2xx']} of {report['readonly_requests']}"
        )
    print(
        f"mock non-2xx: {report['mock_non_2xx']} of {report['mock_requests']} "
        f"({report['mock_non_2xx_share']:.3%}); hello non-2xx: {report['hello_non_2xx']}"
    )
    if report["problems"]:
        print("mock problems: " + ", ".join(f"{k}: {v}" for k, v in report["problems"].items()))
    print(
        f"latency mock p50 {report['mock_p50_ms']:.2f} ms p99 {report['mock_p99_ms']:.2f} ms; "
        f"hello p50 {report['hello_p50_ms']:.2f} ms p99 {report['hello_p99_ms']:.2f} ms "
        "(worst round)"
    )
    print(f"mix sent: {mix}")
    rss = f"mock RSS: {report['rss_mib_after_rounds']:.1f} MiB after the rounds"
    if "soak" in report:
        for at, mib in report["soak"]["rss_mib"].items():
            rss += f"; {mib:.1f} MiB after {at} of soak"
    print(rss)


def _met(ratio: float, kind: str) -> str:
    return "met" if ratio >= TARGET_CPU_RATIO[kind] else "NOT met"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mock_vs_hello",
        description="The mock portal (mixed workload) vs a bare aiohttp hello-world, one core.",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=2, help="mock/hello alternations")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up of each")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--soak-seconds", type=int, default=30, help="mix on the mock after the rounds, for RSS"
    )
    parser.add_argument("--citizens", type=int, default=64, help="citizens logged in by setup")
    parser.add_argument(
        "--readonly",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the read-only mix on the mock each round (default: yes)",
    )
    parser.add_argument(
        "--max-error-share",
        type=float,
        default=0.01,
        help="exit 1 when the mock's non-2xx share is above this",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0 or args.soak_seconds < 0:
        parser.error("--duration and --rounds must be >= 1; --warmup, --soak-seconds >= 0")
    if not 1 <= args.citizens <= 5000:
        parser.error("--citizens must be 1..5000")
    try:
        report = run(args)
    except BenchError as exc:
        print(f"BenchError: {exc}", file=sys.stderr)
        return 1
    print_summary(report, args)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    ok = report["mock_non_2xx_share"] <= args.max_error_share
    if "readonly_requests" in report:
        ok = ok and report["readonly_non_2xx"] <= args.max_error_share * report["readonly_requests"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
