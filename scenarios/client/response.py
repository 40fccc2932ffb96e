"""What a request returns: a fully read response, also the ``catch_response=True`` context
manager that decides, inside its ``with`` block, whether the request counts as a success."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from locust.exception import CatchResponseError, LocustError, ResponseError

from scenarios.client.transport import ResponseHeaders

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HTTPStatusError", "PortalResponse"]


class HTTPStatusError(Exception):
    """The failure of a response whose status is 400 or above.

    Its message is only the status, so Locust groups failures per status and request name
    instead of per URL. (A request that got no response fails with its transport error.)
    """

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class PortalResponse:
    """A fully read response; also the ``catch_response=True`` context manager.

    ``content`` is the body as bytes, ``json()`` parses it with orjson, ``headers`` is a
    :class:`~scenarios.client.transport.ResponseHeaders` (case-insensitive ``get``, parsed
    from the response's head when first read; empty when the transport failed, in which case
    ``status_code`` is 0 and ``error`` holds the exception). ``meta`` holds the arguments of
    the request event the response reports.
    """

    __slots__ = (
        "_entered",
        "_head",
        "_headers",
        "_report",
        "_result",
        "content",
        "error",
        "meta",
        "queued_ms",
        "status_code",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        content: bytes,
        head: bytes,
        url: str,
        error: BaseException | None,
    ) -> None:
        self.status_code = status_code
        self.content = content
        self._head = head
        self._headers: ResponseHeaders | None = None
        self.url = url
        self.error = error
        self.meta: dict[str, Any] = {}
        self.queued_ms = 0.0
        """Milliseconds the request waited for a free connection of its pool."""
        self._report: Callable[[dict[str, Any], float], None] | None = None
        self._entered = False
        self._result: bool | BaseException | None = None

    # -- reading ---------------------------------------------------------------------------
    @property
    def headers(self) -> ResponseHeaders:
        headers = self._headers
        if headers is None:
            headers = self._headers = ResponseHeaders(self._head)
        return headers

    @property
    def ok(self) -> bool:
        return 0 < self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``orjson.JSONDecodeError``, a ``ValueError``)."""
        return orjson.loads(self.content)

    def header(self, name: str, default: str | None = None) -> str | None:
        """One header's value (repeated fields joined with ", "), or ``default``."""
        return self.headers.get(name, default) if self._head else default

    def raise_for_status(self) -> None:
        """Raise what made this response a failure: a transport error or a bad status."""
        if isinstance(self._result, BaseException):
            raise self._result
        if self._result is True:
            return
        if self.error is not None:
            raise self.error
        if self.status_code >= 400:
            raise HTTPStatusError(self.status_code)

    # -- catch_response ---------------------------------------------------------------------
    def defer_report(self, report: Callable[[dict[str, Any], float], None]) -> None:
        """Report through ``report(meta, queued_ms)`` when the ``with`` block ends, instead of
        now: what ``catch_response=True`` asks of the session."""
        self._report = report

    def __enter__(self) -> PortalResponse:
        if self._report is None:
            raise LocustError("use catch_response=True to use a response as a context manager")
        self._entered = True
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self._result is None and exc is not None:
            if not isinstance(exc, ResponseError):
                return False
            self._result = exc
        meta = self.meta
        if self._result is True:
            meta["exception"] = None
        elif self._result is not None:
            meta["exception"] = self._result
        assert self._report is not None
        self._report(meta, self.queued_ms)
        return exc is None or (isinstance(exc, ResponseError) and self._result is exc)

    def success(self) -> None:
        """Count this request as a success whatever its status."""
        self._check_entered()
        self._result = True

    def failure(self, reason: str | BaseException) -> None:
        """Count this request as a failure with ``reason`` (a string or an exception)."""
        self._check_entered()
        self._result = reason if isinstance(reason, BaseException) else CatchResponseError(reason)

    def _check_entered(self) -> None:
        if not self._entered:
            raise LocustError(
                "success()/failure() need catch_response=True and a with-block: "
                "with self.client.get(url, catch_response=True) as resp: resp.failure('why')"
            )

    def __repr__(self) -> str:
        return f"<PortalResponse {self.status_code} {self.url}>"
