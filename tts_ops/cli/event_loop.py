"""The daemon's event loop (daemon process, before anything runs): uvloop when installed and chosen
(``server.event_loop``: ``auto`` = uvloop on Linux when the optional extra ``fast`` is installed), else asyncio's
own. uvloop runs the same aiohttp code with a cheaper transport layer: fewer CPU cycles per request on the front
end (bench/frontend_wrk.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tts_ops.cli.errors import CliError

try:  # optional extra 'fast'
    import uvloop
except ImportError:  # pragma: no cover - depends on the installation
    uvloop = None  # type: ignore[assignment]

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def use_uvloop(setting: str) -> bool:
    """Whether ``server.event_loop`` = ``setting`` means uvloop here; CliError when uvloop is asked for by name
    and is not installed."""
    if setting == "asyncio":
        return False
    if uvloop is None:
        if setting == "uvloop":
            raise CliError("server.event_loop is 'uvloop' but uvloop is not installed (pip install 'tts-ops[fast]')")
        return False
    return setting == "uvloop" or sys.platform.startswith("linux")


def loop_name(setting: str) -> str:
    """What ``run`` will use: 'uvloop <version>' or 'asyncio'."""
    return f"uvloop {uvloop.__version__}" if uvloop is not None and use_uvloop(setting) else "asyncio"


def run(main: Callable[[], Coroutine[Any, Any, T]], setting: str) -> T:
    """``asyncio.run(main())`` on the loop ``setting`` chooses."""
    if use_uvloop(setting):
        result: T = uvloop.run(main())
        return result
    return asyncio.run(main())
