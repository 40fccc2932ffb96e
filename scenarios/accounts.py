"""Test accounts from a file: a deployment's own logins, passwords and TOTP secrets.

``--accounts FILE`` names a CSV file (UTF-8, a header row, then one account per row)::

    login,password,totp_secret
    tester-001,correct horse 1,JBSWY3DPEHPK3PXP
    tester-002,correct horse 2,
    tester-003,correct horse 3,otpauth://totp/portal:t3?secret=KRSXG5CTMVRXEZLU&digits=8

``login`` and ``password`` are required; ``totp_secret`` is optional, per row: a base32 secret
of at least 80 bits (RFC 4648; six digits, 30 s, SHA-1, as authenticator apps default to) or
an ``otpauth://totp`` URI that says otherwise (``digits``, ``period``, ``algorithm``). An
account with a secret answers a second factor with its TOTP code (RFC 6238, computed when
asked); one without answers with the fixed code (``--mfa-code``).
A malformed file is refused whole, with the file, the line and the column of the first
mistake (:class:`AccountsFileError`).

Accounts are partitioned between workers (row ``i`` goes to worker ``i % partitions``) and
leased within a worker (:class:`AccountPool`), so no two users ever share an account's
session. Pure Python: no Locust, no gevent.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp

__all__ = ["COLUMNS", "Account", "AccountPool", "AccountsFileError", "read_accounts", "totp_for"]

COLUMNS = ("login", "password", "totp_secret")
REQUIRED = ("login", "password")
_EMAIL_DOMAIN = "mail.example"  # for a login that is not an address (RFC 2606 domain)


class AccountsFileError(ValueError):
    """A malformed accounts file: ``path``, ``line`` (1-based) and ``column`` (1-based, 0 when
    the whole line is wrong)."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        where = f"{path}, line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.column = column


class _TOTP(pyotp.TOTP):
    # Authenticator apps' most common secret is 16 base32 characters (80 bits); a load
    # generator must answer with whatever the deployment issued, so it accepts those too.
    min_secret_length_bits = 80


_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def totp_for(secret: str) -> pyotp.TOTP:
    """The TOTP generator of a base32 secret or an ``otpauth://totp`` URI (its ``secret``,
    ``digits``, ``period`` and ``algorithm``); ``ValueError`` if it is neither."""
    digits, period, digest = 6, 30, hashlib.sha1
    if secret.startswith("otpauth://"):
        uri = urlsplit(secret)
        if uri.netloc != "totp":
            raise ValueError("the URI is not otpauth://totp")
        query = {k: v[-1] for k, v in parse_qs(uri.query).items()}
        secret = query.get("secret", "")
        digits = int(query.get("digits", digits))
        period = int(query.get("period", period))
        algorithm = query.get("algorithm", "SHA1").upper()
        if algorithm not in _DIGESTS:
            raise ValueError(f"unknown algorithm {algorithm!r} (SHA1, SHA256, SHA512)")
        digest = _DIGESTS[algorithm]
    if not secret:
        raise ValueError("no secret")
    return _TOTP(secret.replace(" ", "").upper(), digits=digits, interval=period, digest=digest)


@dataclass(frozen=True, slots=True)
class Account:
    """One test account of the file; ``line`` is where it was read."""

    login: str
    password: str
    totp_secret: str | None = None
    line: int = 0
    _totp: pyotp.TOTP | None = field(default=None, repr=False, compare=False)

    @property
    def has_mfa(self) -> bool | None:
        """True with a TOTP secret; None (the portal decides) without one."""
        return True if self.totp_secret else None

    @property
    def email(self) -> str:
        return self.login if "@" in self.login else f"{self.login}@{_EMAIL_DOMAIN}"

    def second_factor(self, fixed_code: str, now_s: float | None = None) -> str:
        """The TOTP code at ``now_s`` (Unix seconds, default now), or ``fixed_code`` for an
        account without a secret."""
        if self._totp is None:
            return fixed_code
        return self._totp.at(int(time.time() if now_s is None else now_s))


