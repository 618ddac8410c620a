"""Plain-JSON conversion for the optimizer's frozen dataclasses.

``to_plain`` turns a dataclass tree (tuples, floats, strings, nested dataclasses) into dicts and
lists; ``from_plain`` rebuilds it from the type hints, so every public type gets ``to_dict()`` /
``from_dict()`` without hand-written mappers that drift from the fields.

Unknown keys are an error (a typo in a problem file must not be dropped in silence), except
where stored data is read back (``strict=False``): a plan stored by a newer version, read by an
older replica during a rolling upgrade, loses only the fields that version does not know.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_plain(value: Any) -> Any:
    """Dataclass -> dict, tuple -> list, recursively; scalars pass through."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, value: Any, strict: bool = True) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(members[0], value, strict) if len(members) == 1 else value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, strict) for v in value)
        return tuple(_convert(a, v, strict) for a, v in zip(args, value, strict=True))
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {k: _convert(vt, v, strict) for k, v in value.items()}
    if origin is typing.Literal:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_plain(tp, value, strict=strict)
    if tp is float:
        return float(value)
    if tp is int:
        return int(value)
    if tp is bool:
        return bool(value)
    if tp is str:
        return str(value)
    return value


def from_plain(cls: type[T], data: dict[str, Any], *, strict: bool = True) -> T:
    """Rebuild ``cls`` from ``to_plain`` output; unknown keys are an error naming them, or with
    ``strict=False`` (stored data read back) left out, at every level."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)  # type: ignore[arg-type]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown and strict:
        raise TypeError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {k: _convert(hints[k], v, strict) for k, v in data.items() if k in names}
    return cls(**kwargs)
