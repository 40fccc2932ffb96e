"""Shared state of the mock: one SQLite database in WAL mode under the data directory.

Every worker process opens the same file, so any worker answers any request and a restart keeps
what was written: the payments ledger and idempotency keys (money), applications and ratings,
revoked tokens, used authorization codes and failed logins. Every write is one
``BEGIN IMMEDIATE`` transaction, so transactions of different workers are serialized by
SQLite's write lock. Reads run on the loop thread; in WAL mode they never wait for a writer.

A request's write runs on the loop thread, on a connection that never waits: an uncontended
WAL commit takes tens of microseconds, less than handing the work to a thread. The writes of
one turn of the event loop are committed together, once the handlers already runnable have
run: one ``BEGIN IMMEDIATE``, each write inside its own ``SAVEPOINT`` (so one that fails is
rolled back alone and its neighbours commit), one ``COMMIT``. When another worker holds the
write lock (``database is locked`` at once, as the connection's busy timeout is 0), or writes
are already queued there, the writes go to this process's writer thread instead, which waits
for the lock and so never blocks the event loop; there too, writes that queue while the thread
is busy are group-committed the same way. A write's future resolves only after the ``COMMIT``
that holds it, so what a response says is on disk. Checkpoints of the WAL run on the writer
thread too, never on the loop.

Rows that requests read again and again (a payment, an application, a citizen's payments, a
login's failed attempts) are kept in per-process caches (:meth:`Store.cached`) that stay
right across workers: before a cache is used, ``PRAGMA data_version`` of the loop's
connection says whether any other connection (another worker, this process's writer thread)
has committed since the last look, and if one has, every cache is emptied. This process's own
writes on the loop's connection do not change that number, so the code that makes them drops
the entries they change (:meth:`Store.forget`) once they are committed. Nothing that decides
a write (a payment's idempotency, whether a charge is paid) is read from a cache: those
checks run in the write's transaction.

Stores are bounded: :meth:`Store.maintain` evicts rows by age and by size and counts evictions.
The payments ledger is never evicted (money is never lost); it lives on disk, not in memory.

A store that cannot write (disk full, read-only, I/O error) raises :class:`StoreUnwritable`
from :meth:`Store.write`: the transaction was rolled back whole, so the request can be retried
(the mock answers 503 with ``Retry-After``). :meth:`Store.writable` says whether a small write
succeeds now (``/readyz``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .config import PortalConfig
from .metrics import PortalMetrics

T = TypeVar("T")

# Primary SQLite result codes of a store that cannot write, and how /metrics names them.
_UNWRITABLE = {
    3: "permission",  # SQLITE_PERM
    8: "read_only",  # SQLITE_READONLY
    10: "io_error",  # SQLITE_IOERR
    13: "disk_full",  # SQLITE_FULL
    14: "cannot_open",  # SQLITE_CANTOPEN
}
PROBE_SETTING = "readiness-probe"


class StoreUnwritable(Exception):
    """The database cannot take a write now; nothing of the write happened."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"the store cannot write ({reason}): {detail}")
        self.reason = reason