def read_accounts(path: str | Path) -> tuple[Account, ...]:
    """Every account of the file, in order; :class:`AccountsFileError` at the first mistake."""
    name = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return _parse(name, csv.reader(f))
    except OSError as error:
        raise AccountsFileError(name, 0, 0, f"cannot read: {error.strerror or error}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise AccountsFileError(name, 0, 0, f"not a UTF-8 CSV file: {error}") from None


def _parse(path: str, rows: Any) -> tuple[Account, ...]:
    """``rows``: a ``csv.reader`` (its ``line_num`` is the physical line of the last row)."""
    header: list[str] | None = None
    accounts: list[Account] = []
    first_line: dict[str, int] = {}
    for row in rows:
        line = rows.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines
        if header is None:
            header = _header(path, line, row)
            continue
        if len(row) != len(header):
            raise AccountsFileError(
                path, line, 0, f"{len(row)} fields, the header has {len(header)}"
            )
        cells = {column: cell.strip() for column, cell in zip(header, row, strict=True)}
        for column in REQUIRED:
            if not cells[column]:
                raise AccountsFileError(path, line, header.index(column) + 1, f"{column} is empty")
        login = cells["login"]
        if login in first_line:
            raise AccountsFileError(
                path, line, header.index("login") + 1,
                f"login {login!r} is already on line {first_line[login]}",
            )  # fmt: skip
        first_line[login] = line
        secret = cells.get("totp_secret") or None
        totp = None
        if secret is not None:
            try:
                totp = totp_for(secret)
            except ValueError as error:
                column = header.index("totp_secret") + 1
                what = f"totp_secret is not a base32 secret or a TOTP URI ({error})"
                raise AccountsFileError(path, line, column, what) from None
        accounts.append(Account(login, cells["password"], secret, line, totp))
    if header is None:
        raise AccountsFileError(path, 1, 0, f"empty: expected the header {','.join(COLUMNS)}")
    if not accounts:
        raise AccountsFileError(path, rows.line_num + 1, 0, "no account after the header")
    return tuple(accounts)


def _header(path: str, line: int, row: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in row]
    for i, column in enumerate(header, start=1):
        if column not in COLUMNS:
            raise AccountsFileError(
                path, line, i, f"unknown column {row[i - 1]!r} (columns: {', '.join(COLUMNS)})"
            )
        if header.index(column) != i - 1:
            raise AccountsFileError(path, line, i, f"column {column!r} appears twice")
    for column in REQUIRED:
        if column not in header:
            raise AccountsFileError(path, line, 0, f"the header lacks the column {column!r}")
    return header


class AccountPool:
    """Leases this worker's share of the accounts, one user at a time, oldest released first.

    >>> accounts = tuple(Account(f"t{i}", "pw") for i in range(5))
    >>> pool = AccountPool(accounts, worker_index=1, partitions=2, source="a.csv")
    >>> a, b = pool.acquire(), pool.acquire()
    >>> (a.login, b.login, pool.acquire())
    ('t1', 't3', None)
    """

    def __init__(
        self, accounts: tuple[Account, ...], *, worker_index: int, partitions: int, source: str
    ) -> None:
        if partitions < 1 or not 0 <= worker_index < partitions:
            raise ValueError(
                f"{source}: worker index {worker_index} is outside the {partitions} account "
                "partition(s); give --account-partitions the number of workers"
            )
        mine = accounts[worker_index::partitions]
        if not mine:
            raise ValueError(
                f"{source}: {len(accounts)} account(s) for {partitions} workers leave none "
                f"for worker {worker_index}"
            )
        self.source = source
        self.capacity = len(mine)
        self._free: deque[Account] = deque(mine)
        self._leased: set[str] = set()

    def acquire(self) -> Account | None:
        """An account no user holds, or None when every one is held."""
        if not self._free:
            return None
        account = self._free.popleft()
        self._leased.add(account.login)
        return account

    def release(self, account: Account) -> None:
        """Give ``account`` back (a second release of it changes nothing)."""
        if account.login in self._leased:
            self._leased.discard(account.login)
            self._free.append(account)

    @property
    def leased(self) -> int:
        return len(self._leased)
