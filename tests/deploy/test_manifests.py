"""The deployment files of docs/distributed.md: valid, and consistent with each other.

Kubernetes manifests are validated offline and strictly (an unknown field fails) against the
API schemas bundled with kubernetes-validate; the systemd unit with ``systemd-analyze
verify``. The campaign in the ConfigMap is read by the harness's own loader.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from harness.campaign import load_campaign
from harness.campaign.workers import master_bind

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
UNIT = ROOT / "deploy" / "systemd" / "portal-load-worker.service"
KUBERNETES_VERSION = "1.30.0"  # a version clusters still run; its schemas ship with the package


def _manifests() -> dict[str, dict[str, Any]]:
    by_kind: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert document["kind"] not in by_kind, path
            by_kind[document["kind"]] = document
    return by_kind


@pytest.mark.parametrize("path", sorted(KUBERNETES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_is_valid_for_the_kubernetes_api(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_can_fail() -> None:
    job = copy.deepcopy(_manifests()["Job"])
    job["spec"]["template"]["spec"]["containers"][0]["comand"] = ["portal-load"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_master_the_service_and_the_workers_agree(tmp_path: Path) -> None:
    m = _manifests()
    assert set(m) == {"ConfigMap", "Deployment", "Job", "Service"}
    job_pod = m["Job"]["spec"]["template"]
    service = m["Service"]
    assert service["spec"]["selector"].items() <= job_pod["metadata"]["labels"].items()
    campaign_text = m["ConfigMap"]["data"]["campaign.toml"]
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_text, encoding="utf-8")
    campaign = load_campaign(path)
    bind = master_bind(campaign)
    (port,) = service["spec"]["ports"]
    master = job_pod["spec"]["containers"][0]
    assert port["targetPort"] == bind.port == master["ports"][0]["containerPort"]
    worker = m["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    command = worker["command"]
    assert command[:2] == ["portal-load", "worker"]
    assert command[command.index("--master") + 1] == f"{service['metadata']['name']}:{port['port']}"
    processes = int(command[command.index("--processes") + 1])
    assert campaign.remote_workers == m["Deployment"]["spec"]["replicas"] * processes
    assert campaign.master_only and campaign.allow_remote
    assert master["command"][:3] == ["portal-load", "run", "/campaign/campaign.toml"]
    mounts = {v["mountPath"] for v in master["volumeMounts"]}
    assert {"/campaign", campaign.results_dir} <= mounts


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (Debian's systemd)")
        pytest.skip("systemd-analyze is missing")
    text = UNIT.read_text(encoding="utf-8")
    entry = Path(sys.executable).with_name("portal-load")
    assert "/opt/portal-load/.venv/bin/portal-load" in text
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/opt/portal-load/.venv/bin/portal-load", str(entry)))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )
    assert "RestartPreventExitStatus=2" in text  # a refused worker is not restarted
