"""The checks at a run's end: the generator's count against the mock's own, the failure
ratio, a busy generator, rejected reports, and the faults seen while it ran. A run whose
figures are in doubt is ``degraded``; one whose results end before it did is ``partial``."""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from harness.campaign import Campaign
from harness.results.folder import SUMMARY, write_json
from harness.run.watch import Fault
from mock_portal.routes import OPERATIONS_ROUTES

# The generator and the mock count independently; connection errors are counted by one side
# only, so they may differ a little. More than this is flagged.
COUNT_TOLERANCE = 0.01
OPEN_POOL_SIZE = 1000  # scenarios.open_model's default pool of concurrent visits per executor


@dataclass(frozen=True)
class MockCount:
    """The embedded mock's own count of the requests it answered, and of those it cut off
    with an injected reset or lost response (not in its request count; a retried GET then
    reaches it twice, a POST is counted by the generator as one failed request)."""

    answered: float
    cut_off: float = 0.0


def mock_request_count(base_url: str) -> MockCount | None:
    """The embedded mock's own counts, from its ``/metrics``; None when it cannot be read."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/metrics", timeout=5) as resp:
            text = resp.read().decode("utf-8")
    except OSError:
        return None
    total = cut_off = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("route") in OPERATIONS_ROUTES:
                continue
            if s.name == "portal_http_requests_total":
                total += s.value
            elif s.name == "portal_faults_injected_total" and s.labels.get("kind") in (
                "reset",
                "lost_response",
            ):
                cut_off += s.value
    return MockCount(total, cut_off)


def in_flight_bound(campaign: Campaign, summary: dict[str, Any]) -> int:
    """The most requests that can be in flight when the run stops: one per user (closed
    model), or the visits started and not completed (open model)."""
    if not campaign.open_model:
        return campaign.users
    visits = summary.get("open_model") or {}
    if "started" in visits:
        return int(visits.get("started", 0) - visits.get("completed", 0))
    return campaign.worker_count() * (campaign.open_pool_size or OPEN_POOL_SIZE)


def cross_check(
    run_dir: Path,
    summary: dict[str, Any],
    mock: MockCount | None,
    in_flight_bound: int,
    *,
    mock_expected: bool = False,
    max_failure_ratio: float = 1.0,
    faults: Sequence[Fault] = (),
) -> dict[str, Any]:
    """Flag numbers that may be lies: a busy generator, counts that disagree with the mock or
    could not be checked, too many failures, and the faults seen while the run ran."""
    flags: list[str] = []
    checks: dict[str, Any] = {"flags": flags}
    cut_short = fault_flags(summary, faults, checks)  # first: the cause of what follows
    total = summary.get("total", {}).get("count")
    if cut_short:
        pass  # the generator's count ends before the run did: no count to compare
    elif mock is not None and isinstance(total, int | float):
        mock_count = mock.answered
        checks["mock_request_count"] = mock_count
        checks["loadgen_request_count"] = total
        if mock.cut_off:
            checks["mock_cut_off_count"] = mock.cut_off
        # Requests in flight when the run stops reach the mock but are never reported: at
        # most one per user (closed model) or per pool slot (open model). Requests the mock
        # cut off by an injected fault may be counted on one side only.
        allowed = max(COUNT_TOLERANCE * max(total, mock_count), in_flight_bound + 10.0)
        allowed += mock.cut_off
        checks["counts_agree"] = abs(total - mock_count) <= allowed
        if not checks["counts_agree"]:
            flags.append(
                f"the load generator counted {total:.0f} requests, the mock {mock_count:.0f}"
            )
    elif mock_expected:
        checks["counts_agree"] = None
        flags.append(
            "the embedded mock's own request count could not be read: "
            "the load generator's count is unchecked"
        )
    failed = summary.get("total", {}).get("failures")
    if isinstance(total, int | float) and isinstance(failed, int | float) and total > 0:
        checks["failure_ratio"] = round(failed / total, 6)
        checks["max_failure_ratio"] = max_failure_ratio
        if failed / total > max_failure_ratio:
            flags.append(
                f"{failed:,.0f} of {total:,.0f} requests failed ({failed / total:.1%}), above "
                f"max_failure_ratio ({max_failure_ratio:.1%})"
            )
    telemetry_flags = summary.get("flags") or []
    if "loadgen_cpu_high" in telemetry_flags:
        flags.append(
            "a load generator worker was above 90 % CPU for 4 s or more: "
            "its latencies may be inflated"
        )
    if "reports_rejected" in telemetry_flags:
        flags.append("worker reports could not be merged: the counts are incomplete")
    summary["checks"] = checks
    if cut_short:
        # The load generator's results end before the run did: no claim beyond them.
        summary["status"] = "partial"
    elif flags and summary.get("status") == "complete":
        # A run whose figures are in doubt is not complete: a baseline refuses it, the gate
        # says so, and the exit code is 4.
        summary["status"] = "degraded"
    try:
        write_json(run_dir / SUMMARY, summary)
    except OSError as exc:
        checks["not_written"] = f"{run_dir / SUMMARY} keeps the load generator's last write: {exc}"
    return summary


def fault_flags(summary: dict[str, Any], faults: Sequence[Fault], checks: dict[str, Any]) -> bool:
    """The faults as flags, with the time into the run; True if the results were cut short
    (the disk filled up, or the master died before its final write)."""
    if not faults:
        return False
    start = summary.get("start_unix_s") or faults[0].at_unix_s
    checks["faults"] = [f.as_dict(start) for f in faults]
    flags: list[str] = checks["flags"]
    cut_short = False
    for fault, entry in zip(faults, checks["faults"], strict=True):
        at = f"{entry['at_s']:.0f} s into the run"
        if fault.kind == "master_died":
            covers = summary.get("covers_until_unix_s")
            covered = (
                f"the results cover its first {max(covers - start, 0.0):.0f} s"
                if isinstance(covers, int | float)
                else "the results cover an unknown part of it"
            )
            flags.append(f"{fault.reason} {at}; {covered} (covers_until_unix_s), no more")
            cut_short = cut_short or not summary.get("final")
        elif fault.kind == "disk_full":
            flags.append(f"{fault.reason} ({at})")
            cut_short = True
        else:
            flags.append(f"{fault.reason} {at}")
    return cut_short
