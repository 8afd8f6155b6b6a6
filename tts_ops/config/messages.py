"""Validation errors as operators read them: one line per problem, ``SOURCE: dotted.key: message (got VALUE)``,
naming the layer that set the value (file, variable, flag), never echoing a secret, and suggesting the key meant
by a typo. Runs wherever configuration is read (daemon and CLI).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from tts_ops.config.keys import Loc, iter_keys, model_at

# Values never echoed in error messages (dump_effective masks the same keys).
SECRET_KEYS = (("admin", "token"), ("server", "api_keys"), ("cache", "redis_url"))


def format_error(err: Mapping[str, Any], sources: Mapping[Loc, str]) -> str:
    """One pydantic error -> ``SOURCE: dotted.key: message (got VALUE)``."""
    loc: Loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    related = [loc + tuple(key.split(".")) for key in str(ctx.get("related") or "").split(",") if key]
    if "at" in ctx:
        loc += tuple(str(ctx["at"]).split("."))
    kind = err["type"]
    value = err.get("input")
    secret = any(loc[:len(key)] == key for key in SECRET_KEYS)
    if kind == "extra_forbidden":
        message = "unknown key" + _suggestion(loc)
    elif kind in _EXPECTED:
        # Strict type errors: "workers.count: expected an integer, got true" reads better than pydantic's text.
        message = f"expected {_EXPECTED[kind]}" + ("" if secret else f", got {_short(value)}")
    else:
        message = err["msg"].removeprefix("Value error, ")
        if kind != "cross_field" and not secret and not isinstance(value, (dict, BaseModel)):
            message += f" (got {_short(value)})"
    dotted = ".".join(str(part) for part in loc) or "(top level)"
    source = _source_of([loc, *related], sources)
    return f"{source}: {dotted}: {message}" if source else f"{dotted}: {message}"


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "tuple_type": "a list", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping of settings", "is_instance_of": "a path",
}


def _short(value: Any, limit: int = 60) -> str:
    # Spelled as in the YAML file (true, null), so "got true" points at what the operator wrote.
    text = ("true" if value else "false") if isinstance(value, bool) else "null" if value is None else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _source_of(locs: list[Loc], sources: Mapping[Loc, str]) -> str:
    # Who set the key (or the keys under it: a whole section, a mapping), or the keys a cross-field check
    # compared it with; several layers are listed highest precedence first. "" = built-in defaults only.
    found = [label for key, label in sources.items() if any(loc and key[:len(loc)] == loc for loc in locs)]
    if not found:  # an item inside a value one layer set as a whole (a list element): that layer
        found = [label for key, label in sources.items() if any(key and loc[:len(key)] == key for loc in locs)]
    return ", ".join(dict.fromkeys(reversed(found)))


def _suggestion(loc: Loc) -> str:
    model = model_at(loc[:-1])
    if model is None:
        return ""
    key = str(loc[-1])
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    # Right name, wrong section: e.g. "port" under workers.
    elsewhere = [".".join(k) for k in iter_keys() if k[-1] == key]
    return f" (did you mean '{elsewhere[0]}'?)" if elsewhere else ""
