"""Run a real Prometheus server for a campaign and query it over its HTTP API.

The harness process is plain CPython (docs/architecture.md): this module uses only the standard
library (``subprocess`` and ``urllib``), no asyncio and no gevent.

The server runs Debian's ``prometheus`` binary with the configuration committed in
``dashboards/prometheus/`` (package data: :func:`harness.package.prometheus_config_dir`)
rendered into a work directory:

- ``prometheus.yml`` is copied with its ``global`` intervals set for this run;
- ``rules/`` is copied, so a run keeps the rules it was evaluated with;
- ``targets/<job>.json`` are written as ``file_sd_configs`` files with concrete loopback
  targets (and can be rewritten while the server runs, see :meth:`PrometheusServer.set_targets`).

Example::

    config = PrometheusConfig(targets={"mock_portal": ["127.0.0.1:8123"]}, scrape_interval_s=1.0)
    with PrometheusServer(config) as prom:
        prom.wait_for_targets_up(timeout_s=10.0)
        samples = prom.query("sum(rate(portal_http_requests_total[1m]))")

A server started with ``detach=True`` (and a ``work_dir``) runs in its own session and outlives
this process once :meth:`PrometheusServer.detach` hands over its pid; ``portal-load stack``
records it and stops it later with :func:`stop_process`. :class:`PrometheusClient` queries a
server this process did not start, by URL.

Exceptions::

    PrometheusError                 base class: catch this one
     +-- PrometheusStartError       binary missing, exited early, or not ready in time
     +-- PrometheusQueryError       the HTTP API answered an error or something unreadable
     +-- PrometheusTimeoutError     a wait_for_* condition did not hold in time
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from harness import package
from harness.errors import (
    PrometheusError,
    PrometheusQueryError,
    PrometheusStartError,
    PrometheusTimeoutError,
)
from harness.results.folder import atomic_write
from harness.system import die_with_parent, free_port, process_exited, stop_process
from harness.units import format_duration, parse_duration_s

__all__ = [
    "CAPACITY_JOB",
    "DEFAULT_CONFIG_DIR",
    "LOADGEN_JOB",
    "MOCK_JOB",
    "PrometheusClient",
    "PrometheusConfig",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusServer",
    "PrometheusStartError",
    "PrometheusTimeoutError",
    "RuleState",
    "Sample",
    "TargetState",
    "render_config",
    "write_targets",
]

#: The committed configuration (prometheus.yml, rules/), shipped as package data.
DEFAULT_CONFIG_DIR = package.prometheus_config_dir()

#: Scrape jobs of dashboards/prometheus/prometheus.yml: the mock, the load generator, and
#: the capacity exporter (portal-load capacity-exporter).
MOCK_JOB = "mock_portal"
LOADGEN_JOB = "loadgen"
CAPACITY_JOB = "loadgen_capacity"

#: Seconds to wait for ``/-/ready``: a fresh TSDB on a slow CI disk opens in well under this.
STARTUP_TIMEOUT_S = 30.0
#: Seconds between two readiness or condition polls; short, since runs in tests last seconds.
POLL_INTERVAL_S = 0.1
#: Seconds one HTTP API call may take before it counts as a failure.
HTTP_TIMEOUT_S = 10.0
#: Seconds Prometheus gets to flush and exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0
#: Attempts to bind a free port; another process can take the port between probe and bind.
PORT_ATTEMPTS = 3
#: Characters of the server log quoted in a start error.
LOG_TAIL_CHARS = 2000

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_GLOBAL_KEYS = ("scrape_interval", "scrape_timeout", "evaluation_interval")
_JOB_NAME = re.compile(r"^\s*-\s*job_name:\s*['\"]?([A-Za-z0-9_:-]+)['\"]?\s*$", re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class PrometheusConfig:
    """What to run: targets per scrape job, intervals, and where things live.

    ``targets`` maps a job name of the committed ``prometheus.yml`` (``mock_portal``,
    ``loadgen``) to ``host:port`` strings; jobs left out get an empty target list.
    ``data_dir`` and ``work_dir`` (rendered configuration, rules, targets, log) are kept
    after :meth:`PrometheusServer.stop` when given; otherwise temporary directories are used
    and removed. ``port`` 0 picks a free loopback port. ``detach`` starts the server in its
    own session, so that it can outlive this process (see :meth:`PrometheusServer.detach`).
    """

    targets: Mapping[str, Sequence[str]]
    scrape_interval_s: float = 2.0
    evaluation_interval_s: float | None = None
    config_dir: Path = DEFAULT_CONFIG_DIR
    data_dir: Path | None = None
    work_dir: Path | None = None
    port: int = 0
    detach: bool = False
    binary: str = "prometheus"
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    extra_args: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.scrape_interval_s > 0:
            raise ValueError("scrape_interval_s must be positive, e.g. 2.0 for a load test")
        if self.evaluation_interval_s is not None and not self.evaluation_interval_s > 0:
            raise ValueError("evaluation_interval_s must be positive or None (= scrape interval)")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0 (any free port) or a TCP port number")
        if self.detach and self.work_dir is None:
            raise ValueError("a detached server needs a work_dir that outlives this process")
        for job, job_targets in self.targets.items():
            if isinstance(job_targets, str):
                raise TypeError(f"targets[{job!r}] must be a list of 'host:port', not a string")


@dataclass(frozen=True)
class Sample:
    """One element of an instant-query result: labels, value, evaluation time (Unix s)."""

    labels: Mapping[str, str]
    value: float
    timestamp_s: float


@dataclass(frozen=True)
class TargetState:
    """An active scrape target as ``/api/v1/targets`` reports it."""

    job: str
    scrape_url: str
    health: str
    last_error: str


@dataclass(frozen=True)
class RuleState:
    """A recording or alerting rule as ``/api/v1/rules`` reports it."""

    group: str
    name: str
    kind: str
    query: str
    health: str
    last_error: str
    state: str


def render_config(
    template: str, *, scrape_interval_s: float, evaluation_interval_s: float | None = None
) -> str:
    """Return ``template`` (a prometheus.yml) with its ``global`` intervals replaced.

    The template must set ``scrape_interval``, ``scrape_timeout`` and ``evaluation_interval``
    once each, indented by two spaces under ``global:``; the scrape timeout becomes the
    smaller of the template's and the new scrape interval.
    """
    evaluation_s = scrape_interval_s if evaluation_interval_s is None else evaluation_interval_s
    values = {
        "scrape_interval": format_duration(scrape_interval_s),
        "evaluation_interval": format_duration(evaluation_s),
    }
    rendered = template
    for key in _GLOBAL_KEYS:
        pattern = re.compile(rf"^  {key}:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
        matches = pattern.findall(rendered)
        if len(matches) != 1:
            raise ValueError(
                f"prometheus.yml must set global {key!r} exactly once, indented by two spaces; "
                f"found {len(matches)}"
            )
        if key == "scrape_timeout":
            value = format_duration(
                min(parse_duration_s(matches[0], f"prometheus.yml: {key}"), scrape_interval_s)
            )
        else:
            value = values[key]
        rendered = pattern.sub(f"  {key}: {value}", rendered)
    return rendered


def write_targets(work_dir: Path, job: str, targets: Sequence[str]) -> None:
    """Write ``work_dir/targets/<job>.json``; a running server rereads it within seconds."""
    groups = [{"targets": list(targets), "labels": {}}] if targets else []
    atomic_write(work_dir / "targets" / f"{job}.json", json.dumps(groups, indent=2))


class PrometheusClient:
    """Queries a running Prometheus over its HTTP API.

    >>> PrometheusClient("http://127.0.0.1:9090").url
    'http://127.0.0.1:9090'
    """

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        # Loopback only: ignore any proxy settings of the developer's environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return self._url

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200 now."""
        try:
            with self._opener.open(f"{self.url}/-/ready", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api_get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``/api/v1/<path>`` and return the ``data`` member of a successful answer."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        try:
            with self._opener.open(url, timeout=HTTP_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            if not body:
                raise PrometheusQueryError(f"GET {url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusQueryError(f"GET {url}: {exc}") from exc
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise PrometheusQueryError(f"GET {url}: answer is not JSON: {body[:200]!r}") from exc
        if not isinstance(payload, dict) or payload.get("status") != "success":
            error = payload.get("error") if isinstance(payload, dict) else payload
            raise PrometheusQueryError(f"GET {url}: {error}")
        return payload.get("data")

    def query(self, expr: str, *, at_s: float | None = None) -> list[Sample]:
        """Evaluate an instant query; scalars come back as one sample without labels."""
        params = {"query": expr}
        if at_s is not None:
            params["time"] = f"{at_s:.3f}"
        data = self.api_get("query", params)
        result_type = data.get("resultType")
        result = data.get("result")
        if result_type == "vector":
            return [
                Sample(dict(item["metric"]), float(item["value"][1]), float(item["value"][0]))
                for item in result
            ]
        if result_type == "scalar":
            return [Sample({}, float(result[1]), float(result[0]))]
        raise PrometheusQueryError(
            f"query {expr!r} returned a {result_type}; only instant vectors and scalars are "
            "supported (use a range query for range vectors)"
        )

    def targets(self) -> list[TargetState]:
        data = self.api_get("targets", {"state": "active"})
        return [
            TargetState(
                job=str(item["labels"].get("job", "")),
                scrape_url=str(item.get("scrapeUrl", "")),
                health=str(item.get("health", "")),
                last_error=str(item.get("lastError", "")),
            )
            for item in data.get("activeTargets", [])
        ]

    def rules(self) -> list[RuleState]:
        data = self.api_get("rules")
        return [
            RuleState(
                group=str(group["name"]),
                name=str(rule["name"]),
                kind=str(rule["type"]),
                query=str(rule["query"]),
                health=str(rule.get("health", "")),
                last_error=str(rule.get("lastError", "")),
                state=str(rule.get("state", "")),
            )
            for group in data.get("groups", [])
            for rule in group.get("rules", [])
        ]

    # -- waiting -----------------------------------------------------------------------------

    def wait_until(
        self, condition: Callable[[], bool], *, timeout_s: float, what: str = "condition"
    ) -> None:
        """Poll ``condition`` until it is true; raise :class:`PrometheusTimeoutError`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() >= deadline:
                raise PrometheusTimeoutError(f"{what} did not hold within {timeout_s} s")
            time.sleep(POLL_INTERVAL_S)

    def wait_for_targets_up(self, *, timeout_s: float, jobs: Sequence[str]) -> None:
        """Wait until every active target of ``jobs`` was scraped successfully."""
        wanted = set(jobs)

        def all_up() -> bool:
            states = [t for t in self.targets() if t.job in wanted]
            return {t.job for t in states} >= wanted and all(t.health == "up" for t in states)

        try:
            self.wait_until(all_up, timeout_s=timeout_s, what=f"targets of {sorted(wanted)} up")
        except PrometheusTimeoutError as exc:
            detail = "; ".join(
                f"{t.job} {t.scrape_url}: {t.health} {t.last_error}".strip() for t in self.targets()
            )
            raise PrometheusTimeoutError(f"{exc}: {detail or 'no active targets'}") from None

    def wait_for_data(self, expr: str, *, timeout_s: float) -> list[Sample]:
        """Wait until ``expr`` returns at least one sample whose value is a number."""
        found: list[Sample] = []

        def has_data() -> bool:
            found[:] = self.query(expr)
            return any(not math.isnan(s.value) for s in found)

        self.wait_until(has_data, timeout_s=timeout_s, what=f"data for {expr!r}")
        return found


class PrometheusServer(PrometheusClient):
    """A Prometheus child process on a loopback port, with the query client.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, config: PrometheusConfig) -> None:
        super().__init__("")
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None  # a detached server (posix_spawn'ed, own session)
        self._log: IO[bytes] | None = None
        self._work_dir: Path | None = None
        self._data_dir: Path | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise PrometheusError("Prometheus is not running: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is not None:
            return self._process.pid
        if self._pid is None:
            raise PrometheusError("Prometheus is not running: call start() first")
        return self._pid

    @property
    def work_dir(self) -> Path:
        """Directory holding the rendered prometheus.yml, rules/, targets/ and the log."""
        if self._work_dir is None:
            raise PrometheusError("Prometheus is not running: call start() first")
        return self._work_dir

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise PrometheusError("Prometheus is not running: call start() first")
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self.work_dir / "prometheus.log"

    def start(self) -> Self:
        """Render the configuration, start the binary and wait until ``/-/ready`` answers."""
        if self._process is not None or self._pid is not None:
            raise PrometheusError("Prometheus is already running")
        binary = shutil.which(self.config.binary)
        if binary is None:
            raise PrometheusStartError(
                f"{self.config.binary!r} not found on PATH; install Debian's 'prometheus' package"
            )
        if self.config.work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="portal-prometheus-"))
        else:
            self._work_dir = self.config.work_dir
            self._work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._render()
            if self.config.data_dir is None:
                self._data_dir = self._work_dir / "data"
            else:
                self._data_dir = self.config.data_dir
            self._data_dir.mkdir(parents=True, exist_ok=True)
            last_error: PrometheusStartError | None = None
            attempts = 1 if self.config.port else PORT_ATTEMPTS
            for _ in range(attempts):
                try:
                    self._spawn(binary, self.config.port or free_port())
                    self._wait_ready()
                    return self
                except PrometheusStartError as exc:
                    last_error = exc
                    in_use = "address already in use" in self._log_tail().lower()
                    self._terminate()
                    if not in_use:
                        break
            assert last_error is not None
            raise last_error
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove temporary directories."""
        self._terminate()
        if self._work_dir is not None and self.config.work_dir is None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._work_dir = None
        self._data_dir = None

    def detach(self) -> int:
        """Leave a ``detach=True`` server running after this object and this process; its pid.

        The server keeps its port, work and data directories; stop it with
        :func:`stop_process`.
        """
        if self._pid is None:
            raise PrometheusError("only a running server started with detach=True can detach")
        pid, self._pid = self._pid, None
        self._port = None
        self._work_dir = None
        self._data_dir = None
        return pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _render(self) -> None:
        work = self.work_dir
        source = self.config.config_dir
        template_path = source / "prometheus.yml"
        try:
            template = template_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PrometheusStartError(f"cannot read {template_path}: {exc}") from exc
        jobs = _JOB_NAME.findall(template)
        unknown = sorted(set(self.config.targets) - set(jobs))
        if unknown:
            raise ValueError(f"unknown scrape jobs {unknown}; {template_path} defines {jobs}")
        rendered = render_config(
            template,
            scrape_interval_s=self.config.scrape_interval_s,
            evaluation_interval_s=self.config.evaluation_interval_s,
        )
        (work / "prometheus.yml").write_text(rendered, encoding="utf-8")
        if (source / "rules").is_dir():
            shutil.rmtree(work / "rules", ignore_errors=True)
            shutil.copytree(source / "rules", work / "rules")
        (work / "targets").mkdir(exist_ok=True)
        for job in jobs:
            self._write_targets(job, self.config.targets.get(job, ()))

    def _write_targets(self, job: str, targets: Sequence[str]) -> None:
        write_targets(self.work_dir, job, targets)

    def _spawn(self, binary: str, port: int) -> None:
        work = self.work_dir
        assert self._data_dir is not None
        args = [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={self._data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            *self.config.extra_args,
        ]
        self._port = port
        if self.config.detach:
            # posix_spawn, not Popen: no Popen object is left to warn that its child outlives
            # it, and the server's own session keeps it out of this terminal's signals.
            self._pid = os.posix_spawn(
                binary,
                args,
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, str(self.log_path), _LOG_FLAGS, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                setsid=True,
            )
            return
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=work,
            preexec_fn=die_with_parent(),  # a server of one run ends with the process that ran it
        )

    def _exit_status(self) -> str | None:
        """None while the server runs, else how it ended."""
        if self._process is not None:
            code = self._process.poll()
            return None if code is None else f"status {code}"
        if self._pid is not None and process_exited(self._pid):
            return "an error"
        return None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        while True:
            ended = self._exit_status()
            if ended is not None:
                raise PrometheusStartError(f"prometheus exited with {ended}:\n{self._log_tail()}")
            if self.ready():
                return
            if time.monotonic() >= deadline:
                raise PrometheusStartError(
                    f"prometheus not ready after {self.config.startup_timeout_s} s:\n"
                    f"{self._log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        pid, self._pid = self._pid, None
        if pid is not None:
            stop_process(pid, timeout_s=STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._port = None

    def _log_tail(self) -> str:
        if self._work_dir is None:
            return ""
        try:
            text = (self._work_dir / "prometheus.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[-LOG_TAIL_CHARS:]

    # -- targets -----------------------------------------------------------------------------

    def set_targets(self, job: str, targets: Sequence[str]) -> None:
        """Replace the targets of ``job`` while the server runs (file-based discovery)."""
        if not (self.work_dir / "targets" / f"{job}.json").exists():
            raise ValueError(f"unknown scrape job {job!r}")
        self._write_targets(job, targets)

    def wait_for_targets_up(self, *, timeout_s: float, jobs: Sequence[str] | None = None) -> None:
        """Wait until every active target (of ``jobs``, default: the configured ones) is up."""
        super().wait_for_targets_up(
            timeout_s=timeout_s, jobs=list(self.config.targets) if jobs is None else jobs
        )
