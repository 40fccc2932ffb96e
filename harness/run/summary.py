"""The end-of-run summary table, printed from ``summary.json``."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.results.folder import REPORT

COLUMNS = ("count", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")


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


def print_summary(summary: dict[str, Any], run_dir: Path, *, out: IO[str]) -> None:
    console = Console(file=out, width=140)
    rows = sorted(summary.get("requests", []), key=lambda r: -int(r.get("count", 0)))
    title = f"Requests ({summary.get('duration_s', 0):.0f} s, status {summary.get('status', '?')})"
    console.print(_table(title, rows, summary.get("total")))
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
