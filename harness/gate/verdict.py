"""The gate's verdict and its renderings: JSON, JUnit XML, Markdown (a pull-request comment)
and the terminal's plain text. Pure functions of a :class:`Verdict`; nothing is measured here.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from harness.gate.compare import Change, Policy
from harness.gate.slo import SloResult

VERDICT_SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """All compared metrics of one request key (or ``total``)."""

    key: str
    baseline_count: int
    candidate_count: int
    changes: tuple[Change, ...]


@dataclass(frozen=True, kw_only=True)
class Verdict:
    mode: str  # slo, baseline, ab
    run: str
    baseline: str | None
    policy: Policy
    slo: tuple[SloResult, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    notes: tuple[str, ...] = ()
    unmatched: dict[str, list[str]] = field(default_factory=dict)

    def breaches(self) -> list[SloResult]:
        return [r for r in self.slo if not r.passed]

    def regressions(self) -> list[tuple[str, Change]]:
        fail = {"regression"} | ({"inconclusive"} if self.policy.fail_on_inconclusive else set())
        return [(c.key, ch) for c in self.comparisons for ch in c.changes if ch.verdict in fail]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.comparisons:
            for ch in c.changes:
                out[ch.verdict] = out.get(ch.verdict, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        return not self.breaches() and not self.regressions()


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{x * 100:+.1f}%"


def _pp(x: float | None) -> str:
    return "?" if x is None else f"{x * 100:+.2f} pp"


def _value(ch: Change, v: float) -> str:
    return f"{v * 100:.2f}%" if ch.metric == "error_rate" else f"{v:.3f} ms"


def change_text(ch: Change) -> str:
    """``+12.3% [+8.1%, +16.7%]`` (quantiles) or ``+0.40 pp [...]`` (error rates)."""
    f = _pp if ch.metric == "error_rate" else _pct
    if ch.low is None:
        return f"{f(ch.change)} [no interval]"
    return f"{f(ch.change)} [{f(ch.low)}, {f(ch.high)}]"


def to_json(v: Verdict) -> dict[str, Any]:
    return {
        "schema": VERDICT_SCHEMA,
        "passed": v.passed,
        "mode": v.mode,
        "run": v.run,
        "baseline": v.baseline,
        "policy": {
            "confidence": v.policy.confidence,
            "method": v.policy.method,
            "tolerance": v.policy.tolerance,
            "min_effect_ms": v.policy.min_effect_ms,
            "metrics": list(v.policy.metrics),
            "fail_on_inconclusive": v.policy.fail_on_inconclusive,
        },
        "counts": v.counts(),
        "slo": [r.as_dict() for r in v.slo],
        "comparisons": [
            {
                "key": c.key,
                "baseline_count": c.baseline_count,
                "candidate_count": c.candidate_count,
                "changes": [ch.as_dict() for ch in c.changes],
            }
            for c in v.comparisons
        ],
        "unmatched": v.unmatched,
        "notes": list(v.notes),
    }


def render_json(v: Verdict) -> str:
    return json.dumps(to_json(v), indent=2, sort_keys=True) + "\n"


def render_junit(v: Verdict) -> str:
    """One test case per SLO objective and per compared metric; an inconclusive comparison
    is ``skipped`` (it neither passes nor fails the build unless configured to)."""
    suites = ET.Element("testsuites", name="portal-load gate")
    regressions = {(k, ch.metric) for k, ch in v.regressions()}
    if v.slo:
        suite = ET.SubElement(suites, "testsuite", name="slo")
        for r in v.slo:
            case = ET.SubElement(suite, "testcase", classname=f"slo.{r.target}", name=r.threshold)
            if not r.passed:
                ET.SubElement(
                    case, "failure", message=r.message, type="SLOBreach"
                ).text = f"{r.target}: {r.threshold}: {r.message}"
            else:
                ET.SubElement(case, "system-out").text = r.message
        _counts(suite)
    if v.comparisons:
        suite = ET.SubElement(suites, "testsuite", name="baseline")
        for c in v.comparisons:
            for ch in c.changes:
                case = ET.SubElement(
                    suite, "testcase", classname=f"baseline.{c.key}", name=ch.metric
                )
                text = (
                    f"{ch.metric}: {_value(ch, ch.baseline)} -> {_value(ch, ch.candidate)}, "
                    f"{change_text(ch)}, {ch.verdict}" + (f" ({ch.note})" if ch.note else "")
                )
                if (c.key, ch.metric) in regressions:
                    ET.SubElement(case, "failure", message=text, type="Regression").text = text
                elif ch.verdict == "inconclusive":
                    ET.SubElement(case, "skipped", message=text)
                else:
                    ET.SubElement(case, "system-out").text = text
        _counts(suite)
    _counts(suites)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _counts(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    element.set("errors", "0")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_MD_HEADER = "| request | metric | baseline | candidate | change [interval] | tolerance | verdict |"


def _md_row(c: Comparison, ch: Change) -> str:
    verdict = f"**{ch.verdict}**" if ch.verdict == "regression" else ch.verdict
    tol = f"{ch.tolerance * 100:.2f} pp" if ch.metric == "error_rate" else f"{ch.tolerance:.0%}"
    note = f" ({_md_escape(ch.note)})" if ch.note else ""
    return (
        f"| `{_md_escape(c.key)}` ({c.baseline_count} / {c.candidate_count}) | "
        f"{ch.metric} | {_value(ch, ch.baseline)} | {_value(ch, ch.candidate)} | "
        f"{change_text(ch)} | {tol} | {verdict}{note} |"
    )


def render_markdown(v: Verdict) -> str:
    """A summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    head = "PASS" if v.passed else "FAIL"
    lines = [f"## Performance gate: {head}", ""]
    against = f" against `{v.baseline}`" if v.baseline else ""
    lines.append(f"Run `{v.run}`{against} ({v.mode}).")
    counts = v.counts()
    if counts:
        lines.append(
            "Comparisons: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + "."
        )
    breaches = v.breaches()
    if v.slo:
        lines.append(f"SLOs: {len(v.slo) - len(breaches)} of {len(v.slo)} met.")
    lines.append("")
    if v.slo:
        lines += ["### SLOs", "", "| target | threshold | observed | |", "|---|---|---|---|"]
        for r in v.slo:
            mark = "ok" if r.passed else "**breached**"
            lines.append(
                f"| `{_md_escape(r.target)}` | `{_md_escape(r.threshold)}` | "
                f"{_md_escape(r.message)} | {mark} |"
            )
        lines.append("")
    if v.comparisons:
        pol = v.policy
        lines += [
            "### Against the baseline",
            "",
            f"Change of each metric with its interval (each bound at {pol.confidence:.0%} "
            f"confidence, {pol.method}); a regression fails only when the whole interval "
            "lies beyond the tolerance and survives Holm's correction over all comparisons.",
            "",
            _MD_HEADER,
            "|---|---|---|---|---|---|---|",
        ]
        order = {"regression": 0, "inconclusive": 1, "improvement": 2, "changed": 3, "unchanged": 4}
        rows = sorted(
            ((c, ch) for c in v.comparisons for ch in c.changes),
            key=lambda r: (order.get(r[1].verdict, 9), r[0].key, r[1].metric),
        )
        # What a reviewer must see first; the calm rows and the unmeasurable ones fold away.
        shown = [r for r in rows if r[1].verdict != "unchanged" and r[1].low is not None]
        folded = [r for r in rows if r not in shown]
        lines += [_md_row(c, ch) for c, ch in shown] or ["| | | | | (nothing changed) | | |"]
        lines.append("")
        if folded:
            lines += [
                "<details><summary>"
                f"{len(folded)} more: unchanged, or too few requests to tell</summary>",
                "",
                _MD_HEADER,
                "|---|---|---|---|---|---|---|",
            ]
            lines += [_md_row(c, ch) for c, ch in folded]
            lines += ["", "</details>", ""]
    for side, keys in sorted(v.unmatched.items()):
        if keys:
            lines.append(f"Only in the {side}: " + ", ".join(f"`{k}`" for k in keys) + ".")
    for note in v.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines).rstrip() + "\n"


def render_text(v: Verdict) -> str:
    """A few lines for the terminal: the verdict and what failed."""
    lines = []
    for r in v.breaches():
        lines.append(f"SLO breached: {r.target}: {r.threshold} ({r.message})")
    for key, ch in v.regressions():
        lines.append(
            f"regression: {key} {ch.metric} {_value(ch, ch.baseline)} -> "
            f"{_value(ch, ch.candidate)} {change_text(ch)} "
            f"(tolerance {ch.tolerance * 100:.1f}%)"
        )
    counts = v.counts()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    slo = f"{len(v.slo) - len(v.breaches())}/{len(v.slo)} SLOs met" if v.slo else "no SLOs"
    lines.append(
        f"gate: {'PASS' if v.passed else 'FAIL'} ({slo}"
        + (f"; comparisons: {summary}" if summary else "")
        + ")"
    )
    for note in v.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
