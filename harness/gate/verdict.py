"""The gate's verdict and its renderings: JSON, JUnit XML, Markdown (a pull-request comment)
and the terminal's plain text. Pure functions of a :class:`Verdict`; nothing is measured here.

Outcomes: ``fail`` (an SLO breached or a regression established), ``underpowered`` (nothing
failed, but some comparison could not have detected its tolerance, or a met percentile SLO
had too few requests beyond it: the run was too small to say "no regression"), ``pass``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from harness.gate.compare import Change, Policy, holm_z
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

    def underpowered(self) -> list[tuple[str, Change]]:
        """Comparisons too noisy (or too small) to detect their tolerance."""
        return [(c.key, ch) for c in self.comparisons for ch in c.changes if ch.underpowered]

    def underpowered_slos(self) -> list[SloResult]:
        """Met percentile SLOs with too few requests beyond the percentile."""
        return [r for r in self.slo if r.passed and r.underpowered]

    @property
    def outcome(self) -> str:
        """``fail``, ``underpowered`` or ``pass`` (see the module docstring)."""
        if self.breaches() or self.regressions():
            return "fail"
        if self.underpowered() or self.underpowered_slos():
            return "underpowered"
        return "pass"

    def holm_comparisons(self) -> int:
        return sum(1 for c in self.comparisons for ch in c.changes if ch.p_value is not None)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.comparisons:
            for ch in c.changes:
                out[ch.verdict] = out.get(ch.verdict, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        """No breach, no regression, and power enough if the policy requires it."""
        if self.outcome == "underpowered":
            return not self.policy.require_power
        return self.outcome == "pass"


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{x * 100:+.1f}%"


def _pp(x: float | None) -> str:
    return "?" if x is None else f"{x * 100:+.2f} pp"


def _value(ch: Change, v: float) -> str:
    return f"{v * 100:.2f}%" if ch.metric == "error_rate" else f"{v:.3f} ms"


def mde_text(ch: Change) -> str:
    """The minimum detectable effect: ``+12%`` (quantiles), ``+0.62 pp`` (error rates)."""
    if ch.mde is None:
        return "none (too few requests)"
    if ch.metric == "error_rate":
        return f"+{ch.mde * 100:.2f} pp"
    return f"+{ch.mde * 100:.0f}%" if ch.mde >= 0.1 else f"+{ch.mde * 100:.1f}%"


def power_lead(v: Verdict) -> str:
    """One sentence: the smallest regression the run could detect on the total."""
    total = next((c for c in v.comparisons if c.key == "total"), None)
    if total is None:
        return ""
    parts = ", ".join(f"{ch.metric} {mde_text(ch)}" for ch in total.changes)
    return (
        f"Smallest regression this run could detect on the total ({v.policy.confidence:.0%} "
        f"confidence, Holm over {v.holm_comparisons()} comparisons): {parts}."
    )


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
        "outcome": v.outcome,
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
            "require_power": v.policy.require_power,
        },
        "power": {
            "holm_comparisons": v.holm_comparisons(),
            "z": holm_z(v.policy.confidence, v.holm_comparisons()),
            "underpowered": [f"{key} {ch.metric}" for key, ch in v.underpowered()],
            "underpowered_slo": [f"{r.target}: {r.threshold}" for r in v.underpowered_slos()],
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
                elif ch.underpowered and v.policy.require_power:
                    text += f"; underpowered: smallest detectable {mde_text(ch)}"
                    ET.SubElement(case, "failure", message=text, type="Underpowered").text = text
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


def twin_order(key: str) -> tuple[str, str, bool]:
    """Sort key that puts a request's corrected twin (``GET+CO /x``) right after it."""
    if key.startswith("total"):
        return ("", "", key != "total")
    method, _, name = key.partition(" ")
    return (name, method.removesuffix("+CO"), method.endswith("+CO"))


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


_METRIC_ORDER = ("p50", "p90", "p95", "p99", "p999", "error_rate")


def _md_power(v: Verdict) -> list[str]:
    """The lead: what the run could detect, on the total and per name, and what it could not."""
    lines = [f"**{power_lead(v)}**" if power_lead(v) else ""]
    weak, thin = v.underpowered(), v.underpowered_slos()
    if weak:
        lines.append(
            f"**Underpowered**: {len(weak)} comparisons could not detect their tolerance "
            "(a slowdown of twice the tolerance would pass more often than not): a longer run, "
            "more load or `gate-ab --rounds N` narrows them."
        )
    for r in thin:
        lines.append(f"**Underpowered SLO**: `{_md_escape(r.target)}` {_md_escape(r.message)}.")
    metrics = [m for m in _METRIC_ORDER if any(ch.metric == m for c in v.comparisons
                                                for ch in c.changes)]  # fmt: skip
    lines += [
        "",
        "Minimum detectable effect per name (a true slowdown this large fails the gate about "
        "half the time; **bold**: above twice the tolerance, underpowered; too few: too few "
        "requests to bound it):",
        "",
        "| request | requests | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for c in sorted(v.comparisons, key=lambda c: twin_order(c.key)):
        by_metric = {ch.metric: ch for ch in c.changes}
        cells = []
        for m in metrics:
            ch = by_metric.get(m)
            text = "" if ch is None else "too few" if ch.mde is None else mde_text(ch)
            cells.append(f"**{text}**" if ch is not None and ch.underpowered else text)
        lines.append(
            f"| `{_md_escape(c.key)}` | {c.baseline_count} / {c.candidate_count} | "
            + " | ".join(cells)
            + " |"
        )
    return [*lines, ""]


def render_markdown(v: Verdict) -> str:
    """A summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``; it leads with what
    the run could have detected."""
    head = {"pass": "PASS", "fail": "FAIL", "underpowered": "UNDERPOWERED"}[v.outcome]
    if v.outcome == "underpowered" and not v.passed:
        head += " (fails: power required)"
    lines = [f"## Performance gate: {head}", ""]
    if v.comparisons:
        lines += _md_power(v)
    else:
        lines += [
            f"**Underpowered SLO**: `{_md_escape(r.target)}` {_md_escape(r.message)}."
            for r in v.underpowered_slos()
        ]
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
            key=lambda r: (order.get(r[1].verdict, 9), twin_order(r[0].key), r[1].metric),
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
    weak = v.underpowered()
    if weak:
        shown = ", ".join(f"{key} {ch.metric} ({mde_text(ch)})" for key, ch in weak[:8])
        more = f" and {len(weak) - 8} more" if len(weak) > 8 else ""
        lines.append(f"underpowered: {len(weak)} comparisons: {shown}{more}")
    for r in v.underpowered_slos():
        lines.append(f"underpowered SLO: {r.target}: {r.threshold} ({r.message})")
    if power_lead(v):
        lines.append(power_lead(v))
    counts = v.counts()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    slo = f"{len(v.slo) - len(v.breaches())}/{len(v.slo)} SLOs met" if v.slo else "no SLOs"
    head = v.outcome.upper()
    if v.outcome == "underpowered":
        head += (
            " (exit 5: --require-power)" if not v.passed else " (exit 0; --require-power fails it)"
        )
    lines.append(f"gate: {head} ({slo}" + (f"; comparisons: {summary}" if summary else "") + ")")
    for note in v.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
