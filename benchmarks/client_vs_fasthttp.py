"""Side-by-side load benchmark: our ``PortalSession`` against Locust's stock ``FastHttpUser``.

Both runs execute the same journeys (signed-in citizen visits: login, catalog, status,
applications, payments, refresh, logout) with think times off, against one mock portal pinned
to one core, each in one Locust process pinned to the other core, one after the other. The
figure is HTTP requests per second (journey and funnel events left out), read from Locust's
own ``--csv`` statistics; the ratio is what matters, since timings on a shared machine are
noisy::

    .venv/bin/python -m benchmarks.client_vs_fasthttp --users 50 --seconds 20 --rounds 2

The module is also the locustfile of both runs: ``OursCitizen`` and ``StockCitizen`` differ
only in the HTTP client. ``StockSession`` is a thin adapter in front of an unmodified
``FastHttpSession`` that speaks the journeys' small client interface (bearer token, form
bodies, ``report``), so the stock client does all the HTTP work. Both sides run the product's
telemetry (every event in the run's HDR histograms); a stock user records a funnel step the one
way Locust offers, a request event, while ``PortalSession`` counts it in the results only.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
HTTP_TYPES = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE"))
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")
_SERVED = re.compile(
    r'^portal_http_requests_total\{.*route="/(?:api|oauth2)[^"]*".*\} (\S+)$', re.MULTILINE
)
STEADY_SKIP_S = 3.0  # after the first request: every user started and signed in once
STEADY_TAIL_S = 1.5  # before the run time ends: Locust's stop and its final statistics
CLK_TCK = os.sysconf("SC_CLK_TCK")
MOCK_CONFIG = """\
review_after_s = 0.2
decide_after_s = 0.5
payment_settle_s = 0.2
"""

if os.environ.get("PORTAL_BENCH_LOCUSTFILE") == "1":
    # Imported by locust: define the two user classes.
    import time as _time

    from locust import FastHttpUser
    from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager

    from scenarios import journeys
    from scenarios.client import PortalUser
    from scenarios.journeys.context import JourneyContext
    from scenarios.runtime import runtime_for
    from scenarios.telemetry import plugin

    # Both sides record every event in the run's HDR histograms, as `portal-load run` does
    # (a stock FastHttpUser file runs beside the same telemetry there: --locustfile).
    plugin.install()

    def _header(self: Any, name: str, default: str | None = None) -> str | None:
        value = self.headers.get(name) if self.headers else None
        if value is None:
            return default
        return value if isinstance(value, str) else value[0]

    # The journeys read one header by name; FastHttp's response has no such helper.
    ResponseContextManager.header = _header

    class StockSession(FastHttpSession):
        """The journeys' client interface on top of an unmodified ``FastHttpSession``."""

        start_lag_ms = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._auth: dict[str, str] = {}

        @property
        def bearer_token(self) -> str | None:
            return self._auth.get("Authorization")

        @bearer_token.setter
        def bearer_token(self, token: str | None) -> None:
            self._auth = {"Authorization": f"Bearer {token}"} if token else {}

        def request(  # type: ignore[override]
            self,
            method: str,
            url: str,
            *,
            params: dict[str, Any] | None = None,
            data: Any = None,
            headers: dict[str, str] | None = None,
            **kwargs: Any,
        ) -> Any:
            sent = {**self._auth, **(headers or {})}
            if isinstance(data, dict):
                data = urlencode(data)
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            if params:
                url = f"{url}?{urlencode(params)}"
            kwargs.setdefault("allow_redirects", False)
            # FastHttpSession has only session-wide timeouts; the mock answers in time here
            kwargs.pop("timeout", None)
            return super().request(method, url, data=data, headers=sent, **kwargs)

        def report(
            self,
            request_type: str,
            name: str,
            response_time_ms: float,
            *,
            exception: BaseException | None = None,
            start_time: float | None = None,
            response_length: int = 0,
            corrected: bool = True,
            locust_stats: bool = True,
        ) -> None:
            # A stock user has one way to record a timing: Locust's request event (so every
            # funnel step also lands in Locust's statistics).
            self.request_event.fire(
                request_type=request_type,
                name=name,
                response_time=response_time_ms,
                response_length=response_length,
                response=None,
                context={},
                exception=exception,
                start_time=_time.time() if start_time is None else start_time,
                url=None,
            )

    def _start(user: Any) -> None:
        runtime = runtime_for(user.environment)
        citizen = runtime.lease()
        rng = runtime.rng("bench", runtime.next_number("bench"))
        user.ctx = JourneyContext(
            user.client, citizen=citizen, pacing=runtime.settings.pacing, rng=rng
        )

    def _visit(user: Any) -> None:
        journeys.citizen_visit(user.ctx)

    def _browse(user: Any) -> None:
        journeys.anonymous_visit(user.ctx)

    class OursCitizen(PortalUser):
        tasks = [_visit]

        def on_start(self) -> None:
            _start(self)

    class OursVisitor(OursCitizen):
        tasks = [_browse]

    class StockCitizen(FastHttpUser):
        tasks = [_visit]

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            self.client = StockSession(
                base_url=self.host,
                request_event=environment.events.request,
                user=self,
                network_timeout=self.network_timeout,
                connection_timeout=self.connection_timeout,
                concurrency=self.concurrency,
            )

        def on_start(self) -> None:
            _start(self)

    class StockVisitor(StockCitizen):
        tasks = [_browse]


