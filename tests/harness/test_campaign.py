"""The campaign file: defaults, overrides, one-line errors that name the key, and safety."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.campaign import Campaign, check_target, is_loopback_target, load_campaign
from harness.cli import main
from harness.errors import UsageError
from harness.units import parse_duration_s as parse_duration


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_a_short_embedded_campaign() -> None:
    c = load_campaign(None)
    assert c.embedded
    assert 30 <= c.duration_s <= 120
    assert c.worker_count() >= 1


def test_file_then_flags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[campaign]
name = "peak"
duration = "2m"
[load]
users = 300
shape = "ramp"
[load.shape_params]
ramp = 0.3
[workers]
count = 3
""",
    )
    c = load_campaign(path, users=50, duration_s="90s")
    assert (c.name, c.users, c.duration_s, c.shape, c.workers) == ("peak", 50, 90.0, "ramp", 3)
    assert c.shape_params == {"ramp": 0.3}
    again = tomllib.loads(c.to_toml())
    assert again["load"]["users"] == 50
    assert load_campaign(_write(tmp_path, c.to_toml())).users == 50


def test_open_model_settings_round_trip(tmp_path: Path) -> None:
    text = "[load]\narrival_rate = 40.0\npoisson = true\npool_size = 300\nconnections = 16\n"
    c = load_campaign(_write(tmp_path, text), open_connections=8)
    assert (c.open_model, c.arrival_poisson, c.open_pool_size, c.open_connections) == (
        True, True, 300, 8,
    )  # fmt: skip
    again = load_campaign(_write(tmp_path, c.to_toml()))
    assert (again.arrival_poisson, again.open_pool_size, again.open_connections) == (True, 300, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[load]\nusers = -3\n", "load.users: -3 is out of range"),
        ("[load]\nusers = 'many'\n", "load.users: expected an integer"),
        ("[campaign]\nduration = 'soon'\n", "campaign.duration: expected a duration"),
        ("[load]\nshape = 'zigzag'\n", "load.shape: unknown shape 'zigzag'"),
        ("[loud]\nusers = 3\n", "[loud]: unknown section"),
        ("[load]\nuser = 3\n", "load.user: unknown key"),
        ("[load\nusers = 3\n", "not valid TOML"),
        ("[load]\nshape = 'ramp'\narrival_rate = 5.0\n", "not both"),
        ("[campaign]\nhost = 'ftp://x'\n", "host: expected http(s)://"),
        ("[campaign]\nhost = 'http://[::1'\n", "host: Invalid IPv6 URL"),
        ("[campaign]\nhost = 'http://127.0.0.1:99999'\n", "host: Port out of range"),
        ("[campaign]\nhost = 'http://127.0.0.1:0'\n", "host: expected http(s)://"),
        ("[load]\npoisson = 1\n", "load.poisson: expected true or false"),
        ("[load]\npool_size = -1\n", "load.pool_size: -1 is out of range"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_campaign(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "[load]\nusers = 0\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("UsageError: ")
    assert "load.users" in err
    assert len(err.splitlines()) == 1
    assert main(["run", str(tmp_path / "missing.toml")]) == 2


def test_durations() -> None:
    assert parse_duration("250ms", "x") == 0.25
    assert parse_duration("1.5m", "x") == 90
    assert parse_duration(30, "x") == 30
    with pytest.raises(UsageError):
        parse_duration("-1s", "x")


def test_remote_targets_need_explicit_permission() -> None:
    assert is_loopback_target("http://127.0.0.1:8080")
    assert is_loopback_target("http://127.5.6.7")
    assert is_loopback_target("http://[::1]:80")
    assert is_loopback_target("http://localhost:9")
    assert not is_loopback_target("http://10.0.0.1")
    with pytest.raises(UsageError, match="--allow-remote"):
        check_target("http://192.0.2.10", allow_remote=False)
    check_target("http://192.0.2.10", allow_remote=True)  # no traffic is sent
    check_target("http://127.0.0.1:1", allow_remote=False)
    assert Campaign().embedded


def test_cli_refuses_a_remote_target_without_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--host", "http://192.0.2.10", "--duration", "1s"]) == 2
    assert "not on loopback" in capsys.readouterr().err


def test_flags_come_from_the_environment_too(tmp_path: Path) -> None:
    """``PORTAL_LOAD_<FLAG>`` sets a flag as Locust's ``LOCUST_*`` do; a wrong value names the
    variable; the command line wins over it."""
    import os
    import subprocess
    import sys

    def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--out", str(tmp_path), *args],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    bad = run({"PORTAL_LOAD_USERS": "many"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == "UsageError: PORTAL_LOAD_USERS: expected an integer, got 'many'"
    remote = run({"PORTAL_LOAD_HOST": "http://192.0.2.10"})
    assert remote.returncode == 2 and "not on loopback" in remote.stderr
    flag_wins = run({"PORTAL_LOAD_USERS": "many"}, "--users", "0")
    assert "--users: 0 is out of range" in flag_wins.stderr
    assert not any(tmp_path.iterdir())  # nothing started


def test_a_project_s_defaults_come_from_portal_load_toml_or_pyproject(tmp_path: Path) -> None:
    """``portal-load.toml`` (or ``[tool.portal-load]`` in pyproject.toml) under the campaign
    file; a mistake in it names it."""
    import os
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--out", "out", *args],
            cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

    (tmp_path / "pyproject.toml").write_text(
        '[tool.portal-load.campaign]\nhost = "http://192.0.2.9"\n'
    )
    assert "192.0.2.9 is not on loopback" in run().stderr
    (tmp_path / "portal-load.toml").write_text("[load]\nusers = 'lots'\n")
    bad = run()
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith(
        "portal-load.toml: load.users: expected an integer, got 'lots'"
    )
    _write(tmp_path, "[load]\nusers = 5\n[campaign]\nhost = 'http://192.0.2.7'\n")
    assert "192.0.2.7 is not on loopback" in run("campaign.toml").stderr  # the file wins
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("[campaign]\nhost = 'http://127.0.0.1:99999'\n", "campaign.host", "Port out of range"),
        ("[campaign]\nhost = 'ftp://x'\n", "campaign.host", "expected http(s)://"),
        ("[campaign]\nhost = 'http://192.0.2.10'\n", "campaign.host", "not on loopback"),
        ("[load]\nshape = 'ramp'\narrival_rate = 5.0\n", "load.shape", "not both"),
        ("[campaign]\nhost = 'http://127.0.0.1:1'\n[workers]\nmock_workers = 2\n",
         "workers.mock_workers", "embedded mock only"),
        ("[workers]\ncount = 100000\n", "workers.count", "100000 processes on"),
        ("[workers]\nmock_workers = 5000\n", "workers.mock_workers", "5000 processes on"),
        ("[load]\nusers = 1e9\n", "load.users", "expected an integer"),
        ("[load]\nusers = 1000000000\n", "load.users", "out of range (at most 1000000)"),
        ("[campaign]\nduration = 1e308\n", "campaign.duration", "at most 604800 s"),
        ("[campaign]\nmax_failure_ratio = 1.5\n", "campaign.max_failure_ratio", "at most 1"),
        ("[workers]\nmock_config = 'no-such-mock.toml'\n", "workers.mock_config",
         "no-such-mock.toml: no such file"),
    ],
)  # fmt: skip
def test_every_mistake_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, says: str
) -> None:
    path = _write(tmp_path, text)
    assert main(["run", str(path), "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"UsageError: {path}: {key}: "), err
    assert says in err and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()  # refused before anything started


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--duration", "abc"], "--duration: expected a duration"),
        (["--host", "http://192.0.2.10"], "--host: http://192.0.2.10 is not on loopback"),
        (["--mock-config", "no-such-mock.toml"], "--mock-config: no-such-mock.toml: no such file"),
        (["--max-failure-ratio", "lots"], "--max-failure-ratio: expected a fraction"),
        (["--workers", "100000"], "--workers: 100000 processes on"),
    ],
)
def test_a_flag_s_mistake_names_the_flag_as_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    assert main(["run", *flags, "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"UsageError: {says}"), err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()


def test_the_failure_ratio_limit_is_a_share() -> None:
    assert load_campaign(None).max_failure_ratio == 0.05
    assert load_campaign(None, max_failure_ratio="1%").max_failure_ratio == 0.01


def test_users_beyond_the_descriptors_of_the_workers_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    path = _write(tmp_path, "[load]\nusers = 9000\n[workers]\ncount = 2\n")
    with pytest.raises(UsageError) as info:
        load_campaign(path)
    assert str(info.value).startswith(f"{path}: load.users: 9000 users on 2 workers are 4500 ")
    assert "(4096, ulimit -n)" in str(info.value)
    assert load_campaign(path, workers=4).users == 9000  # 2250 per worker fit
