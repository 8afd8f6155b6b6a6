"""Walking the configuration schema by key path: the model or type at ``server.port``, every leaf key. Used to
convert environment values per field, to suggest the key an operator meant, and to render the reference YAML.
Runs wherever configuration is read (daemon and CLI)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from tts_ops.config.schema import Config

Loc = tuple[Any, ...]


def unwrap(tp: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None`` (a field's annotation as the schema walks it)."""
    while typing.get_origin(tp) in (typing.Annotated, typing.Union, types.UnionType):
        tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
    return tp


def model_at(loc: Loc) -> type[BaseModel] | None:
    """The section model at a key path (``("engines", "fastspeech2_baker")``), None when the path ends elsewhere."""
    tp: Any = Config
    for part in loc:
        tp = unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def iter_keys(model: type[BaseModel] = Config, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf key of the schema as a dotted tuple, in declaration order."""
    for name, field in model.model_fields.items():
        sub = unwrap(field.annotation)
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from iter_keys(sub, prefix + (name,))
        else:
            yield prefix + (name,)
