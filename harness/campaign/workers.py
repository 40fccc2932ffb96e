"""Workers across hosts: where the master listens, and who may join it.

- ``[workers] master_bind = "HOST[:PORT]"`` (``--master-bind``): loopback by default. A bind
  outside loopback opens the master's port to other hosts, so it is refused unless remote
  workers are expected. Without a port the master takes a free one on loopback, and Locust's
  own 5557 elsewhere (the port a firewall rule and the workers' command name).
- ``[workers] remote = N`` (``--remote-workers``): worker processes that join from elsewhere
  (``portal-load worker --master HOST:PORT``); the run waits ``join_timeout`` for them.
- ``[workers] master_only = true`` (``--master-only``): no local workers at all, which
  ``count = 0`` (one per core) never means; it needs remote workers.

>>> parse_master_bind("198.18.0.2:6000", "--master-bind")
MasterBind(host='198.18.0.2', port=6000)
>>> parse_master_bind("", "--master-bind").loopback
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from harness.campaign.model import Campaign
from harness.errors import UsageError
from scenarios.hosts import is_loopback_url

LOOPBACK = "127.0.0.1"
DEFAULT_MASTER_PORT = 5557  # Locust's own
ALL_INTERFACES = ("*", "0.0.0.0", "::")


@dataclass(frozen=True)
class MasterBind:
    """The master's address: ``port`` None picks one (see the module docstring)."""

    host: str
    port: int | None = None

    @property
    def loopback(self) -> bool:
        if self.host in ALL_INTERFACES:
            return False
        return bool(is_loopback_url(f"http://{_bracketed(self.host)}/"))

    @property
    def wildcard(self) -> bool:
        return self.host in ALL_INTERFACES


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_master_bind(text: str, where: str) -> MasterBind:
    """``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or ``""`` (loopback, a free port)."""
    text = text.strip()
    if not text:
        return MasterBind(LOOPBACK)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"{where}: expected HOST[:PORT] or [IPv6]:PORT, got {text!r}")
        port_text = rest[1:] if rest else ""
        _ipv6(host, where)
    elif text.count(":") > 1:  # a bare IPv6 address
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise UsageError(f"{where}: expected HOST[:PORT], got {text!r}")
    if host not in ALL_INTERFACES and ":" in host:
        _ipv6(host, where)
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"{where}: expected a port 1-65535, got {port_text!r}")
        port = int(port_text)
    return MasterBind(host, port)


def _ipv6(host: str, where: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise UsageError(f"{where}: {host!r} is not an IPv6 address") from None


def master_bind(c: Campaign) -> MasterBind:
    return parse_master_bind(c.master_bind, "workers.master_bind")


def check_workers(c: Campaign, at: Callable[[str, str], str]) -> None:
    """The workers' keys taken together; ``at(section, key)`` names where a key was set."""
    bind = parse_master_bind(c.master_bind, at("workers", "master_bind"))
    if c.master_only and not c.remote_workers:
        raise UsageError(
            f"{at('workers', 'master_only')}: a master-only host sends no load itself; "
            "expect remote workers (remote = N, --remote-workers N)"
        )
    if not bind.loopback and not c.remote_workers:
        raise UsageError(
            f"{at('workers', 'master_bind')}: {c.master_bind} is outside loopback: the "
            "master's port is opened to other hosts only when remote workers are expected "
            "(remote = N, --remote-workers N)"
        )
    if c.remote_workers and c.embedded and not bind.loopback:
        raise UsageError(
            f"{at('workers', 'remote')}: workers on other hosts cannot reach the embedded "
            "mock on this host's loopback; name the target (--host), such as a mock served "
            "with `portal-load mock --host ADDRESS`"
        )
