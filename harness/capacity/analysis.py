"""The analysing half of ``portal-load capacity``: from measured steps to a capacity plan.

Pure functions of the steps :mod:`harness.capacity.search` measured (so a plan can be recomputed
from ``capacity.json`` alone):

- :func:`within` judges a step on the SLO (thresholds of :mod:`harness.gate.slo`);
- :func:`fit_latency` fits mean latency against throughput with
  ``R(X) = r0 + A rho^m / (1 - rho)``, ``rho = X / X_sat`` (the shape of an M/M/c queue's
  response time: flat, then a pole at saturation), by a grid over ``(X_sat, m)`` with linear
  least squares in ``(r0, A) >= 0``; goodness of fit as R² and RMSE;
- :func:`kneedle` finds the knee of a convex rising curve (Satopää et al., 2011): the point
  farthest below the chord once both axes are scaled to ``[0, 1]``; applied to the fitted
  latency curve over the measured range (or to the points when no fit is possible);
- :func:`project` sizes the fleet for a target peak: ``instances = ceil(peak / (C_slo (1 -
  headroom)))``, and the utilisation at the peak is ``peak / (instances C_max)``;
- :func:`theory` gives the M/M/c prediction of each step when the target is the embedded
  mock with a simulated pool for the probed route's service (servers / mean service time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.campaign.model import DEFAULT_HEADROOM
from harness.capacity import queueing
from harness.capacity.usl import fit_usl
from harness.gate.slo import Threshold
from harness.units import ms_to_s, s_to_ms
from mock_portal.config import ConfigError, load_config
from mock_portal.routes import service_of
from scenarios.workload import PORTAL_PEAK_RPS

SCHEMA = 1
# A step's figure for each metric an SLO may judge it on (the threshold language's names).
_STEP_KEY = {"avg": "mean_ms", "med": "p50_ms", "error_rate": "error_ratio"}


def step_value(threshold: Threshold, step: Mapping[str, Any]) -> float:
    """The figure of a measured step that ``threshold`` judges (ms, or a ratio)."""
    if threshold.metric == "p":
        assert threshold.percentile is not None
        key = f"p{threshold.percentile:g}_ms"
    else:
        key = _STEP_KEY[threshold.metric]
    return float(step.get(key, math.nan))


def within(slo: Sequence[Threshold], step: Mapping[str, Any]) -> bool:
    """Whether a step holds every threshold of the SLO (a figure it lacks does not hold)."""
    for threshold in slo:
        value = step_value(threshold, step)
        if not (math.isfinite(value) and threshold.holds(value)):
            return False
    return True


# -- latency against throughput ------------------------------------------------------------
def latency_curve(x: Any, fit: Mapping[str, float]) -> Any:
    rho = np.asarray(x, dtype=float) / fit["saturation_rps"]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = fit["r0_ms"] + fit["a_ms"] * rho ** fit["m"] / (1.0 - rho)
    return np.where(rho < 1.0, r, np.inf)


def fit_latency(throughput: Sequence[float], latency_ms: Sequence[float]) -> dict[str, Any] | None:
    """Fit ``R(X)`` (module docstring) to measured steps; None with fewer than 3 points."""
    x = np.asarray(throughput, dtype=float)
    y = np.asarray(latency_ms, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[keep], y[keep]
    if x.size < 3:
        return None
    sats = float(x.max()) * np.geomspace(1.002, 6.0, 160)
    ms = np.arange(0.0, 12.01, 0.25)
    rho = x[None, None, :] / sats[:, None, None]
    g = rho ** ms[None, :, None] / (1.0 - rho)  # (sat, m, point)
    r0, a, sse = _nonneg_line(g, y)
    i, j = np.unravel_index(int(np.argmin(sse)), sse.shape)
    r0, a, sse, sat, m = (
        float(r0[i, j]),
        float(a[i, j]),
        float(sse[i, j]),
        float(sats[i]),
        float(ms[j]),
    )
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "model": "R(X) = r0 + a * rho^m / (1 - rho), rho = X / saturation",
        "r0_ms": r0,
        "a_ms": a,
        "m": m,
        "saturation_rps": sat,
        "r2": 1.0 - sse / ss_tot if ss_tot > 0 else None,
        "rmse_ms": math.sqrt(sse / x.size),
        "points": int(x.size),
        # r0, a, m and the saturation are all fitted: with 4 points or fewer the curve passes
        # through them whatever they are, and R² says nothing about the model.
        "dof": int(x.size) - 4,
    }


def _nonneg_line(g: Any, y: Any) -> tuple[Any, Any, Any]:
    """Least squares of ``y = r0 + a g`` with ``r0, a >= 0``, for every row of ``g`` at once."""
    gm, ym = g.mean(axis=-1), y.mean()
    var = ((g - gm[..., None]) ** 2).sum(axis=-1)
    cov = ((g - gm[..., None]) * (y - ym)).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(var > 0, cov / var, 0.0)
        r0 = ym - a * gm
        # A bound active: the better one-parameter fit (a alone through 0, or r0 alone).
        a_only = np.where((g * g).sum(axis=-1) > 0, (g * y).sum(axis=-1) / (g * g).sum(axis=-1), 0)
    a_only = np.maximum(a_only, 0.0)
    sse_full = ((y - r0[..., None] - a[..., None] * g) ** 2).sum(axis=-1)
    sse_a = ((y - a_only[..., None] * g) ** 2).sum(axis=-1)
    sse_r0 = np.full(a.shape, float(((y - ym) ** 2).sum()))
    ok = (a >= 0) & (r0 >= 0)
    use_a = ~ok & (sse_a <= sse_r0)
    r0 = np.where(ok, r0, np.where(use_a, 0.0, ym))
    a = np.where(ok, a, np.where(use_a, a_only, 0.0))
    sse = np.where(ok, sse_full, np.where(use_a, sse_a, sse_r0))
    return r0, a, sse


def kneedle(x: Any, y: Any) -> int | None:
    """Index of the knee of a rising convex curve (farthest below the scaled chord)."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.size < 3 or np.ptp(xs) <= 0 or np.ptp(ys) <= 0:
        return None
    xn = (xs - xs.min()) / np.ptp(xs)
    yn = (ys - ys.min()) / np.ptp(ys)
    diff = xn - yn
    i = int(np.argmax(diff))
    return i if diff[i] > 0 else None


