"""The derived citizen pool and its leases across workers."""

from __future__ import annotations

import pytest

from scenarios.citizens import Citizen, CitizenPool


def test_credentials_and_second_factor_follow_the_index() -> None:
    c = Citizen(35)
    assert (c.login, c.password, c.has_mfa, c.email) == (
        "citizen-35",
        "Passw0rd-35",
        True,
        "citizen-35@mail.example",
    )
    assert not Citizen(36).has_mfa
    assert c.second_factor("123456") == "123456"


def test_workers_never_share_a_citizen() -> None:
    pools = [CitizenPool(worker_index=w, stride=8, pool_size=1000) for w in range(8)]
    seen: list[set[int]] = [{p.acquire().n for _ in range(100)} for p in pools]  # type: ignore[union-attr]
    for i, a in enumerate(seen):
        assert len(a) == 100
        for b in seen[i + 1 :]:
            assert not a & b


def test_a_worker_cycles_its_stripe_and_respects_the_offset() -> None:
    pool = CitizenPool(worker_index=2, stride=10, pool_size=50, offset=3)
    held = [pool.acquire() for _ in range(5)]
    assert [c.n for c in held if c] == [5, 15, 25, 35, 45]
    for citizen in held:
        pool.release(citizen)  # type: ignore[arg-type]
    assert pool.acquire().n == 5  # type: ignore[union-attr]


def test_a_leased_citizen_is_never_handed_out_twice() -> None:
    pool = CitizenPool(worker_index=0, stride=1, pool_size=3)
    a, b, c = pool.acquire(), pool.acquire(), pool.acquire()
    assert pool.acquire() is None and pool.leased == 3
    pool.release(b)  # type: ignore[arg-type]
    assert pool.acquire() == b  # the only one free, though a and c come first round robin
    assert {a, c} == {Citizen(0), Citizen(2)}


def test_a_stride_below_the_worker_count_is_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        CitizenPool(worker_index=4, stride=4)
