"""``PortalUser``: a Locust user whose ``self.client`` is a :class:`PortalSession`."""

from __future__ import annotations

from typing import Any

from locust import User
from locust.exception import StopTest

from scenarios.client.session import RESULTS_ONLY_EVENT, PortalSession

__all__ = ["PortalUser"]


class PortalUser(User):
    """A Locust user whose ``self.client`` is a :class:`PortalSession`; used like FastHttpUser.

    Tune the class attributes in a subclass; they are read when the user starts.
    """

    abstract = True

    network_timeout: float = 60.0
    """Seconds the server may take over one exchange (the request sent, its response read)
    before the request fails (status 0, ``NetworkTimeout``); over TLS, seconds per read."""

    connection_timeout: float = 60.0
    """Seconds a TCP (and TLS) connect may take."""

    concurrency: int = 1
    """Connections per host; a user runs one greenlet, so one keep-alive connection is enough."""

    default_headers: dict[str, str] | None = None
    """Headers added to every request."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.host is None:
            raise StopTest(
                "no host: set the host attribute of the User class or pass --host on the "
                "command line"
            )
        self.client = PortalSession(
            self.host,
            environment.events.request,
            self,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            concurrency=self.concurrency,
            default_headers=self.default_headers,
            results_event=getattr(environment.events, RESULTS_ONLY_EVENT, None),
        )

    def on_stop(self) -> None:
        self.client.close()
