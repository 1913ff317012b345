"""Lenient conversion of decoded JSON into the wire Structs, field by field.

The fast path decodes a whole page with strict typed Structs. When that fails on one node (a
label that is a number, a condition that is a string...), the page is decoded again with raw
items, and each rejected node goes through :func:`salvage`: every field that converts is kept,
every field that does not is replaced by its default and reported as a problem. One bad field
therefore never costs the node, and one bad node never costs the page.
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

import msgspec

__all__ = ["salvage"]

T = TypeVar("T", bound=msgspec.Struct)

_MAX_PROBLEMS_PER_OBJECT = 20


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _strip_optional(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _convert(value: Any, tp: Any, path: str, problems: list[str]) -> tuple[bool, Any]:
    """Convert ``value`` to ``tp``; on failure salvage the parts. Returns (usable, result)."""
    try:
        return True, msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        inner = _strip_optional(tp)
        if _is_struct(inner):
            if isinstance(value, dict):
                return True, salvage(value, inner, path, problems)
        elif typing.get_origin(inner) is list and isinstance(value, list):
            (item_tp,) = typing.get_args(inner)
            items = []
            for index, item in enumerate(value):
                ok, converted = _convert(item, item_tp, f"{path}[{index}]", problems)
                if ok:
                    items.append(converted)
            return True, items
        elif typing.get_origin(inner) is dict and isinstance(value, dict):
            _, value_tp = typing.get_args(inner)
            kept: dict[str, Any] = {}
            dropped = 0
            for key, item in value.items():
                try:
                    kept[key] = msgspec.convert(item, value_tp)
                except msgspec.ValidationError:
                    dropped += 1
            if dropped:
                _add(problems, f"{path}: dropped {dropped} entries of the wrong type")
            return True, kept
        _add(problems, f"{path}: expected {_describe(inner)}, got {_type_name(value)} ({exc})")
        return False, None


def _describe(tp: Any) -> str:
    if _is_struct(tp) or typing.get_origin(tp) is dict:
        return "object"
    if typing.get_origin(tp) is list:
        return "array"
    return getattr(tp, "__name__", str(tp))


def _add(problems: list[str], message: str) -> None:
    if len(problems) < _MAX_PROBLEMS_PER_OBJECT:
        problems.append(message)
    elif len(problems) == _MAX_PROBLEMS_PER_OBJECT:
        problems.append("more problems not shown")


def salvage(value: dict[str, Any], cls: type[T], path: str, problems: list[str]) -> T:
    """Build ``cls`` from a decoded JSON object, keeping every field that converts."""
    kwargs: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        if field.encode_name not in value:
            continue
        ok, converted = _convert(
            value[field.encode_name], field.type, f"{path}.{field.encode_name}", problems
        )
        if ok:
            kwargs[field.name] = converted
    return cls(**kwargs)
