"""A run across hosts, the harness's side: the master's address and options, the join command
it prints, the wait for remote workers, and every worker's facts in ``provenance.json``.

The Locust side (``scenarios.distributed``) checks each worker's identity and target and
keeps ``workers.json`` in the run's folder; the harness only reads that file:

- while the test has not started, each remote worker that joins is printed; once
  ``join_timeout`` is past, the run ends with one line saying how many are missing, which
  joined and which were refused (:class:`harness.errors.WorkersMissing`, exit code 2);
- a master that quit because a worker refused its campaign ends the run the same way;
- at the end, the facts of every worker (host, cores, Python, packages, revision, whether it
  ran here) are added to ``provenance.json``, and a lost worker's host is named in the
  summary's ``degraded`` entries.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import IO, Any

from harness.campaign import Campaign
from harness.campaign.workers import DEFAULT_MASTER_PORT, LOOPBACK, master_bind
from harness.results.folder import PROVENANCE, write_json
from harness.system import free_port
from scenarios.hosts import WORKERS_JSON

# Locust's own wait for workers outlasts the harness's, so that the harness's line (which
# names who is missing) ends a run that waited too long, not Locust's.
LOCUST_WAIT_GRACE_S = 30.0
# A run with local workers only waits for them as long as it always did.
LOCAL_WAIT_S = 30.0
MASTER_EXIT_REFUSED = 2  # scenarios.distributed.EXIT_REFUSED: a worker refused the campaign


def listen_address(c: Campaign) -> tuple[str, int]:
    """Where the master binds: the campaign's ``master_bind``, its port or one picked."""
    bind = master_bind(c)
    if bind.port is not None:
        return bind.host, bind.port
    if bind.loopback:
        return bind.host, free_port(bind.host)
    return bind.host, DEFAULT_MASTER_PORT


def master_cluster_options(c: Campaign, bind_host: str, port: int) -> list[str]:
    """The master's options about its workers: address, how many, how long, and the
    permission to send load off loopback that the workers check."""
    wait_s = c.join_timeout_s + LOCUST_WAIT_GRACE_S if c.remote_workers else LOCAL_WAIT_S
    options = [
        "--master-bind-host",
        bind_host,
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(c.worker_count()),
        "--expect-workers-max-wait",
        f"{wait_s:g}",
    ]
    return [*options, "--allow-remote"] if c.allow_remote else options


def join_address(bind_host: str, port: int) -> str:
    """``HOST:PORT`` for the workers' command: a wildcard bind is reached by the host's name."""
    host = socket.gethostname() if bind_host in ("*", "0.0.0.0", "::") else bind_host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def announce(c: Campaign, bind_host: str, port: int, target: str, out: IO[str]) -> None:
    """Say, before anything starts, where the master listens and what goes where."""
    if not c.remote_workers:
        return
    local = c.local_worker_count()
    lines = [
        f"portal-load: the master listens on {bind_host}:{port} for {c.remote_workers} "
        f"remote worker process(es) (and {local} local); they have {c.join_timeout_s:g} s "
        "to join",
        f"portal-load: on each worker host run: portal-load worker --master "
        f"{join_address(bind_host, port)} [--processes N]  (N processes count as N workers)",
        "portal-load: the master sends the workers the campaign (target, users, journeys) "
        f"over ZeroMQ, unencrypted; they send HTTP load to {target} and their statistics "
        "back to the master",
    ]
    for line in lines:
        print(line, file=out, flush=True)


