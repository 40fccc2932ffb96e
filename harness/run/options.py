"""The Locust command lines of a run: the master's options (its cluster, the load model, the
shape or the arrival profile) and the options of the portal's journeys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.campaign import Campaign
from harness.run.cluster import master_cluster_options
from harness.system import LOOPBACK, free_port

# `--web`: the web UI stays up this long after the run (Locust's --autoquit), to read its
# final figures; well inside the watchdog's margin past the run time.
WEB_LINGER_S = 15


def master_options(
    c: Campaign,
    host: str,
    run_dir: Path,
    master_port: int,
    metrics_port: int,
    bind_host: str = LOOPBACK,
    web_port: int | None = None,
) -> list[str]:
    opts = [
        "--master",
        *master_cluster_options(c, bind_host, master_port),
        "--host",
        host,
        "--run-time",
        f"{max(1, round(c.duration_s))}s",
        # No --stop-timeout: users (and the open model's executors, whose one task is the
        # whole schedule) stop when the run ends; what they sent after it would reach the mock
        # but not the results. At most the requests in flight at that instant differ.
        "--results-dir",
        str(run_dir),
        "--metrics-port",
        str(metrics_port),
        "--csv",
        str(run_dir / "locust"),
        "--loglevel",
        "WARNING",
    ]
    if not c.locustfile:  # options of the portal's journeys, unknown to another locustfile
        opts += journey_options(c)
    if c.web:
        opts += ["--autostart", "--autoquit", str(WEB_LINGER_S), "--web-host", "127.0.0.1",
                 "--web-port", str(web_port or free_port())]  # fmt: skip
    else:
        # The harness shows its own progress: Locust's console table every 2 s (percentiles
        # of every name, into the master's log) is work nobody reads.
        opts += ["--headless", "--only-summary"]
    if c.open_model:
        opts += [
            "--arrival-rate",
            f"{c.arrival_rate:g}",
            "--arrival-duration",
            f"{c.duration_s:g}",
            "--open-executors",
            str(c.worker_count()),
            *(["--arrival-poisson"] if c.arrival_poisson else []),
            *(["--arrival-shape", c.arrival_shape] if c.arrival_shape else []),
            *_params("--arrival-", c.arrival_params),
            *(["--open-pool-size", str(c.open_pool_size)] if c.open_pool_size else []),
            *(["--open-connections", str(c.open_connections)] if c.open_connections else []),
            "-u",
            str(c.worker_count()),
            "-r",
            str(c.worker_count()),
        ]
        # The open model installs its executor itself when an arrival option is given; named
        # on the command line, its zero weight would make Locust drop it.
        classes: tuple[str, ...] = ()
    else:
        opts += ["-u", str(c.users), "-r", f"{c.spawn_rate:g}"]
        if c.shape:
            # The shape ends the run at its duration (Locust ignores --run-time under one);
            # its peak is -u.
            opts += ["--shape", c.shape, "--shape-duration", f"{c.duration_s:g}"]
            opts += _params("--shape-", c.shape_params)
        # A locustfile of the user's runs all its classes unless some are named.
        classes = c.user_classes or (() if c.locustfile else ("CitizenUser", "AnonymousVisitor"))
    return [*opts, *classes]


def journey_options(c: Campaign) -> list[str]:
    """The options of the portal's journeys: pace, citizens, seed, second factor, accounts."""
    opts = [
        "--think-scale",
        f"{c.think_scale:g}",
        "--citizen-stride",
        str(max(64, c.worker_count())),
    ]
    opts += ["--seed", str(c.seed)]
    if c.mfa_code:
        opts += ["--mfa-code", c.mfa_code]
    if c.accounts:
        opts += ["--accounts", c.accounts]
    return opts


def _params(prefix: str, params: Mapping[str, float]) -> list[str]:
    return [
        arg
        for key, value in sorted(params.items())
        for arg in (f"{prefix}{key.replace('_', '-')}", f"{value:g}")
    ]


def worker_options(master_host: str, master_port: int) -> list[str]:
    """A local worker's options: the master to join."""
    if master_host in ("*", "0.0.0.0", "::"):  # a master bound everywhere is on loopback too
        master_host = LOOPBACK
    return [
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
        "--loglevel",
        "WARNING",
    ]
