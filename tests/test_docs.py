"""The repository stands alone and its docs match the code.

- Nothing refers to documents a clone does not have (a design document or seed files kept
  outside the repository): the API, metrics and published figures are in ``docs/``.
- Every relative link of the docs and the README reaches a file of the repository.
- The README's command table lists every command of ``portal-load``, its exit codes name every
  reason for 4, and ``docs/observability.md`` names every scrape job of ``prometheus.yml``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".lua", ".json", ".cfg", ".txt"}
OUTSIDE = re.compile(r"\bDESIGN(?:\.md)?\b|shared/seeds|shared/DESIGN")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [ROOT / p for p in listed if Path(p).suffix in TEXT_SUFFIXES and (ROOT / p).is_file()]


def test_nothing_refers_to_documents_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _tracked()
        if path.resolve() != this
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    "doc", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_relative_link_reaches_a_file(doc: Path) -> None:
    broken = [
        target
        for target in LINK.findall(doc.read_text(encoding="utf-8"))
        if "://" not in target and not (doc.parent / target).exists()
    ]
    assert broken == []


def test_the_contracts_are_in_docs() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    for path in ("/oauth2/token", "/api/v1/payments/{id}/receipt", "/admin/faults"):
        assert f"`{path}" in api or f" {path}`" in api, path
    assert "Idempotency-Key" in api and "citizen-<n>" in api
    metrics = (ROOT / "docs" / "metrics.md").read_text()
    for series in ("portal_http_request_duration_seconds", "loadgen_response_time_seconds",
                   "loadgen_target_rps", "loadgen_capacity_max_rps"):  # fmt: skip
        assert f"`{series}" in metrics, series
    figures = (ROOT / "docs" / "workload-model.md").read_text()
    assert "https://digital.gov.ru/ru/events/40942/" in figures
    assert '"more than 7000 user requests per second were processed at the peak"' in figures


def test_the_command_table_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## The command line") : readme.index("Flags of `run`")]
    commands = next(
        a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"
    ).choices
    missing = [name for name in commands if f"`portal-load {name}" not in table]
    assert missing == []


def test_the_exit_codes_name_every_reason_for_4() -> None:
    readme = (ROOT / "README.md").read_text()
    codes = readme[readme.index("Exit codes:") : readme.index("Plain Locust works too")]
    for reason in (
        "worker was lost",  # summary.json degraded: missing or left
        "above 90 % CPU",  # loadgen_cpu_high
        "reports could not be merged",  # reports_rejected
        "request count disagrees",  # the cross-check against the mock
    ):
        assert reason in codes, reason
    assert "`5`" in codes and "--require-power" in codes


def test_observability_names_every_scrape_job() -> None:
    config = (ROOT / "dashboards" / "prometheus" / "prometheus.yml").read_text()
    jobs = re.findall(r"^\s*- job_name:\s*(\S+)", config, re.MULTILINE)
    assert len(jobs) == 3
    for doc in ("observability.md", "metrics.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert [job for job in jobs if f"`{job}`" not in text] == [], doc