def read_workers(run_dir: Path) -> dict[str, Any]:
    """``workers.json`` as the master last wrote it; empty before it has."""
    try:
        document: dict[str, Any] = json.loads((run_dir / WORKERS_JSON).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return document


def _where(worker: dict[str, Any]) -> str:
    facts = worker.get("facts") or {}
    host = facts.get("host") or worker.get("id", "?")
    return f"{host} ({facts['address']})" if facts.get("address") else str(host)


class JoinWatch:
    """Follows the workers of one run through ``workers.json`` (see the module docstring)."""

    def __init__(
        self, campaign: Campaign, run_dir: Path, local_pids: set[int], out: IO[str]
    ) -> None:
        self.campaign = campaign
        self.run_dir = run_dir
        self.local_pids = local_pids
        self.out = out
        self.started = False
        self.missing: str | None = None
        self._announced: set[str] = set()

    def _is_local(self, worker: dict[str, Any]) -> bool:
        facts = worker.get("facts") or {}
        return facts.get("pid") in self.local_pids and facts.get("host") == socket.gethostname()

    def poll(self, waited_s: float) -> str | None:
        """Returns the line that ends the wait once ``join_timeout`` is past, else None."""
        if self.started or self.missing:
            return None
        document = read_workers(self.run_dir)
        remote = [w for w in document.get("workers", []) if not self._is_local(w)]
        joined = [w for w in remote if w.get("state") == "joined"]
        for worker in joined:
            if worker["id"] not in self._announced:
                self._announced.add(worker["id"])
                print(f"portal-load: worker joined from {_where(worker)} "
                      f"({len(self._announced)} of {self.campaign.remote_workers} remote)",
                      file=self.out, flush=True)  # fmt: skip
        if document.get("started_unix_s") is not None:
            self.started = True
            return None
        if self.campaign.remote_workers and waited_s > self.campaign.join_timeout_s:
            self.missing = self.missing_line(document)
        return self.missing

    def missing_line(self, document: dict[str, Any]) -> str:
        workers = document.get("workers", [])
        joined = [w for w in workers if w.get("state") == "joined"]
        refused = [w for w in workers if w.get("state") == "refused"]
        remote_joined = [w for w in joined if not self._is_local(w)]
        local_joined = len(joined) - len(remote_joined)
        missing = self.campaign.remote_workers - len(remote_joined)
        parts = [
            f"{max(missing, 0)} of {self.campaign.remote_workers} remote workers did not "
            f"join within {self.campaign.join_timeout_s:g} s",
            "joined: " + (", ".join(_where(w) for w in remote_joined) or "none"),
        ]
        if local_joined < self.campaign.local_worker_count():
            parts.append(f"local: {local_joined} of {self.campaign.local_worker_count()}")
        if refused:
            parts.append(
                "refused: " + "; ".join(f"{_where(w)}: {w.get('reason')}" for w in refused)
            )
        return "; ".join(parts)

    def refused_exit(self, code: int | None, *, stopped: bool = False) -> bool:
        """Whether the master quit because a worker was refused or refused the campaign (its
        line set): it says so by its exit code, or, when the harness did not stop it
        (``stopped``), it ended before the load started with a refused worker on record (a
        headless Locust master quits by itself once the last worker has left, and a refused
        worker leaves at once)."""
        document = read_workers(self.run_dir)
        refused = [w for w in document.get("workers", []) if w.get("state") == "refused"]
        if not refused:
            return False
        before_start = document.get("started_unix_s") is None
        if code != MASTER_EXIT_REFUSED and (stopped or not before_start):
            return False
        if document.get("started_unix_s") is None and self.campaign.remote_workers:
            self.missing = self.missing_line(document)
        else:
            self.missing = "refused: " + "; ".join(
                f"worker on {_where(w)}: {w.get('reason')}" for w in refused
            )
        return True

    def finish(self, summary: dict[str, Any] | None = None) -> None:
        """Every worker's facts into ``provenance.json``; lost workers' hosts into ``summary``."""
        document = read_workers(self.run_dir)
        workers = document.get("workers", [])
        if not workers:
            return
        path = self.run_dir / PROVENANCE
        try:
            provenance = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            provenance = {}
        provenance["workers"] = [
            {
                "id": w.get("id"),
                "index": w.get("index"),
                "state": w.get("state"),
                "local": self._is_local(w),
                "identity": w.get("identity"),
                **({"reason": w["reason"]} if w.get("reason") else {}),
                **(w.get("facts") or {}),
            }
            for w in workers
        ]
        provenance["master_identity"] = document.get("master")
        write_json(path, provenance)
        if summary is not None:
            by_id = {w.get("id"): w for w in workers}
            for event in summary.get("degraded") or []:
                worker = by_id.get(event.get("worker"))
                if worker is not None:
                    event["host"] = _where(worker)


__all__ = [
    "LOOPBACK",
    "JoinWatch",
    "announce",
    "join_address",
    "listen_address",
    "master_cluster_options",
    "read_workers",
]