def measurable(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Steps whose latency describes an equilibrium: steady ones, and unsteady ones that still
    served what was offered (a queue near saturation swings too much to pass the steadiness
    test in a short hold, yet its mean is real); never an overloaded one, whose queue grows."""
    out = []
    for s in steps:
        if not (math.isfinite(float(s.get("mean_ms", math.nan))) and s.get("throughput_rps")):
            continue
        offered = s.get("offered_rps")
        served_all = offered is None or float(s["throughput_rps"]) >= 0.9 * float(offered)
        if s.get("steady") or (s.get("state") == "unsteady" and served_all):
            out.append(s)
    return out


def find_knee(steps: Sequence[Mapping[str, Any]], fit: Mapping[str, Any] | None) -> dict[str, Any]:
    steady = measurable(steps)
    if fit is not None and steady:
        top = max(float(s["throughput_rps"]) for s in steady)
        grid = np.linspace(0.0, top, 400)
        curve = latency_curve(grid, fit)
        i = kneedle(grid, curve)
        if i is not None:
            return {
                "throughput_rps": float(grid[i]),
                "latency_ms": float(curve[i]),
                "method": "kneedle on the fitted latency curve",
            }
    pts = sorted(steady, key=lambda s: float(s["throughput_rps"]))
    i = kneedle([float(s["throughput_rps"]) for s in pts], [float(s["mean_ms"]) for s in pts])
    if i is None:
        return {"throughput_rps": None, "latency_ms": None, "method": "none (too few points)"}
    return {
        "throughput_rps": float(pts[i]["throughput_rps"]),
        "latency_ms": float(pts[i]["mean_ms"]),
        "method": "kneedle on the measured steps",
    }


# -- theory of the embedded mock -------------------------------------------------------------
def mock_pool(mock_config: str, probe_path: str, processes: int) -> dict[str, Any] | None:
    """The simulated pool serving ``probe_path`` in a mock config file, or None.

    The file is read by the mock's own parser (:func:`mock_portal.config.load_config`), and
    the route's service found in the mock's own table, so theory and mock cannot disagree on
    a key. Each of the ``processes`` mock processes has its own pool, so together they hold
    that many times one's capacity (evenly balanced); the M/M/c predictions are made for one
    process only. A file the mock itself would refuse gives None (the run never started).
    """
    if not mock_config:
        return None
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    try:
        capacity = load_config(mock_config).faults.capacity
    except ConfigError:
        return None
    service = service_of(probe_path)
    spec = capacity.get(service) if service is not None else None
    if spec is None:
        return None
    return {
        "service": service,
        "servers": spec.servers,
        "service_time_kind": spec.service_time.kind,
        "service_time_ms": s_to_ms(spec.service_time.mean_s),
        "processes": processes,
        "capacity_rps": processes * spec.capacity_rps,
    }


def theory(pool: Mapping[str, Any] | None, steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """M/M/c predictions at each step's measured throughput (exponential service only)."""
    if pool is None:
        return {}
    out: dict[str, Any] = dict(pool)
    if pool["service_time_kind"] != "exponential" or pool.get("processes", 1) != 1:
        return out
    servers, service_s = int(pool["servers"]), ms_to_s(float(pool["service_time_ms"]))
    preds = []
    for s in steps:
        lam = float(s["throughput_rps"])
        mean = queueing.mean_response_s(servers=servers, service_s=service_s, arrival_rps=lam)
        p95 = queueing.response_quantile_s(
            0.95, servers=servers, service_s=service_s, arrival_rps=lam
        )
        preds.append(
            {
                "throughput_rps": lam,
                "utilisation": lam * service_s / servers,
                "erlang_c": queueing.erlang_c(servers, lam * service_s),
                "mean_ms": s_to_ms(mean) if math.isfinite(mean) else None,
                "p95_ms": s_to_ms(p95) if math.isfinite(p95) else None,
            }
        )
    out["predictions"] = preds
    return out


# -- sizing ------------------------------------------------------------------------------------
def project(
    *,
    slo_rps: float | None,
    max_rps: float,
    peak_rps: float,
    headroom: float,
    cores_per_instance: float,
    fit: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Instances (and cores) for ``peak_rps`` with ``headroom``; see the module docstring."""
    out: dict[str, Any] = {
        "target_rps": peak_rps,
        "headroom": headroom,
        "cores_per_instance": cores_per_instance,
        "assumption": "instances scale out linearly (shared-nothing, evenly balanced)",
    }
    if not slo_rps or slo_rps <= 0:
        out.update(instances=None, note="no step met the SLO: nothing to size with")
        return out
    usable = slo_rps * (1.0 - headroom)
    instances = max(1, math.ceil(peak_rps / usable - 1e-9))
    per_instance = peak_rps / instances
    predicted = None
    if fit is not None:
        value = float(latency_curve([per_instance], fit)[0])
        predicted = value if math.isfinite(value) else None
    out.update(
        usable_rps_per_instance=usable,
        instances=instances,
        cores=instances * cores_per_instance,
        per_instance_rps_at_peak=per_instance,
        utilisation_at_peak=per_instance / max_rps if max_rps > 0 else None,
        share_of_slo_capacity_at_peak=per_instance / slo_rps,
        predicted_mean_ms_at_peak=predicted,
    )
    return out


def analyse(
    steps: Sequence[Mapping[str, Any]],
    *,
    slo: Sequence[Threshold],
    peak_rps: float = PORTAL_PEAK_RPS,
    headroom: float = DEFAULT_HEADROOM,
    cores_per_instance: float = 1.0,
    pool: Mapping[str, Any] | None = None,
    mode: str = "rate",
) -> dict[str, Any]:
    """Everything ``capacity.json`` says beyond the steps themselves.

    The USL's concurrency is the users of a step in ``users`` mode, otherwise Little's
    ``N = X R``.
    """
    if not steps:
        raise ValueError("no steps were measured")
    max_step = max(steps, key=lambda s: float(s["throughput_rps"]))
    max_rps = float(max_step["throughput_rps"])
    ok = [s for s in steps if s.get("within_slo")]
    slo_rps = max((float(s["throughput_rps"]) for s in ok), default=None)
    steady = measurable(steps)
    fit = fit_latency(
        [float(s["throughput_rps"]) for s in steady], [float(s["mean_ms"]) for s in steady]
    )
    usl: dict[str, Any] | None = None
    usl_error = None
    if mode == "users":
        conc = [float(s["users"]) for s in steady]
    else:
        conc = [float(s["throughput_rps"]) * ms_to_s(float(s["mean_ms"])) for s in steady]
    try:
        usl = fit_usl(
            np.asarray(conc), np.asarray([float(s["throughput_rps"]) for s in steady])
        ).to_json()
    except ValueError as exc:
        usl_error = str(exc)
    return {
        "max_rps": max_rps,
        "mode": mode,
        "max_rps_at": max_step.get("users") if mode == "users" else max_step.get("offered_rps"),
        "slo_rps": slo_rps,
        "slo": [t.text for t in slo],
        "knee": find_knee(steps, fit),
        "latency_fit": fit,
        "usl": usl,
        "usl_error": usl_error,
        "projection": project(
            slo_rps=slo_rps,
            max_rps=max_rps,
            peak_rps=peak_rps,
            headroom=headroom,
            cores_per_instance=cores_per_instance,
            fit=fit,
        ),
        "theory": theory(pool, steps),
    }
