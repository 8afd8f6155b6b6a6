"""Request and synthesis counters of the public listener (daemon process, event loop): one small object that the
handlers and the synthesis service count on through named methods, and that ``/admin/status`` reads as a dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Totals"]


@dataclass
class Totals:
    """Per request: ``requests`` as they arrive, ``ok`` once answered in full (hits included), ``client_errors`` for
    a 4xx. Per synthesis attempt (a stream's chunk, a shared synthesis once): ``shed``, ``failed``, ``timeouts``,
    ``retried``."""

    requests: int = 0
    ok: int = 0
    client_errors: int = 0
    shed: int = 0
    timeouts: int = 0
    failed: int = 0
    retried: int = 0

    # -- counting (the request side: http handlers) ---------------------------------------------------------------
    def request(self) -> None:
        self.requests += 1

    def answered(self) -> None:
        self.ok += 1

    def client_error(self) -> None:
        self.client_errors += 1

    # -- counting (the synthesis side: the service) ---------------------------------------------------------------
    def shed_one(self) -> None:
        self.shed += 1

    def timed_out(self) -> None:
        self.timeouts += 1

    def failed_one(self) -> None:
        self.failed += 1

    def retried_one(self) -> None:
        self.retried += 1

    # -- reading ----------------------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    # The mapping read path of the dict this object replaces: ``dict(totals)``, ``totals["ok"]``.
    def keys(self) -> list[str]:
        return [field.name for field in dataclasses.fields(self)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __getitem__(self, name: str) -> int:
        if name not in self.keys():
            raise KeyError(name)
        return int(getattr(self, name))
