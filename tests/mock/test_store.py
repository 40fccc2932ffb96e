"""The store commits the writes of one loop turn together, each in its own savepoint."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mock_portal import load_config
from mock_portal.metrics import PortalMetrics
from mock_portal.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path, load_config(), PortalMetrics(CollectorRegistry()))
    yield opened
    opened.close()


def _put(conn: sqlite3.Connection, name: str) -> str:
    conn.execute("INSERT INTO settings (name, version, value) VALUES (?, 1, x'')", (name,))
    return name


def _put_then_fail(conn: sqlite3.Connection, name: str) -> None:
    _put(conn, name)
    raise ValueError("refused after writing")


def _names(store: Store) -> set[str]:
    return {row[0] for row in store.reader.execute("SELECT name FROM settings")}


async def test_a_failing_write_of_a_turn_rolls_back_alone(store: Store) -> None:
    statements: list[str] = []
    store._inline.set_trace_callback(statements.append)
    results = await asyncio.gather(
        store.write(_put, "a"),
        store.write(_put_then_fail, "half"),
        store.write(_put, "b"),
        store.write(_put, "a"),  # the primary key refuses it: an IntegrityError of its own
        store.write(_put, "c"),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "b" and results[4] == "c"
    assert isinstance(results[1], ValueError)
    assert isinstance(results[3], sqlite3.IntegrityError)
    assert _names(store) == {"a", "b", "c"}
    # One transaction for the five writes: one BEGIN, one COMMIT.
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert statements.count("COMMIT") == 1


async def test_a_write_resolves_only_once_committed(store: Store) -> None:
    first = asyncio.ensure_future(store.write(_put, "x"))
    await asyncio.sleep(0)  # the write is queued for this turn, not yet committed
    assert not first.done()
    assert _names(store) == set()
    assert await first == "x"
    assert _names(store) == {"x"}  # another connection sees it: it is committed


async def test_a_lone_failing_write_leaves_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="refused"):
        await store.write(_put_then_fail, "lone")
    assert _names(store) == set()
    assert await store.write(_put, "after") == "after"
    assert _names(store) == {"after"}
