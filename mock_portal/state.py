"""The state one mock process keeps beside its app: config, signer, metrics, store, faults
and the revocation set, and the background tasks that keep them in step with other workers.

Services add their own background jobs (:class:`Periodic`) while the app is built; this module
knows none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

from .config import ConfigError, Faults, PortalConfig
from .faults import FaultEngine
from .logs import RateLimitedLog
from .metrics import PortalMetrics
from .problems import Problem
from .store import Store, StoreUnwritable
from .tokens import Signer

log = logging.getLogger(__name__)

# How often a worker picks up what other workers wrote: revocations must take effect fast
# (a revoked token is refused by every worker within this), fault changes a little slower.
REVOCATION_POLL_S = 0.1
SETTINGS_POLL_S = 0.5
MAINTENANCE_EVERY_S = 5.0
FAULTS_SETTING = "faults"

_BEARER = "Bearer "
# Bounds the verified-token cache (~0.6 KB an entry, so at most ~30 MB): tokens seen again
# within a session hit it; when full it is emptied and refills from live traffic.
VERIFIED_TOKENS_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job a service runs in the background every ``interval_s`` (payments settle so)."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None] | None]


class Portal:
    """Everything a handler needs; one per app, under the ``PORTAL`` app key."""

    def __init__(self, config: PortalConfig, metrics: PortalMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self._store: Store | None = None
        if config.secret is None:
            raise ValueError("PortalConfig.secret must be set before the app is built")
        self.signer = Signer(config.secret)
        self.faults = FaultEngine(config.faults, metrics)
        self.revoked: dict[str, float] = {}  # jti or session id -> expiry
        # Tokens whose signature was checked: (citizen, expiry, jti, sid). Expiry and
        # revocation are still checked on every request; only the HMAC and JSON are saved.
        self._verified: dict[str, tuple[int, float, str, str]] = {}
        self._revocation_cursor = 0
        self.ready = False
        self.draining = False
        self.jobs: list[Periodic] = []  # added by the services' setup, started with the app

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the portal's store is open only while the app runs")
        return self._store

    def open(self, store: Store) -> None:
        self._store = store

    # -- authentication ---------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> int:
        """The citizen index of the request's bearer token, or a 401 problem."""
        header = request.headers.get("Authorization")
        if header is None or not header.startswith(_BEARER):
            raise _unauthorized("a bearer access token is required", "invalid_request")
        token = header[len(_BEARER) :].strip()
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token)
        cid, exp, jti, sid = verified
        if exp <= time.time():
            raise _unauthorized("the access token has expired")
        revoked = self.revoked
        if revoked and (jti in revoked or sid in revoked):
            raise _unauthorized("the access token has been revoked")
        return cid

    def _verify(self, token: str) -> tuple[int, float, str, str]:
        """Check a token's signature and shape once; later requests with it hit the cache."""
        claims = self.signer.verify_jwt(token)
        if claims is None or claims.get("typ") != "access":
            raise _unauthorized("the access token is malformed or its signature is invalid")
        exp, cid = claims.get("exp"), claims.get("cid")
        if not isinstance(exp, int | float) or not isinstance(cid, int):
            raise _unauthorized("the access token lacks its expiry or its citizen")
        verified = (cid, float(exp), str(claims.get("jti")), str(claims.get("sid")))
        if len(self._verified) >= VERIFIED_TOKENS_MAX:
            self._verified.clear()  # cheap and rare: the cache refills from live traffic
        self._verified[token] = verified
        return verified

    def note_revocations(self, rows: list[tuple[int, str, float]]) -> None:
        for rowid, jti, expires_at in rows:
            self.revoked[jti] = expires_at
            self._revocation_cursor = max(self._revocation_cursor, rowid)

    def poll_revocations(self) -> None:
        rows = self.store.reader.execute(
            "SELECT id, jti, expires_at FROM revocations WHERE id > ? ORDER BY id",
            (self._revocation_cursor,),
        ).fetchall()
        if rows:
            self.note_revocations(rows)

    def prune_revocations(self, now: float) -> None:
        expired = [k for k, exp in self.revoked.items() if exp < now]
        for k in expired:
            del self.revoked[k]

    # -- faults shared across workers ---------------------------------------------------------

    def poll_faults(self) -> None:
        setting = self.store.read_setting(FAULTS_SETTING)
        if setting is None or setting[0] == self.faults.version:
            return
        version, value = setting
        try:
            faults = Faults.parse(orjson.loads(value))
        except (ConfigError, orjson.JSONDecodeError) as exc:  # written by a newer/older mock
            log.error("ignoring stored faults version %d: %s", version, exc)
            self.faults.version = version
            return
        self.faults.apply(faults, version)

    async def put_faults(self, faults: Faults) -> int:
        version = await self.store.write(
            Store.put_setting, FAULTS_SETTING, orjson.dumps(faults.to_json())
        )
        self.faults.apply(faults, version)
        return version


def _unauthorized(detail: str, error: str = "invalid_token") -> Problem:
    return Problem(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="portal", error="{error}"'},
    )


PORTAL = web.AppKey("portal", Portal)


async def _every(job: Periodic, warnings: RateLimitedLog) -> None:
    while True:
        await asyncio.sleep(job.interval_s)
        try:
            result = job.run()
            if result is not None:
                await result
        except StoreUnwritable as exc:  # a full disk: every run fails alike until it is freed
            warnings.warning("background task %s: %s; it will run again", job.name, exc)
        except Exception:
            log.exception("background task %s failed; it will run again", job.name)


@contextlib.asynccontextmanager
async def background_tasks(portal: Portal) -> AsyncIterator[None]:
    """Pollers, maintenance and the services' own jobs of one process, cancelled on shutdown."""

    async def maintain() -> None:
        now = time.time()
        await portal.store.write_in_thread(portal.store.maintain, now)
        await portal.store.checkpoint()
        portal.prune_revocations(now)
        portal.store.sizes()

    portal.poll_revocations()
    portal.poll_faults()
    jobs = (
        Periodic("revocations", REVOCATION_POLL_S, portal.poll_revocations),
        Periodic("faults", SETTINGS_POLL_S, portal.poll_faults),
        Periodic("maintenance", MAINTENANCE_EVERY_S, maintain),
        *portal.jobs,
    )
    warnings = RateLimitedLog(log)
    tasks = [asyncio.create_task(_every(job, warnings), name=f"portal-{job.name}") for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
