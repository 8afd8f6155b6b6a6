"""Slot rules (pure): names and their order, the lowest free slot, and which handle answers for a slot."""

from __future__ import annotations

from dataclasses import dataclass

from tts_ops.supervisor.slots import current, lowest_free, slot_name, slot_number


@dataclass
class Holder:
    id: str
    serial: int
    retiring: bool = False
    replacing: bool = False


def test_slot_names_sort_by_number():
    assert slot_name(3) == "w3" and slot_number("w3") == 3
    assert sorted(["w10", "w2", "w1"], key=slot_number) == ["w1", "w2", "w10"]
    assert slot_number("bogus") > slot_number("w999")  # sorts last instead of raising


def test_lowest_free_fills_gaps_first():
    assert lowest_free([]) == "w1"
    assert lowest_free(["w1", "w2"]) == "w3"
    assert lowest_free(["w1", "w3"]) == "w2"


def test_current_is_the_serving_predecessor_until_the_handover():
    old, new = Holder("w1", 1), Holder("w1", 3, replacing=True)
    assert current([old, new]) is old
    new.replacing = False  # handed over; the supervisor then retires the predecessor
    assert current([old, new]) is new
    old.retiring = True
    assert current([new, old]) is new


def test_current_prefers_a_handle_not_being_retired():
    draining, fresh = Holder("w2", 2, retiring=True), Holder("w2", 5)
    assert current([draining, fresh]) is fresh
    assert current([draining]) is draining  # the only one still answers (status) until it is gone
    assert current([]) is None
