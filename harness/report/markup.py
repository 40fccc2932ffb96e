"""The report's HTML: its style sheet, and the few elements every section is made of
(escaped cells, tables, pass/fail marks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
margin:0 auto;max-width:820px;padding:16px 24px 48px;background:#fff}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#dde;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f5f6f9;font-weight:600}
.meta{color:#556;margin:0 0 8px}.flag{background:#fff4d6;border-left:4px solid #e0a100;
padding:4px 8px;margin:4px 0}.pass{color:#17803d;font-weight:600}.fail{color:#c0262d;
font-weight:600}.muted{color:#778}svg.chart{display:block;margin:6px 0 14px;background:#fff}
svg.chart .tick{font-size:11px;fill:#445}svg.chart .label{font-size:12px;fill:#223}
svg.chart .legend{font-size:12px;fill:#223}svg.chart .ref{font-size:11px}
code{background:#f3f3f6;padding:0 3px}
"""
PERCENTILE_NINES = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def num(v: Any, digits: int = 1) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:,.{digits}f}"
    return escape(str(v))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; cells that are already HTML are passed as ``Markup``."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, Markup) else num(c)}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Markup(str):
    """A string that is already HTML."""


def verdict(ok: bool | None) -> Markup:
    if ok is None:
        return Markup('<span class="muted">-</span>')
    return Markup('<span class="pass">pass</span>' if ok else '<span class="fail">FAIL</span>')
