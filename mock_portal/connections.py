"""How many connections one mock process holds, and what it does at the limit.

Every connection is a file descriptor, and so are the store's database, WAL and shared-memory
files, the metrics files and the listening socket. A process that runs out of descriptors
can neither accept a client nor open its database (``unable to open database file``), so the
cap on connections stays :data:`FD_RESERVE` below the descriptor limit (raised at start to its
hard limit) whatever ``max_connections`` says.

At the cap, a new connection takes the place of the connection that has waited longest
without a request in progress (a slowloris client, or an idle keep-alive one, which a client
reopens at no cost); only when every connection is handling a request is the new one
refused with a 503 and closed. So a held connection can never lock a working client out.
"""

from __future__ import annotations

import resource

from .config import PortalConfig

# Descriptors kept for the process's own files: three store connections of three files each
# plus the writer thread's, the metrics files of multiprocess mode, the listening socket,
# stdio, uvloop's own, and room for a few more.
FD_RESERVE = 64

_REFUSED_BODY = (
    b'{"type":"https://portal.example/problems/too-many-connections",'
    b'"title":"Service Unavailable","status":503,'
    b'"detail":"every connection of this process is busy; retry later"}'
)
# Written on a connection before its request is read: there is no request to answer yet.
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/problem+json\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n%s"
) % (len(_REFUSED_BODY), _REFUSED_BODY)


def raise_descriptor_limit() -> int:
    """Raise this process's soft descriptor limit to the hard one; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(config: PortalConfig) -> int:
    """Connections one process may hold (see the module docstring); at least 1."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    by_descriptors = soft - FD_RESERVE if soft != resource.RLIM_INFINITY else 1_048_576 - FD_RESERVE
    cap = (
        by_descriptors
        if config.max_connections == 0
        else min(config.max_connections, by_descriptors)
    )
    return max(1, cap)