def _start_mock(workdir: Path, core: int) -> tuple[subprocess.Popen[str], str]:
    config = workdir / "mock.toml"
    config.write_text(MOCK_CONFIG)
    log = open(workdir / "mock.log", "w+")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        ["taskset", "-c", str(core), sys.executable, "-m", "mock_portal", "--port", "0",
         "--config", str(config), "--data-dir", str(workdir / "data")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log.seek(0)
        match = READY.search(log.read())
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"mock did not start: {(workdir / 'mock.log').read_text()[-2000:]}")


def _run_locust(user_class: str, host: str, args: argparse.Namespace, workdir: Path) -> dict:
    prefix = workdir / f"{user_class}-{args.citizen_offset}"
    env = {**os.environ, "PORTAL_BENCH_LOCUSTFILE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        "taskset", "-c", str(args.locust_core), sys.executable, "-m", "locust",
        "-f", str(Path(__file__).resolve()), user_class,
        "--host", host, "--headless", "--only-summary", "--loglevel", "WARNING",
        "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
        "--think-scale", "0", "--poll-interval", "0.1",
        "--citizen-offset", str(args.citizen_offset),
        "--csv", str(prefix),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    served_before = _served(host)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    steady = _steady_window(proc.pid, host, served_before, args.seconds)
    _out, err = proc.communicate(timeout=args.seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"locust exited with {proc.returncode}: {err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = _http_stats(Path(f"{prefix}_stats.csv"))
    # CPU of the Locust process alone (the mock is not a finished child yet): requests per
    # CPU-second is the client's efficiency even when the mock, not Locust, is the bottleneck.
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats["cpu_s"] = cpu_s
    stats["per_cpu_s"] = stats["requests"] / cpu_s if cpu_s > 0 else 0.0
    stats.update(steady)
    return stats


def _steady_window(pid: int, host: str, served_before: float, seconds: int) -> dict:
    """Requests per CPU-second of the Locust process between :data:`STEADY_SKIP_S` after its
    first request reached the mock and :data:`STEADY_TAIL_S` before its run time ends: the
    per-request cost without the interpreter's start-up and shutdown (about a CPU-second
    each side), which a longer run would spread thinner. Requests are counted by the mock
    (HTTP requests only, whatever each client records in its own statistics)."""
    deadline = time.monotonic() + 30
    while _served(host) <= served_before:
        if time.monotonic() > deadline:
            return {"steady_per_cpu_s": 0.0}
        time.sleep(0.05)
    first = time.monotonic()
    time.sleep(STEADY_SKIP_S)
    cpu0, served0 = _cpu_s(pid), _served(host)
    time.sleep(max(1.0, seconds - STEADY_SKIP_S - STEADY_TAIL_S))
    cpu1, served1 = _cpu_s(pid), _served(host)
    window = time.monotonic() - first - STEADY_SKIP_S
    cpu = cpu1 - cpu0
    return {
        "steady_s": window,
        "steady_requests": served1 - served0,
        "steady_cpu_s": cpu,
        "steady_per_cpu_s": (served1 - served0) / cpu if cpu > 0 else 0.0,
    }


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _served(host: str) -> float:
    """Portal requests (API and single sign-on) the benchmark's mock has answered so far."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{host}/metrics", timeout=5) as resp:  # the benchmark's loopback mock
        return sum(float(v) for v in _SERVED.findall(resp.read().decode()))


def _http_stats(path: Path) -> dict:
    requests = failures = 0
    rps = 0.0
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["Type"] in HTTP_TYPES:
                requests += int(row["Request Count"])
                failures += int(row["Failure Count"])
                rps += float(row["Requests/s"])
    return {"requests": requests, "failures": failures, "rps": rps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each client")
    parser.add_argument(
        "--journeys",
        choices=("citizen", "browse"),
        default="citizen",
        help="signed-in citizen visits (every journey) or anonymous catalog browsing",
    )
    parser.add_argument("--locust-core", type=int, default=0)
    parser.add_argument("--mock-core", type=int, default=1)
    args = parser.parse_args(argv)
    if shutil.which("taskset") is None:
        parser.error("taskset (util-linux) is required to pin the processes")
    suffix = "Citizen" if args.journeys == "citizen" else "Visitor"
    stock, ours = f"Stock{suffix}", f"Ours{suffix}"
    results: dict[str, list[dict]] = {stock: [], ours: []}
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        workdir = Path(tmp)
        mock, host = _start_mock(workdir, args.mock_core)
        try:
            run = 0
            for round_no in range(args.rounds):
                for user_class in results:
                    # Fresh citizens for every run (charges paid in one run stay paid): the
                    # offset shifts the allocator's stripe by one citizen per run.
                    args.citizen_offset = run
                    run += 1
                    stats = _run_locust(user_class, host, args, workdir)
                    results[user_class].append(stats)
                    print(
                        f"round {round_no + 1} {user_class:<13} {stats['rps']:8.0f} req/s "
                        f"{stats['per_cpu_s']:8.0f} req/CPU-s, steady "
                        f"{stats['steady_per_cpu_s']:8.0f} req/CPU-s "
                        f"({stats['requests']} requests, {stats['failures']} failures)",
                        flush=True,
                    )
        finally:
            mock.terminate()
            mock.wait(timeout=30)
    rps = {k: max(r["rps"] for r in v) for k, v in results.items()}
    eff = {k: max(r["per_cpu_s"] for r in v) for k, v in results.items()}
    print(f"journeys: {args.journeys}, {args.users} users, {args.seconds} s, best of {args.rounds}")
    print(f"FastHttpUser (stock):  {rps[stock]:8.0f} req/s  {eff[stock]:8.0f} req/CPU-s")
    print(f"PortalUser (ours):     {rps[ours]:8.0f} req/s  {eff[ours]:8.0f} req/CPU-s")
    print(
        f"ratio ours/stock:      {rps[ours] / rps[stock]:8.2f}x req/s "
        f"{eff[ours] / eff[stock]:6.2f}x req/CPU-s"
    )
    # Each round's runs are back to back, so a round's ratio shares its machine conditions.
    per_round = [
        (o["rps"] / s["rps"], o["per_cpu_s"] / s["per_cpu_s"])
        for s, o in zip(results[stock], results[ours], strict=True)
    ]
    print(
        f"median of rounds:      {statistics.median(r for r, _ in per_round):8.2f}x req/s "
        f"{statistics.median(e for _, e in per_round):6.2f}x req/CPU-s"
    )
    steady = [
        o["steady_per_cpu_s"] / s["steady_per_cpu_s"]
        for s, o in zip(results[stock], results[ours], strict=True)
        if s["steady_per_cpu_s"] > 0
    ]
    if steady:
        us = {
            k: statistics.median(1e6 / r["steady_per_cpu_s"] for r in v if r["steady_per_cpu_s"])
            for k, v in results.items()
        }
        print(
            f"steady window:         {us[stock]:8.1f} vs {us[ours]:.1f} us CPU per request "
            f"(stock vs ours); median of rounds {statistics.median(steady):.2f}x req/CPU-s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
