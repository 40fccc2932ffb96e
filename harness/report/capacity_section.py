"""The capacity section of the HTML report, drawn from ``capacity.json`` alone."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from harness.capacity.analysis import latency_curve, measurable
from harness.capacity.queueing import mean_response_s, response_quantile_s
from harness.capacity.usl import usl_throughput
from harness.errors import UsageError
from harness.gate.slo import Target, parse_threshold
from harness.report.markup import Markup, table, verdict
from harness.report.svg import Axes, RefLine, Series, line_chart
from harness.units import ms_to_s, s_to_ms


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _headline(cap: Mapping[str, Any]) -> str:
    knee = cap.get("knee") or {}
    proj = cap.get("projection") or {}
    theory = cap.get("theory") or {}
    rows: list[list[Any]] = [
        ["maximum throughput measured", cap.get("max_rps"), "req/s"],
        [f"capacity within SLO ({', '.join(cap.get('slo') or [])})", cap.get("slo_rps"), "req/s"],
        [f"knee ({knee.get('method', '')})", knee.get("throughput_rps"), "req/s"],
    ]
    if theory.get("capacity_rps"):
        rows.append(
            [
                f"theory: {theory['servers']} servers / {theory['service_time_ms']:g} ms "
                f"({theory['service_time_kind']}) of {theory['service']}",
                theory["capacity_rps"],
                "req/s",
            ]
        )
        if cap.get("max_rps"):
            ratio = _f(cap["max_rps"]) / theory["capacity_rps"]
            rows.append(["measured / theory", Markup(f"{ratio:.3f}"), ""])
    if proj.get("instances"):
        rows += [
            [
                f"instances for {proj['target_rps']:,.0f} req/s, {proj['headroom']:.0%} headroom",
                proj["instances"],
                "instances",
            ],
            ["cores", proj.get("cores"), "cores"],
            ["load per instance at the peak", proj.get("per_instance_rps_at_peak"), "req/s"],
            [
                "utilisation at the peak (of the maximum)",
                Markup(f"{_f(proj.get('utilisation_at_peak')):.1%}"),
                "",
            ],
            ["predicted mean latency at the peak", proj.get("predicted_mean_ms_at_peak"), "ms"],
        ]
    elif proj:
        rows.append(["instances", Markup(escape(str(proj.get("note", "-")))), ""])
    return table(["", "value", "unit"], rows)


def _steps(steps: Sequence[Mapping[str, Any]], users_mode: bool) -> str:
    rows = [
        [
            s.get("users") if users_mode else s.get("offered_rps"),
            s.get("throughput_rps"),
            s.get("mean_ms"),
            s.get("p50_ms"),
            s.get("p95_ms"),
            s.get("p99_ms"),
            _f(s.get("error_ratio")) * 100,
            str(s.get("state") or ("steady" if s.get("steady") else "unsteady")),
            verdict(bool(s.get("within_slo"))),
            s.get("worker_cpu_max"),
            s.get("dropped"),
        ]
        for s in steps
    ]
    headers = [
        "users" if users_mode else "offered req/s",
        *("throughput", "mean ms", "p50 ms", "p95 ms", "p99 ms", "errors %", "state", "SLO"),
        *("gen. CPU %", "dropped"),
    ]
    return table(headers, rows)


def _fits(cap: Mapping[str, Any]) -> str:
    out = []
    usl = cap.get("usl")
    if usl:

        def ci(key: str) -> str:
            lo, hi = (usl.get(key) or [None, None])[:2]
            return f"[{lo:.4g}, {hi:.4g}]" if lo is not None and hi is not None else "-"

        out.append("<h3>Universal Scalability Law</h3>")
        out.append(
            table(
                ["parameter", "estimate", "std. error", "95 % interval (bootstrap)"],
                [
                    [
                        Markup("&lambda; (req/s per unit of concurrency)"),
                        usl.get("lambda_rps"),
                        usl.get("lambda_se"),
                        ci("lambda_ci95"),
                    ],
                    [
                        Markup("&sigma; (contention)"),
                        Markup(f"{_f(usl.get('sigma')):.4g}"),
                        Markup(f"{_f(usl.get('sigma_se')):.2g}"),
                        ci("sigma_ci95"),
                    ],
                    [
                        Markup("&kappa; (coherency)"),
                        Markup(f"{_f(usl.get('kappa')):.4g}"),
                        Markup(f"{_f(usl.get('kappa_se')):.2g}"),
                        ci("kappa_ci95"),
                    ],
                ],
            )
        )
        out.append(
            f"<p class='meta'>{usl.get('points')} measured steps; concurrency N = "
            "throughput &times; mean "
            f"latency (Little's law); R² {_f(usl.get('r2')):.4f}, relative RMSE "
            f"{_f(usl.get('rmse_relative')):.2%}; modelled maximum "
            f"{_f(usl.get('max_throughput_rps')):,.0f} req/s.</p>"
        )
    elif cap.get("usl_error"):
        out.append(f"<p class='muted'>USL not fitted: {escape(str(cap['usl_error']))}</p>")
    fit = cap.get("latency_fit")
    if fit:
        out.append("<h3>Latency against throughput</h3>")
        out.append(
            f"<p class='meta'><code>{escape(fit['model'])}</code>: r0 {fit['r0_ms']:.2f} ms, "
            f"a {fit['a_ms']:.3g} ms, m {fit['m']:g}, saturation {fit['saturation_rps']:,.0f} "
            f"req/s; R² {_f(fit.get('r2')):.4f}, RMSE {fit['rmse_ms']:.2f} ms over "
            f"{fit['points']} measured steps"
            + (
                " (4 fitted parameters: an exact fit, not a test of the model; "
                "more steps give one)."
                if fit.get("dof", 1) <= 0
                else f", {fit['dof']} degrees of freedom."
            )
            + "</p>"
        )
    return "".join(out)


def _charts(cap: Mapping[str, Any]) -> str:
    return "".join([*_throughput_chart(cap), *_usl_chart(cap), *_latency_chart(cap)])


def _throughput_chart(cap: Mapping[str, Any]) -> list[str]:
    steps = cap.get("steps") or []
    users_mode = cap.get("mode") == "users"
    offered = [_f(s.get("users") if users_mode else s.get("offered_rps")) for s in steps]
    x = [_f(s.get("throughput_rps")) for s in steps]
    theory = cap.get("theory") or {}
    refs = []
    if cap.get("max_rps"):
        refs.append(RefLine("y", _f(cap["max_rps"]), "max measured", "#d62728"))
    if cap.get("slo_rps"):
        refs.append(RefLine("y", _f(cap["slo_rps"]), "within SLO", "#2ca02c"))
    if theory.get("capacity_rps"):
        refs.append(RefLine("y", _f(theory["capacity_rps"]), "theory", "#9467bd"))
    top = max([*offered, *x, 1.0])
    diagonal = (
        [] if users_mode else [Series("offered = served", [0, top], [0, top], "#bbb", dash=True)]
    )
    chart = line_chart(
        "throughput-vs-load",
        [*diagonal, Series("throughput", offered, x, points=True)],
        Axes(
            x_label="users (concurrent request loops)" if users_mode else "offered load, req/s",
            y_label="throughput, req/s",
            x_min=0.0,
        ),
        refs=refs,
    )
    return [f"<h3>Throughput against {'users' if users_mode else 'offered load'}</h3>", chart]


def _usl_chart(cap: Mapping[str, Any]) -> list[str]:
    usl = cap.get("usl")
    steady = measurable(cap.get("steps") or [])
    if not (usl and steady):
        return []
    users_mode = cap.get("mode") == "users"
    if users_mode:
        n = [_f(s["users"]) for s in steady]
    else:
        n = [_f(s["throughput_rps"]) * ms_to_s(_f(s["mean_ms"])) for s in steady]
    grid = np.linspace(0.0, max(n) * 1.3, 120)
    fitted = usl_throughput(grid, _f(usl["lambda_rps"]), _f(usl["sigma"]), _f(usl["kappa"]))
    measured = Series(
        "measured (N = users)" if users_mode else "measured (N = X R)",
        n,
        [_f(s["throughput_rps"]) for s in steady],
        points=True,
        line=False,
    )
    axes = Axes(
        x_label="concurrency N (requests in flight)", y_label="throughput, req/s", x_min=0.0
    )
    return [
        "<h3>Throughput against concurrency (USL)</h3>",
        line_chart(
            "usl", [measured, Series("USL fit", list(grid), list(fitted), color="#d62728")], axes
        ),
    ]


def _theory_series(theory: Mapping[str, Any]) -> list[Series]:
    """The M/M/c curves of the mock's pool (exponential service, one process only)."""
    if theory.get("service_time_kind") != "exponential" or theory.get("processes", 1) != 1:
        return []
    c, s_s = int(theory["servers"]), ms_to_s(_f(theory["service_time_ms"]))
    grid = np.linspace(1.0, _f(theory["capacity_rps"]) * 0.97, 120)
    mean = [s_to_ms(mean_response_s(servers=c, service_s=s_s, arrival_rps=g)) for g in grid]
    p95 = [
        s_to_ms(response_quantile_s(0.95, servers=c, service_s=s_s, arrival_rps=g)) for g in grid
    ]
    return [
        Series("mean, M/M/c theory", list(grid), mean, color="#9467bd", dash=True),
        Series("p95, M/M/c theory", list(grid), p95, color="#8c564b", dash=True),
    ]