def unwritable(exc: BaseException) -> StoreUnwritable | None:
    """The :class:`StoreUnwritable` that an SQLite error means, or None for other errors."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    reason = _UNWRITABLE.get(code & 0xFF) if isinstance(code, int) else None
    return None if reason is None else StoreUnwritable(reason, str(exc))


_Write = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]
_Outcome = tuple[bool, Any]  # (True, result) or (False, the exception the write raised)

DB_FILE = "portal.sqlite3"
BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another worker's transaction
# WAL with synchronous=NORMAL: a commit survives a process crash (SIGKILL), which is what a
# restarted mock must tolerate; only an OS crash can lose the last commits.
# Writes of one group commit at most: bounds the time a write waits behind the others.
MAX_BATCH = 128
CACHE_MAX_ENTRIES = 50_000  # per cache; a full cache is emptied and refills from live traffic
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-16000",  # 16 MB page cache per connection: bounded memory
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY,
    citizen INTEGER NOT NULL,
    service_code TEXT NOT NULL,
    category TEXT NOT NULL,
    fields BLOB NOT NULL,
    submitted_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    rating BLOB
);
CREATE INDEX IF NOT EXISTS applications_by_citizen ON applications (citizen, submitted_at);
CREATE INDEX IF NOT EXISTS applications_by_age ON applications (submitted_at);

CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    citizen INTEGER NOT NULL,
    charge_id TEXT NOT NULL,
    amount_kopecks INTEGER NOT NULL CHECK (amount_kopecks > 0),
    method TEXT NOT NULL,
    created_at REAL NOT NULL,
    settles_at REAL NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    status TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    settled_at REAL
);
CREATE INDEX IF NOT EXISTS payments_by_charge ON payments (charge_id);
CREATE INDEX IF NOT EXISTS payments_by_citizen ON payments (citizen, created_at);
CREATE INDEX IF NOT EXISTS payments_due ON payments (status, settles_at);
-- The database itself refuses a second successful payment of one charge.
CREATE UNIQUE INDEX IF NOT EXISTS one_success_per_charge ON payments (charge_id)
    WHERE status = 'succeeded';

CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    account TEXT NOT NULL,
    amount_kopecks INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_payment ON ledger (payment_id);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    citizen INTEGER NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    location TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (citizen, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency_keys (created_at);

CREATE TABLE IF NOT EXISTS revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS revocations_by_expiry ON revocations (expires_at);

CREATE TABLE IF NOT EXISTS used_codes (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS login_failures (
    login TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_login ON login_failures (login, at);

CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    value BLOB NOT NULL
);
"""

# Stores that are evicted by age and size, and the column their age is read from.
_AGED = {
    "applications": ("submitted_at", "application_ttl_s", "max_applications"),
    "idempotency_keys": ("created_at", "idempotency_ttl_s", "max_idempotency_keys"),
}


