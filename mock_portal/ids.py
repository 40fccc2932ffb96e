"""Random ids (payment, application, token and session ids) from a batched pool.

``secrets.token_hex`` asks the kernel for randomness (a ``getrandom`` system call) for every
id; the mock makes several per login. Here the same kernel CSPRNG fills a pool of
:data:`POOL_BYTES` at once and each id takes the next unused bytes of it, so ids are exactly
as unpredictable and as unique as ``secrets``' (no byte is ever handed out twice), at one
system call per few hundred ids. A forked child starts with an empty pool of its own.

Used from the event loop's thread only (the pool is not locked).

>>> len(token_hex(10)), len(token_urlsafe(12))
(20, 16)
"""

from __future__ import annotations

import base64
import os

POOL_BYTES = 4096


class _Pool:
    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0


_pool = _Pool()


def _empty() -> None:
    _pool.data, _pool.pos = b"", 0


os.register_at_fork(after_in_child=_empty)


def token_bytes(n: int) -> bytes:
    """``n`` random bytes never handed out before, from the kernel's CSPRNG."""
    pos = _pool.pos
    end = pos + n
    if end > len(_pool.data):
        _pool.data = os.urandom(max(POOL_BYTES, n))
        pos, end = 0, n
    _pool.pos = end
    return _pool.data[pos:end]


def token_hex(n: int) -> str:
    """As ``secrets.token_hex(n)``: ``2 * n`` hex digits."""
    return token_bytes(n).hex()


def token_urlsafe(n: int) -> str:
    """As ``secrets.token_urlsafe(n)``: ``n`` bytes in unpadded base64url."""
    return base64.urlsafe_b64encode(token_bytes(n)).rstrip(b"=").decode("ascii")
