"""A mock whose disk fills up: every write is a 503 with Retry-After (never a 500), readiness
says so, nothing is half-written, and all is well again once space is freed. The disk is a
2 MB tmpfs the test mounts and unmounts itself."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mock_portal.store import unwritable

from ._process import counter, fresh_session, mock_process, sso_login

pytestmark = pytest.mark.slow

MAX_WRITES = 400  # applications sent after the disk is full; the store refuses long before


@contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` for the test (root, or CAP_SYS_ADMIN)."""
    path.mkdir()
    done = None
    if shutil.which("mount"):
        argv = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done is None or done.returncode != 0:
        why = "no mount command" if done is None else done.stderr.strip()
        reason = f"cannot mount a tmpfs for the full-disk test ({why}); it needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True, timeout=30)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last page; returns the file to delete to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0" * 512):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


async def _citizen_with_charge(
    session: aiohttp.ClientSession, base: str
) -> tuple[dict[str, str], str]:
    for n in range(1, 40):
        if n % 5:
            auth = await sso_login(session, base, n)
            r = await session.get(f"{base}/api/v1/payments/charges", headers=auth)
            items = (await r.json())["items"]
            if items:
                return auth, items[0]["id"]
    raise AssertionError("no citizen with a charge")


async def _scenario(base: str, admin: str, disk: Path) -> None:
    async with fresh_session() as session:
        auth, charge = await _citizen_with_charge(session, base)
        service = await (await session.get(f"{base}/api/v1/services/10001")).json()
        application = {"service_code": "10001",
                       "fields": {f["name"]: f["example"] for f in service["fields"]}}  # fmt: skip

        async def apply() -> aiohttp.ClientResponse:
            r = await session.post(f"{base}/api/v1/applications", json=application, headers=auth)
            await r.read()
            return r

        async def pay() -> int:
            r = await session.post(f"{base}/api/v1/payments", json={"charge_id": charge},
                                   headers={**auth, "Idempotency-Key": "full-disk"})  # fmt: skip
            await r.read()
            return r.status

        assert (await apply()).status == 201
        filler = fill(disk)
        refused: Any = None
        for _ in range(MAX_WRITES):
            r = await apply()
            assert r.status in (201, 503), await r.text()
            if r.status == 503:
                refused = r
                break
        assert refused is not None, "the store never noticed the full disk"
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Retry-After"].isdigit()
        assert (await refused.json())["type"].endswith("/store-unavailable")
        assert await pay() in (201, 503)  # whole or not at all

        r = await session.get(f"{base}/readyz")
        assert r.status == 503
        assert "Retry-After" in r.headers
        text = await (await session.get(f"{base}/metrics")).text()
        assert counter(text, "portal_store_write_failures_total") >= 1

        filler.unlink()
        assert (await session.get(f"{base}/readyz")).status == 200
        assert await pay() == 201  # the same key: one payment, made now or replayed
        assert (await apply()).status == 201
        await asyncio.sleep(1.0)  # settlement
        ledger = await (
            await session.get(f"{base}/admin/ledger", headers={"Authorization": f"Bearer {admin}"})
        ).json()
        assert ledger["payments"] == 1
        assert ledger["balanced"] is True


def test_a_full_disk_is_503_with_retry_after_and_not_ready(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk, mock_process(data_dir=disk / "data") as mock:
        asyncio.run(_scenario(mock.base, mock.admin, disk))
        assert "Traceback" not in mock.output()


def test_a_read_only_database_is_unwritable_and_a_constraint_is_not(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        with pytest.raises(sqlite3.IntegrityError) as constraint:
            conn.execute("INSERT INTO t VALUES (1)")
        assert unwritable(constraint.value) is None
    read_only = contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    with read_only as ro, pytest.raises(sqlite3.OperationalError) as refused:
        ro.execute("INSERT INTO t VALUES (2)")
    error = unwritable(refused.value)
    assert error is not None and error.reason == "read_only"
