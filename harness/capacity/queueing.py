"""M/M/c queueing formulas: the theory a measured capacity curve is checked against.

The mock's simulated backend (``mock_portal/faults.py``) is an exact FCFS queue with ``c``
servers; with Poisson arrivals (the capacity probe's) and exponential service times it is an
M/M/c queue, whose figures are known in closed form. With ``mu = 1 / S`` and offered load
``a = lambda / mu`` (erlangs), utilisation ``rho = a / c``:

- Erlang C, the probability that an arrival waits:
  ``C(c, a) = (a^c / c!) / (1 - rho) / (sum_{k<c} a^k / k! + (a^c / c!) / (1 - rho))``;
- mean response time ``E[T] = S + C(c, a) / (c mu - lambda)``;
- response-time tail: with probability ``1 - C`` a request only takes its service time
  ``Exp(mu)``; otherwise it also waits ``Exp(theta)``, ``theta = c mu - lambda``, so
  ``P(T > t) = (1 - C) e^{-mu t} + C (theta e^{-mu t} - mu e^{-theta t}) / (theta - mu)``
  (a hypoexponential; ``C (1 + mu t) e^{-mu t}`` in the limit ``theta = mu``).

    >>> round(erlang_c(1, 0.5), 6)   # M/M/1: the waiting probability is rho
    0.5
    >>> round(mean_response_s(servers=1, service_s=0.010, arrival_rps=50) * 1000, 3)
    20.0
"""

from __future__ import annotations

import math


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/c queue; 1.0 at or above saturation."""
    if servers < 1:
        raise ValueError("servers must be >= 1")
    a = offered_erlangs
    if a < 0:
        raise ValueError("offered load must be >= 0")
    if a >= servers:
        return 1.0
    # Erlang B by its stable recurrence, then C = B / (1 - rho (1 - B)).
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    rho = a / servers
    return b / (1.0 - rho * (1.0 - b))


def mean_response_s(*, servers: int, service_s: float, arrival_rps: float) -> float:
    """``E[T]``: mean time in system (wait + service), seconds; ``inf`` at saturation."""
    mu = 1.0 / service_s
    if arrival_rps >= servers * mu:
        return math.inf
    c = erlang_c(servers, arrival_rps / mu)
    return service_s + c / (servers * mu - arrival_rps)


def response_survival(t_s: float, *, servers: int, service_s: float, arrival_rps: float) -> float:
    """``P(T > t)`` of the M/M/c response time (see the module docstring)."""
    mu = 1.0 / service_s
    theta = servers * mu - arrival_rps
    if theta <= 0:
        return 1.0
    c = erlang_c(servers, arrival_rps / mu)
    no_wait = (1.0 - c) * math.exp(-mu * t_s)
    if abs(theta - mu) < 1e-9 * mu:
        waited = c * (1.0 + mu * t_s) * math.exp(-mu * t_s)
    else:
        waited = c * (theta * math.exp(-mu * t_s) - mu * math.exp(-theta * t_s)) / (theta - mu)
    return no_wait + waited


def response_quantile_s(q: float, *, servers: int, service_s: float, arrival_rps: float) -> float:
    """The ``q`` quantile of the M/M/c response time, seconds (bisection on the survival)."""
    if not 0 < q < 1:
        raise ValueError("q must be in (0, 1)")
    if arrival_rps >= servers / service_s:
        return math.inf
    lo, hi = 0.0, service_s
    while response_survival(hi, servers=servers, service_s=service_s, arrival_rps=arrival_rps) > (
        1 - q
    ):
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2
        s = response_survival(mid, servers=servers, service_s=service_s, arrival_rps=arrival_rps)
        if s > 1 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
