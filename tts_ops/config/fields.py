"""Building blocks of the configuration models (``tts_ops.config.schema`` and ``tts_ops.config.engines``): the
strict frozen base section, path and duration field types, and cross-field errors the loader can place on a key.

Imported by the daemon and the CLI, wherever configuration is read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MIB = 1024 * 1024


def path_in(value: Any) -> Any:
    # Path("") is ".", which would silently write into the working directory; "~" is expanded for humans.
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty (use null for the default)")
        return Path(value).expanduser()
    return value


def as_tuple(value: Any) -> Any:
    # A YAML/JSON sequence is a list; the frozen model stores a tuple (strict mode would refuse the list).
    return tuple(value) if isinstance(value, list) else value


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def cross(at: str, message: str, *related: str) -> PydanticCustomError:
    # The loader appends ``at`` to the error's location, so cross-field errors name the exact key, and looks up
    # ``related`` keys (same base) to name the file or variable that set the other side of the conflict.
    return PydanticCustomError("cross_field", message, {"at": at, "related": ",".join(related)})


FilePath = Annotated[Path, BeforeValidator(path_in)]
Seconds = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    # Strict: a file saying ``count: true`` or ``port: "5000"`` is a mistake to report, not to coerce (an int is
    # still accepted where a float is expected). Environment values are strings by nature: config_load converts
    # them per field before validation. Subclasses inherit (and pydantic merges) this model_config.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_section(cls, data: Any) -> Any:
        # A YAML section whose keys are all commented out ("server:" alone) parses as null: treat as empty.
        return {} if data is None else data
