"""The citizen pool and its allocation across workers."""

from __future__ import annotations

import pytest

from scenarios.citizens import Citizen, CitizenAllocator


def test_credentials_and_second_factor_follow_the_index() -> None:
    c = Citizen(35)
    assert (c.login, c.password, c.has_mfa) == ("citizen-35", "Passw0rd-35", True)
    assert not Citizen(36).has_mfa


def test_workers_never_share_a_citizen() -> None:
    allocators = [CitizenAllocator(worker_index=w, stride=8, pool_size=1000) for w in range(8)]
    seen: list[set[int]] = [{a.next().n for _ in range(100)} for a in allocators]
    for i, a in enumerate(seen):
        assert len(a) == 100
        for b in seen[i + 1 :]:
            assert not a & b


def test_a_worker_cycles_its_stripe_and_respects_the_offset() -> None:
    a = CitizenAllocator(worker_index=2, stride=10, pool_size=50, offset=3)
    assert [a.next().n for _ in range(5)] == [5, 15, 25, 35, 45]
    assert a.next().n == 5


def test_a_stride_below_the_worker_count_is_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        CitizenAllocator(worker_index=4, stride=4)