def _latency_refs(cap: Mapping[str, Any]) -> list[RefLine]:
    """The knee, and each latency limit of the SLO (in ms, as every threshold is read)."""
    refs = []
    knee = cap.get("knee") or {}
    if knee.get("throughput_rps"):
        refs.append(RefLine("x", _f(knee["throughput_rps"]), "knee", "#444"))
    for text in cap.get("slo") or []:
        try:
            threshold = parse_threshold(text, "slo", Target(text="total", kind="total"))
        except UsageError:
            continue
        if threshold.metric in ("p", "avg", "med"):
            refs.append(RefLine("y", threshold.value, f"SLO {text}", "#2ca02c"))
    return refs


def _latency_chart(cap: Mapping[str, Any]) -> list[str]:
    steps = cap.get("steps") or []
    x = [_f(s.get("throughput_rps")) for s in steps]
    mean = [_f(s.get("mean_ms")) for s in steps]
    p95 = [_f(s.get("p95_ms")) for s in steps]
    series = [
        Series("mean (measured)", x, mean, points=True, line=False),
        Series("p95 (measured)", x, p95, color="#ff7f0e", points=True, line=False),
    ]
    fit = cap.get("latency_fit")
    top_x = max([v for v in x if math.isfinite(v)] or [1.0])
    if fit:
        grid = np.linspace(0.0, min(top_x, _f(fit["saturation_rps"]) * 0.995), 160)
        series.append(
            Series("mean, fitted", list(grid), list(latency_curve(grid, fit)), color="#1f77b4")
        )
    series += _theory_series(cap.get("theory") or {})
    refs = _latency_refs(cap)
    finite = [v for v in [*mean, *p95] if math.isfinite(v)]
    y_max = min(max(finite or [1.0]), 4 * max(sorted(finite)[: max(1, len(finite) - 2)] or [1.0]))
    y_max = max([y_max, *(r.value * 1.1 for r in refs if r.axis == "y")])
    axes = Axes(x_label="throughput, req/s", y_label="latency, ms", x_min=0.0, y_max=y_max)
    return [
        "<h3>Latency against throughput</h3>",
        line_chart("latency-vs-throughput", series, axes, refs=refs),
    ]


def capacity_section(cap: Mapping[str, Any]) -> str:
    """HTML of a capacity run: headline, charts, fits and the steps."""
    parts = [
        "<h2>Capacity</h2>",
        f"<p class='meta'>{escape(str(cap.get('stop_reason', '')))}</p>",
        _headline(cap),
        _charts(cap),
        _fits(cap),
        "<h3>Steps</h3>",
        _steps(cap.get("steps") or [], cap.get("mode") == "users"),
    ]
    for flag in cap.get("flags") or []:
        parts.append(f'<div class="flag">flag: {escape(str(flag))}</div>')
    return "".join(parts)