def connect(path: Path, *, wait: bool = True) -> sqlite3.Connection:
    """A connection; ``wait=False``: never waits for a lock and never checkpoints (the loop's)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    if not wait:
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


def _run_writes(
    conn: sqlite3.Connection, work: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[_Outcome]:
    """Run writes in the transaction just begun, each in its own savepoint, and commit.

    A write that raises is rolled back alone and its outcome is the exception; when the commit
    itself fails, everything is rolled back and this raises. A lone write needs no savepoint:
    when it raises, the whole transaction (only it) is rolled back.
    """
    outcomes: list[_Outcome] = []
    try:
        if len(work) == 1:
            fn, args = work[0]
            try:
                outcomes.append((True, fn(conn, *args)))
            except BaseException as exc:
                conn.execute("ROLLBACK")
                return [(False, exc)]
        else:
            for fn, args in work:
                conn.execute("SAVEPOINT write")
                try:
                    result = fn(conn, *args)
                except BaseException as exc:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE write")
                    outcomes.append((True, result))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _resolve(batch: list[_Write], outcomes: list[_Outcome]) -> None:
    for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Store:
    """The database of one mock process; see the module docstring."""

    def __init__(self, data_dir: Path, config: PortalConfig, metrics: PortalMetrics) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        self.config = config
        self.metrics = metrics
        self._writer_conn: sqlite3.Connection | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-db")
        init = connect(self.path)
        try:
            init.execute("BEGIN IMMEDIATE")
            init.executescript(SCHEMA)
        finally:
            init.close()
        self.reader = connect(self.path)
        self._inline = connect(self.path, wait=False)
        self._pending: list[_Write] = []
        self._committing = False
        self._turn: list[_Write] = []  # writes of this loop turn, committed together
        self._caches: dict[str, dict[Any, Any]] = {}
        self._data_version = self._inline.execute("PRAGMA data_version").fetchone()[0]
        self._version_checked = False  # in this loop turn

    def cached(self, name: str) -> dict[Any, Any]:
        """The per-process cache ``name``, emptied (with every other) when another connection
        has committed since the last look (see the module docstring).

        The look is taken once per loop turn, at the first use after the turn's I/O: a
        request read in this turn was sent after every answer its client had seen, so after
        every commit those answers reported; a commit later in the turn is concurrent with
        the request and may or may not show, as on any database.
        """
        if not self._version_checked:
            self._version_checked = True
            asyncio.get_running_loop().call_soon(self._next_turn)
            version = self._inline.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._data_version = version
                for each in self._caches.values():
                    each.clear()
        cache = self._caches.get(name)
        if cache is None:
            cache = self._caches[name] = {}
        elif len(cache) >= CACHE_MAX_ENTRIES:
            cache.clear()
        return cache

    def _next_turn(self) -> None:
        # Runs before the callbacks that the next turn's I/O schedules (they queue after it).
        self._version_checked = False

    def forget(self, name: str, key: Any) -> None:
        """Drop what cache ``name`` holds for ``key``: a write of this process changed it."""
        held = self._caches.get(name)
        if held is not None:
            held.pop(key, None)

    def _writer_connection(self) -> sqlite3.Connection:
        if self._writer_conn is None:
            self._writer_conn = connect(self.path)
        return self._writer_conn

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` atomically; returns once committed.

        With the other writes of this loop turn, on the loop thread when the write lock is
        free at once, else on the writer thread (see the module docstring). Raises
        :class:`StoreUnwritable` when the database cannot take the write (nothing of it
        happened).
        """
        if self._committing:
            return await self.write_in_thread(fn, *args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._turn:
            loop.call_soon(self._commit_turn, loop)  # after the handlers already runnable
        self._turn.append((fn, args, future))
        try:
            return await future
        except sqlite3.Error as exc:
            raise self._failed(exc) or exc from None

    def _commit_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the writes of one loop turn on the loop's connection, or hand them to the
        writer thread when another worker holds the write lock."""
        batch = [w for w in self._turn if not w[2].cancelled()]
        self._turn = []
        if not batch:
            return
        conn = self._inline
        if not self._committing:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # another worker is writing: don't wait here
                pass
            else:
                try:
                    outcomes = _run_writes(conn, [(fn, args) for fn, args, _ in batch])
                except BaseException as exc:  # the commit failed: none of the writes happened
                    outcomes = [(False, exc)] * len(batch)
                _resolve(batch, outcomes)
                return
        self._pending.extend(batch)
        if not self._committing:
            self._committing = True
            self._commit_next(loop)

    def _failed(self, exc: BaseException) -> StoreUnwritable | None:
        error = unwritable(exc)
        if error is not None:
            self.metrics.store_write_failures.labels(error.reason).inc()
        return error

    async def writable(self) -> StoreUnwritable | None:
        """Try a small write now; None when it committed, else why the store cannot write."""
        try:
            await self.write(Store.put_setting, PROBE_SETTING, b"")
        except StoreUnwritable as exc:
            return exc
        return None

    async def write_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` atomically on the writer thread; returns once committed.

        For long writes (maintenance) and for writes that must wait for the lock. Writes made
        while a commit is under way share the next transaction; each has its own savepoint,
        so an exception undoes that write alone.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, args, future))
        if not self._committing:
            self._committing = True
            loop.call_soon(self._commit_next, loop)  # after the handlers already runnable
        try:
            return await future
        except sqlite3.Error as exc:
            raise self._failed(exc) or exc from None

    def _commit_next(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = [w for w in self._pending[:MAX_BATCH] if not w[2].cancelled()]
        del self._pending[:MAX_BATCH]
        if not batch:
            if self._pending:
                loop.call_soon(self._commit_next, loop)
            else:
                self._committing = False
            return
        work = [(fn, args) for fn, args, _ in batch]
        done = self._writer.submit(self._run_batch, work)
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._deliver, loop, batch, f))

    def _deliver(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Write], done: Future[list[_Outcome]]
    ) -> None:
        try:
            outcomes = done.result()
        except BaseException as exc:  # the commit itself failed: none of the writes happened
            outcomes = [(False, exc)] * len(batch)
        _resolve(batch, outcomes)
        if self._pending:
            self._commit_next(loop)
        else:
            self._committing = False

    def _run_batch(self, work: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[_Outcome]:
        conn = self._writer_connection()
        conn.execute("BEGIN IMMEDIATE")
        return _run_writes(conn, work)

    async def checkpoint(self) -> None:
        """Copy the WAL back into the database (PASSIVE: waits for nobody), off the loop."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._checkpoint)
        except sqlite3.Error as exc:
            raise unwritable(exc) or exc from None

    def _checkpoint(self) -> None:
        self._writer_connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        def _close() -> None:
            if self._writer_conn is not None:
                self._writer_conn.close()
                self._writer_conn = None

        self._writer.submit(_close).result()
        self._writer.shutdown(wait=True)
        self._inline.close()
        self.reader.close()

    # -- bounded state --------------------------------------------------------------------

    def maintain(self, conn: sqlite3.Connection, now: float) -> dict[str, int]:
        """Evict expired and excess rows; returns evictions per store (also counted)."""
        cfg = self.config
        evicted: dict[str, int] = {}
        for store, (column, ttl_attr, max_attr) in _AGED.items():
            cutoff = now - float(getattr(cfg, ttl_attr))
            n = conn.execute(f"DELETE FROM {store} WHERE {column} < ?", (cutoff,)).rowcount  # noqa: S608
            limit = int(getattr(cfg, max_attr))
            size = conn.execute(f"SELECT count(*) FROM {store}").fetchone()[0]  # noqa: S608
            if size > limit:
                n += conn.execute(
                    f"DELETE FROM {store} WHERE rowid IN "  # noqa: S608
                    f"(SELECT rowid FROM {store} ORDER BY {column} LIMIT ?)",
                    (size - limit,),
                ).rowcount
            evicted[store] = n
        evicted["revocations"] = conn.execute(
            "DELETE FROM revocations WHERE expires_at < ?", (now,)
        ).rowcount
        size = conn.execute("SELECT count(*) FROM revocations").fetchone()[0]
        if size > cfg.max_revocations:
            # Oldest-expiring first: those tokens are the nearest to dying on their own.
            evicted["revocations"] += conn.execute(
                "DELETE FROM revocations WHERE id IN "
                "(SELECT id FROM revocations ORDER BY expires_at LIMIT ?)",
                (size - cfg.max_revocations,),
            ).rowcount
        evicted["used_codes"] = conn.execute(
            "DELETE FROM used_codes WHERE expires_at < ?", (now,)
        ).rowcount
        evicted["login_failures"] = conn.execute(
            "DELETE FROM login_failures WHERE at < ?", (now - cfg.login_window_s,)
        ).rowcount
        for store, n in evicted.items():
            if n:
                self.metrics.store_evictions.labels(store).inc(n)
        return evicted

    def sizes(self) -> dict[str, int]:
        """Rows per store, read on the loop thread; exported as ``portal_store_size``."""
        out = {}
        for store in (
            "applications",
            "payments",
            "ledger",
            "idempotency_keys",
            "revocations",
            "used_codes",
            "login_failures",
        ):
            out[store] = self.reader.execute(f"SELECT count(*) FROM {store}").fetchone()[0]  # noqa: S608
            self.metrics.store_size.labels(store).set(out[store])
        return out

    # -- settings shared by all workers ---------------------------------------------------

    def read_setting(self, name: str) -> tuple[int, bytes] | None:
        row = self.reader.execute(
            "SELECT version, value FROM settings WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    @staticmethod
    def put_setting(conn: sqlite3.Connection, name: str, value: bytes) -> int:
        row = conn.execute("SELECT version FROM settings WHERE name = ?", (name,)).fetchone()
        version = (row[0] if row else 0) + 1
        conn.execute(
            "INSERT INTO settings (name, version, value) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, value = excluded.value",
            (name, version, value),
        )
        return int(version)
