"""Where load may go: a well-formed URL, on loopback unless the campaign allows otherwise.

The guard runs before any process starts; the target never changes during a run.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from harness.errors import UsageError
from scenarios.hosts import is_loopback_url


def check_url(url: str, where: str) -> None:
    """Refuse what is not ``http(s)://HOST[:PORT][/PATH]`` with one line naming ``where``."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise UsageError(f"{where}: expected http(s)://HOST[:PORT], got {url!r}")


def is_loopback_target(host_url: str) -> bool:
    """True if every address the host resolves to is on loopback (127.0.0.0/8, ::1): the
    rule every load generator applies too (:func:`scenarios.hosts.is_loopback_url`)."""
    return bool(is_loopback_url(host_url))


def check_target(host: str, allow_remote: bool, where: str = "host") -> None:
    """Refuse a target outside loopback unless it is explicitly allowed; "" is the embedded
    mock, always on loopback."""
    if not host or is_loopback_target(host):
        return
    if not allow_remote:
        raise UsageError(
            f"{where}: {host} is not on loopback: refusing to send load there without "
            "--allow-remote (or allow_remote = true in [campaign])"
        )
