"""capacity.json reaches Prometheus: the textfile and the exporter's /metrics agree with it."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness import cli
from harness.capacity.export import make_server, metrics_text, write_textfile

CAPACITY = {
    "run_id": "20260101T000000Z-capacity",
    "plan": {"probe_path": "/api/v1/services"},
    "max_rps": 812.5,
    "slo_rps": 760.0,
    "knee": {"throughput_rps": 640.0},
    "projection": {"target_rps": 7000.0, "instances": 14},
    "usl": {"sigma": 0.08, "kappa": 0.0},
    "finished_unix_s": 1_767_225_600.0,
}


def _values(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def _run_dir(root: Path, run_id: str, capacity: dict[str, object]) -> Path:
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "campaign.toml").write_text("[campaign]\n")
    (run_dir / "capacity.json").write_text(json.dumps(capacity))
    return run_dir


def test_textfile_carries_the_dashboard_series(tmp_path: Path) -> None:
    path = write_textfile(tmp_path, CAPACITY)
    values = _values(path.read_text())
    assert values["loadgen_capacity_max_rps"] == 812.5
    assert values["loadgen_capacity_slo_rps"] == 760.0
    assert values["loadgen_capacity_knee_rps"] == 640.0
    assert values["loadgen_capacity_instances_needed"] == 14
    assert values["loadgen_capacity_usl_kappa"] == 0.0
    # A search that found nothing within the SLO exports no SLO capacity, not a zero.
    assert "loadgen_capacity_slo_rps" not in _values(metrics_text({**CAPACITY, "slo_rps": None}))


def test_exporter_serves_the_latest_capacity_run(tmp_path: Path) -> None:
    _run_dir(tmp_path, "20260101T000000Z-capacity", CAPACITY)
    server = make_server(tmp_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain")
            assert _values(resp.read().decode())["loadgen_capacity_max_rps"] == 812.5
        # A newer run is served on the next scrape, without a restart.
        _run_dir(tmp_path, "20260102T000000Z-capacity", {**CAPACITY, "max_rps": 900.0})
        with opener.open(url, timeout=10) as resp:
            assert _values(resp.read().decode())["loadgen_capacity_max_rps"] == 900.0
    finally:
        server.shutdown()
        server.server_close()


def test_once_prints_the_exposition(tmp_path: Path, capsys) -> None:
    _run_dir(tmp_path, "20260101T000000Z-capacity", CAPACITY)
    assert cli.main(["capacity-exporter", "--out", str(tmp_path), "--once"]) == 0
    assert _values(capsys.readouterr().out)["loadgen_capacity_slo_rps"] == 760.0
