"""The workers' keys of a campaign: remote workers, a master-only host, the master's bind."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.campaign import load_campaign
from harness.campaign.workers import MasterBind, parse_master_bind
from harness.errors import UsageError
from scenarios.hosts import identity, is_loopback_url

REMOTE = {"host": "http://198.18.0.1:8080", "allow_remote": True}


def test_remote_workers_add_to_the_local_ones() -> None:
    c = load_campaign(None, workers=2, remote_workers=3)
    assert (c.local_worker_count(), c.worker_count()) == (2, 5)
    assert c.join_timeout_s == 60.0


def test_a_master_only_host_runs_no_local_worker_and_needs_remote_ones() -> None:
    c = load_campaign(None, master_only=True, remote_workers=2, **REMOTE,
                      master_bind="198.18.0.2:5557")  # fmt: skip
    assert (c.local_worker_count(), c.worker_count()) == (0, 2)
    assert load_campaign(None, workers=0).local_worker_count() >= 1  # 0: one per core
    with pytest.raises(UsageError, match="master_only: a master-only host sends no load"):
        load_campaign(None, master_only=True)


@pytest.mark.parametrize("bind", ["0.0.0.0", "198.18.0.2:5557", "*:6000"])
def test_a_bind_off_loopback_needs_remote_workers(bind: str) -> None:
    with pytest.raises(UsageError, match="is outside loopback"):
        load_campaign(None, master_bind=bind)
    load_campaign(None, master_bind=bind, remote_workers=1, **REMOTE)


def test_workers_on_other_hosts_cannot_reach_the_embedded_mock() -> None:
    with pytest.raises(UsageError, match="cannot reach the embedded mock"):
        load_campaign(None, master_bind="198.18.0.2", remote_workers=1)
    load_campaign(None, master_bind="127.0.0.1:6000", remote_workers=1)  # same host: fine


@pytest.mark.parametrize(
    ("text", "bind"),
    [
        ("", MasterBind("127.0.0.1")),
        ("127.0.0.2", MasterBind("127.0.0.2")),
        ("198.18.0.2:6000", MasterBind("198.18.0.2", 6000)),
        ("[::1]:6000", MasterBind("::1", 6000)),
        ("::1", MasterBind("::1")),
    ],
)
def test_master_bind_forms(text: str, bind: MasterBind) -> None:
    assert parse_master_bind(text, "--master-bind") == bind


@pytest.mark.parametrize("text", ["host:port", "h:0", "h:70000", "[::1", ":5557", "[x]:1"])
def test_a_malformed_bind_is_one_line(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--master-bind: "):
        parse_master_bind(text, "--master-bind")


def test_the_flags_reach_the_keys(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["run", "--master-only", "--no-tty"]) == 2  # refused before anything starts
    assert "--master-only: a master-only host sends no load itself" in capsys.readouterr().err


def test_the_test_range_is_not_loopback() -> None:
    assert is_loopback_url("http://127.0.0.1:1") and is_loopback_url("http://[::1]:1")
    assert not is_loopback_url("http://198.18.0.1:8080")
    assert not is_loopback_url("http://198.19.255.1:8080")


def test_the_identity_names_the_code_and_not_its_folder(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, text in ((a, "x = 1\n"), (b, "x = 1\n"), (c, "x = 2\n")):
        folder.mkdir()
        (folder / "locustfile.py").write_text(text)
    assert identity([a / "locustfile.py"]) == identity([b / "locustfile.py"])
    assert identity([a / "locustfile.py"]) != identity([c / "locustfile.py"])
    assert identity([a / "locustfile.py"]).version == identity().version
