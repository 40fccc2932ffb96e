"""A campaign across hosts of its own: network namespaces joined by a bridge on 198.18.0.0/15.

Five namespaces per module: a switch (a bridge, with one veth per host) and four hosts, each
with its own address, loopback and hostname (``unshare --uts``): the mock (198.18.0.1), the
master (198.18.0.2) and two workers (198.18.0.3, 198.18.0.4). Nothing leaves the machine.
The namespaces are removed at the end, whatever happened; every process started in them is
stopped first. They need root (CI has it): under ``CI=true`` these tests fail without it.

The first test runs the commands of ``docs/distributed.md`` ("N hosts by hand") as written.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.processes import MOCK_READY
from tests.distributed.conftest import (
    LIGHT,
    ROOT,
    Proc,
    Processes,
    copy_environment,
    copy_of_the_scenarios,
    mock_count,
    read_json,
    run_dir,
    wait_for,
    worker_from,
)

pytestmark = pytest.mark.slow

SUBNET = "198.18.0"  # the benchmarking range (RFC 2544): never routed, never anyone's
HOSTS = ("mock", "master", "w1", "w2")
DOC = ROOT / "docs" / "distributed.md"
MASTER_PORT = 5557  # inside a namespace of its own, no other process can hold it


@dataclass
class Network:
    prefix: str
    namespaces: dict[str, str]

    def address(self, host: str) -> str:
        return f"{SUBNET}.{HOSTS.index(host) + 1}"

    def hostname(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def argv(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run on ``host``: in its namespace, under its own hostname."""
        return ["ip", "netns", "exec", self.namespaces[host], "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.hostname(host), *argv]  # fmt: skip

    def fetch(self, host: str, url: str) -> str:
        """GET ``url`` from ``host`` (the test's own namespace has no route to the subnet)."""
        code = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"  # noqa: E501
        done = subprocess.run(
            ["ip", "netns", "exec", self.namespaces[host], sys.executable, "-c", code, url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _require_root() -> None:
    missing = [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = "network namespaces need root"
    elif missing:
        reason = f"missing {', '.join(missing)} (Debian's iproute2, util-linux)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    _require_root()
    prefix = f"pl{secrets.token_hex(3)}"
    switch = f"{prefix}-sw"
    net = Network(prefix, {host: f"{prefix}-{host}" for host in HOSTS})
    made: list[str] = []
    try:
        for name in (switch, *net.namespaces.values()):
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for i, host in enumerate(HOSTS):
            ns, port = net.namespaces[host], f"p{i}"
            _ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", switch, "link", "set", port, "master", "br0")
            _ip("-n", switch, "link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{net.address(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        yield net
    finally:
        for name in reversed(made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _start_mock(net: Network, processes: Processes) -> tuple[Proc, str]:
    argv = [sys.executable, "-m", "mock_portal", "--host", net.address("mock"), "--port", "0"]
    mock = processes.start(net.argv("mock", argv), cwd=ROOT, env=_environment())
    match = MOCK_READY.search(mock.wait_line("mock portal ready on", 60))
    assert match is not None
    return mock, match.group(1)


def _mock_requests(net: Network, url: str) -> float:
    return mock_count(net.fetch("mock", f"{url}/metrics"))


def _harness_run(net: Network, out: Path, url: str, *flags: str) -> list[str]:
    master = f"{net.address('master')}:{MASTER_PORT}"
    argv = [sys.executable, "-m", "harness.cli", "run", "--host", url, "--allow-remote",
            "--master-only", "--master-bind", master, "--out", str(out),
            *LIGHT, *flags]  # fmt: skip
    return net.argv("master", argv)


def _doc_block(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- distributed: {marker} -->\n```\w+\n(.*?)\n```", text, re.S)
    assert match, f"{DOC}: no block marked {marker!r}"
    return match.group(1)


def _doc_commands() -> dict[str, str]:
    commands = {}
    for line in _doc_block("commands").splitlines():
        role, _, command = line.partition("$")
        commands[role.strip()] = command.strip()
    assert set(commands) == {"target", "master", "worker-1", "worker-2"}, commands
    return commands


@pytest.mark.timeout(300)
def test_the_documented_commands_run_a_campaign_across_four_hosts(
    network: Network, processes: Processes, tmp_path: Path
) -> None:
    commands = _doc_commands()
    (tmp_path / "national-peak.toml").write_text(_doc_block("campaign"), encoding="utf-8")
    shell = {"TARGET": network.address("mock"), "MASTER": network.address("master"),
             "PROCESSES": "1"}  # fmt: skip
    # The documented campaign, made short and light: variables win over the file.
    short = {"PORTAL_LOAD_DURATION": "6s", "PORTAL_LOAD_USERS": "6",
             "PORTAL_LOAD_SPAWN_RATE": "6", "PORTAL_LOAD_THINK_SCALE": "0.05",
             "PORTAL_LOAD_REMOTE_WORKERS": "2"}  # fmt: skip
    hosts = {"target": "mock", "master": "master", "worker-1": "w1", "worker-2": "w2"}

    def start(role: str, **extra: str) -> Proc:
        argv = network.argv(hosts[role], ["sh", "-c", f"exec {commands[role]}"])
        return processes.start(argv, cwd=tmp_path, env=_environment(**shell, **extra))

    mock = start("target")
    url = MOCK_READY.search(mock.wait_line("mock portal ready on", 60)).group(1)  # type: ignore[union-attr]
    assert url == f"http://{network.address('mock')}:8080"
    run = start("master", **short)
    join = run.wait_line("on each worker host run:", 60)
    master = f"{network.address('master')}:5557"
    assert f"portal-load worker --master {master}" in join
    workers = [start("worker-1"), start("worker-2")]
    code, output = run.finish(180)
    assert code == 0, output
    for worker in workers:
        assert worker.finish(60)[0] == 0, worker.output

    folder = run_dir(tmp_path / "results")
    summary = read_json(folder / "summary.json")
    assert summary["status"] == "complete", summary.get("checks")
    per_worker = summary["workers"]["per_worker"]
    assert len(per_worker) == 2 and all(w["requests"] > 0 for w in per_worker), per_worker
    total = summary["total"]["count"]
    assert sum(w["requests"] for w in per_worker) == total  # merged exactly
    assert summary["total"]["failures"] == 0, summary["total"]["failures_by_reason"]
    # The mock's own count: requests in flight when the run stopped (at most one per user)
    # reached the mock but no report.
    assert 0 <= _mock_requests(network, url) - total <= 6
    facts = read_json(folder / "provenance.json")["workers"]
    assert sorted((w["host"], w["address"], w["local"]) for w in facts) == [
        (network.hostname("w1"), network.address("w1"), False),
        (network.hostname("w2"), network.address("w2"), False),
    ]


@pytest.mark.timeout(300)
def test_a_killed_worker_on_another_host_degrades_the_run_naming_the_host(
    network: Network, processes: Processes, tmp_path: Path
) -> None:
    mock, url = _start_mock(network, processes)
    out = tmp_path / "results"
    run = processes.start(
        _harness_run(network, out, url, "--remote-workers", "2", "--duration", "20s"),
        cwd=ROOT,
        env=_environment(),
    )
    master = f"{network.address('master')}:{MASTER_PORT}"
    run.wait_line("on each worker host run:", 60)
    worker = [sys.executable, "-m", "harness.cli", "worker", "--master", master]
    w1 = processes.start(network.argv("w1", worker), cwd=ROOT, env=_environment())
    w2 = processes.start(network.argv("w2", worker), cwd=ROOT, env=_environment())

    def both_reported() -> bool:
        summaries = list(out.glob("*/summary.json"))
        if not summaries:
            return False
        per_worker = read_json(summaries[0])["workers"]["per_worker"]
        return len([w for w in per_worker if w["requests"] > 0]) == 2

    wait_for(both_reported, 90, "both workers reporting requests")
    os.kill(w2.pid, 9)
    killed_s = time.time()
    code, output = run.finish(120)
    assert code == 4, output
    summary = read_json(run_dir(out) / "summary.json")
    assert summary["status"] == "degraded"
    (event,) = summary["degraded"]
    where = f"{network.hostname('w2')} ({network.address('w2')})"
    assert event["host"] == where
    assert event["at_unix_s"] - killed_s <= 5.0
    assert f"on {where} lost" in output
    assert w1.finish(60)[0] == 0
    del mock


@pytest.mark.timeout(240)
def test_a_worker_of_another_version_is_refused(
    network: Network, processes: Processes, tmp_path: Path
) -> None:
    mock, url = _start_mock(network, processes)
    copy = copy_of_the_scenarios(tmp_path, version="9.9.9")
    out = tmp_path / "results"
    run = processes.start(
        _harness_run(network, out, url, "--remote-workers", "1", "--join-timeout", "8s"),
        cwd=ROOT,
        env=_environment(),
    )
    master = f"{network.address('master')}:{MASTER_PORT}"
    run.wait_line("on each worker host run:", 60)
    worker = processes.start(
        network.argv("w1", worker_from(copy, master)), cwd=copy, env=copy_environment(copy)
    )
    code, worker_output = worker.finish(90)
    assert code == 2, worker_output
    assert "refused this worker: it runs version 9.9.9, the master's" in worker_output
    code, output = run.finish(90)
    assert code == 2, output
    where = f"{network.hostname('w1')} ({network.address('w1')})"
    assert f"refused: {where}: it runs version 9.9.9" in output
    assert _mock_requests(network, url) == 0
    del mock


@pytest.mark.timeout(240)
def test_a_worker_refuses_a_target_the_master_does_not_allow(
    network: Network, processes: Processes
) -> None:
    mock, url = _start_mock(network, processes)
    # A plain Locust master of this project's locustfile, aimed at another host without the
    # campaign's permission: the harness would refuse this itself, Locust does not.
    locustfile = str(ROOT / "scenarios" / "locustfile.py")  # the one portal-load worker loads
    master_argv = [sys.executable, "-m", "locust", "-f", locustfile, "--master",
                   "--headless", "--master-bind-host", network.address("master"),
                   "--master-bind-port", str(MASTER_PORT), "--expect-workers", "1", "--host",
                   url, "-u", "2", "-r", "2", "-t", "20s", "--loglevel", "WARNING"]  # fmt: skip
    master = processes.start(network.argv("master", master_argv), cwd=ROOT, env=_environment())
    join = f"{network.address('master')}:{MASTER_PORT}"
    worker_argv = [sys.executable, "-m", "harness.cli", "worker", "--master", join]
    worker = processes.start(network.argv("w1", worker_argv), cwd=ROOT, env=_environment())
    code, output = worker.finish(90)
    assert code == 2, output
    refusals = [line for line in output.splitlines() if "refusing to send load" in line]
    assert len(refusals) == 1, output
    assert (
        f"the target {url} is not on loopback and the master's campaign does not allow"
        in (refusals[0])
    )
    code, master_output = master.finish(90)
    assert code == 2, master_output
    assert "refused to run: the target" in master_output
    assert _mock_requests(network, url) == 0
    del mock
