"""Ids from the batched random pool: the shapes of ``secrets``' and never one twice."""

from __future__ import annotations

import os
import re

from mock_portal import ids


def test_ids_have_secrets_shapes_and_never_repeat_across_pool_refills() -> None:
    hexes = [ids.token_hex(10) for _ in range(5000)]  # 50 000 bytes: a dozen refills
    assert all(re.fullmatch(r"[0-9a-f]{20}", h) for h in hexes)
    assert len(set(hexes)) == len(hexes)
    safe = [ids.token_urlsafe(12) for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", s) for s in safe)
    assert len(set(safe)) == len(safe)
    assert len(ids.token_bytes(ids.POOL_BYTES + 1)) == ids.POOL_BYTES + 1


def test_a_forked_child_never_hands_out_its_parents_bytes() -> None:
    ids.token_hex(1)  # the parent's pool holds unused bytes now
    pool = ids._pool
    parents_next = pool.data[pool.pos : pool.pos + 16].hex()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, ids.token_hex(16).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != parents_next
    assert ids.token_hex(16) == parents_next
