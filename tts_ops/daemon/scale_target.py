"""The worker count the pool should run (daemon process, pure): the config file's ``workers.count``, unless an
operator scaled at runtime (``tts-ops scale N``). A runtime scale survives SIGHUP until the file's count itself
changes (the operator edited it: the file is the newer decision) or the override is reset (``scale --reset``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScaleTarget"]


@dataclass(frozen=True)
class ScaleTarget:
    configured: int               # workers.count of the config in force
    override: int | None = None   # set by a runtime scale; None = follow the file

    @property
    def count(self) -> int:
        return self.configured if self.override is None else self.override

    def scaled(self, count: int) -> ScaleTarget:
        return ScaleTarget(self.configured, count)

    def reset(self) -> ScaleTarget:
        return ScaleTarget(self.configured)

    def reloaded(self, configured: int) -> ScaleTarget:
        """After a reload whose file says ``configured``: an edited count wins over the runtime override."""
        if configured != self.configured:
            return ScaleTarget(configured)
        return self

    def public(self) -> dict[str, int | None]:
        return {"configured": self.configured, "override": self.override}
