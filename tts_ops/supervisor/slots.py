"""Worker slots (daemon process, pure logic): the stable ids ``w1..wN`` the CLI, the admin API and metric labels use.

A slot outlives the processes and handles in it. A restart in place keeps the handle; a replacement (recycle, admin
restart, rolling restart, respawn of a lost handle) starts a new handle in the same slot. During replace-first the
slot briefly holds two handles, the predecessor and its successor (``replacing``), so the pool keys handles by
``WorkerHandle.key`` (slot plus a pool-wide serial) and a lookup by slot asks ``current`` which one answers for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

__all__ = ["SlotHolder", "current", "lowest_free", "slot_name", "slot_number"]

PREFIX = "w"


class SlotHolder(Protocol):
    """What the slot rules read of a handle (``WorkerHandle``)."""

    @property
    def id(self) -> str: ...
    @property
    def serial(self) -> int: ...
    @property
    def retiring(self) -> bool: ...
    @property
    def replacing(self) -> bool: ...


H = TypeVar("H", bound=SlotHolder)


def slot_name(number: int) -> str:
    return f"{PREFIX}{number}"


def slot_number(slot: str) -> int:
    """1 for ``w1``; anything else sorts last, so a malformed id never breaks ordering."""
    digits = slot[len(PREFIX):] if slot.startswith(PREFIX) else ""
    return int(digits) if digits.isdigit() else 1 << 30


def lowest_free(taken: Iterable[str]) -> str:
    """The lowest-numbered slot not in ``taken``: a scale-up fills the gaps a scale-down left first."""
    used = set(taken)
    number = 1
    while slot_name(number) in used:
        number += 1
    return slot_name(number)


def current(handles: Iterable[H]) -> H | None:
    """The handle that answers for a slot among those in it: one not being retired over one that is, the serving
    predecessor over a successor still booting (``replacing``), then the newest. Once the successor is promoted
    (``replacing`` cleared) and the predecessor drains, the successor wins on the first rule."""
    return min(handles, key=lambda h: (h.retiring, h.replacing, -h.serial), default=None)
