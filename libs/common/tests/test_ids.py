"""Derived ids: the same row written again after a crash gets the same id."""

from __future__ import annotations

from bos_common.ids import derived_id, looks_like, new_id


def test_a_derived_id_is_the_same_for_the_same_key_and_time() -> None:
    at = 1_765_000_000_000
    first = derived_id("pay", "bos-inv_1-attempt-1", at_ms=at)
    assert derived_id("pay", "bos-inv_1-attempt-1", at_ms=at) == first
    assert derived_id("pay", "bos-inv_1-attempt-2", at_ms=at) != first
    assert looks_like(first, "pay") and len(first) == len(new_id("pay"))


def test_derived_ids_sort_by_time_as_new_ids_do() -> None:
    earlier = derived_id("pay", "zzz", at_ms=1_765_000_000_000)
    later = derived_id("pay", "aaa", at_ms=1_765_000_000_001)
    assert earlier < later
