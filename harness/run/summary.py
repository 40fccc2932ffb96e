"""The end-of-run summary tables, printed from ``summary.json``: requests, journeys and, in
the open model, service time beside the time corrected for coordinated omission."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.results.folder import REPORT
from harness.results.latency import corrected_pairs

COLUMNS = ("count", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")
# Service time and corrected time side by side, per quantile.
CORRECTED_COLUMNS = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def _cells(row: dict[str, Any]) -> list[str]:
    label = escape(f"{row.get('method', '')} {row.get('name', '')}".strip())
    cells = [label]
    for col in COLUMNS:
        value = row.get(col, "")
        cells.append(f"{value:,.1f}" if isinstance(value, float) else f"{value:,}")
    return cells


def _table(title: str, rows: list[dict[str, Any]], total: dict[str, Any] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("request", overflow="fold")
    for col in COLUMNS:
        table.add_column(col.replace("_ms", " ms").replace("p999", "p99.9"), justify="right")
    for row in rows:
        table.add_row(*_cells(row))
    if total:
        table.add_section()
        table.add_row(*_cells({**total, "name": "total", "method": ""}))
    return table


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return "-" if value in ("", None) else f"{value:,}"


def _corrected_table(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> Table:
    table = Table(
        title="Latency: service time | corrected for coordinated omission (+CO), ms",
        title_justify="left",
    )
    table.add_column("request", overflow="fold")
    table.add_column("count", justify="right")
    for col in CORRECTED_COLUMNS:
        label = col.removesuffix("_ms")
        table.add_column(label, justify="right")
        table.add_column(f"{label} +CO", justify="right")
    for i, (service, corrected) in enumerate(pairs):
        if i == len(pairs) - 1 and service.get("name") == "total":
            table.add_section()
        label = escape(f"{service.get('method', '')} {service.get('name', '')}".strip())
        cells = [label, _number(service.get("count", ""))]
        for col in CORRECTED_COLUMNS:
            cells += [_number(service.get(col)), _number(corrected.get(col))]
        table.add_row(*cells)
    return table


def print_summary(summary: dict[str, Any], run_dir: Path, *, out: IO[str]) -> None:
    console = Console(file=out, width=140)
    rows = sorted(summary.get("requests", []), key=lambda r: -int(r.get("count", 0)))
    title = f"Requests ({summary.get('duration_s', 0):.0f} s, status {summary.get('status', '?')})"
    console.print(_table(title, rows, summary.get("total")))
    pairs = corrected_pairs(summary)
    if pairs:
        console.print(_corrected_table(pairs))
    journeys = summary.get("journeys") or []
    if journeys:
        console.print(_table("Journeys", journeys))
    flags = list(summary.get("flags") or []) + list(summary.get("checks", {}).get("flags") or [])
    for event in summary.get("degraded") or []:
        where = f" on {event['host']}" if event.get("host") else ""
        flags.append(f"worker {event.get('worker')}{where} lost: {event.get('reason')}")
    for flag in flags:
        console.print(f"[bold yellow]flag:[/] {escape(flag)}")
    report = run_dir / REPORT
    console.print(
        escape(f"results: {run_dir}" + (f"\nreport:  {report}" if report.exists() else ""))
    )
