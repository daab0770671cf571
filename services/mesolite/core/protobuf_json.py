"""stout's JSON → protobuf conversion (3rdparty/stout/include/stout/protobuf.hpp), for the v1 APIs that parse a
call against its message and answer with the converter's words.

A message is described as a schema of fields (kind, required, repeated); ``convert`` walks the JSON the way stout
does: unknown keys and ``null`` are ignored, numbers and booleans may come as strings, an enum name that is not
known drops the field, a value of the wrong JSON type is ``Not expecting a JSON <type> for field '<name>'``, and
required fields left out are listed, with their paths, in ``Missing required fields: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONVERT = "Failed to convert JSON into Call protobuf"


class CallError(ValueError):
    """A call refused at the edge: ``status`` and Mesos' message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class F:
    """One protobuf field: its kind (``string``, ``int``, ``double``, ``bool``, ``enum``, ``map`` or a nested
    message schema), whether it is required or repeated, and for an enum its names."""

    kind: Any
    required: bool = False
    repeated: bool = False
    names: tuple[str, ...] = ()


Schema = Mapping[str, F]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _scalar(field: F, name: str, value: Any) -> Any:
    kind = field.kind
    wrong = CallError(f"{CONVERT}: Not expecting a JSON {_json_kind(value)} for field '{name}'")
    if isinstance(value, dict | list):
        raise wrong
    if kind == "string":
        if not isinstance(value, str):
            raise wrong
        return value
    if kind == "enum":
        if not isinstance(value, str):
            raise wrong
        return value if value in field.names else None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise wrong
    if isinstance(value, bool):
        raise wrong
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CallError(f"{CONVERT}: Failed to convert '{value}' to number for field '{name}'") from None
    if kind == "int":
        if number != number or number in (float("inf"), float("-inf")):
            raise CallError(f"{CONVERT}: Failed to convert '{value}' to number for field '{name}'")
        return int(number)
    return number


def _message(schema: Schema, obj: Any, path: str, missing: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in schema.items():
        value = obj.get(name)
        where = f"{path}{name}"
        if value is None:
            if field.required:
                missing.append(where)
            continue
        if field.names == ("map",):
            if not isinstance(value, dict):
                raise CallError(f"{CONVERT}: Not expecting a JSON {_json_kind(value)} for field '{name}'")
            out[name] = {k: _value(field, name, v, f"{where}[{k}].", missing) for k, v in value.items()}
        elif field.repeated:
            if not isinstance(value, list):
                raise CallError(f"{CONVERT}: Not expecting a JSON {_json_kind(value)} for field '{name}'")
            out[name] = [_value(field, name, v, f"{where}[{i}].", missing) for i, v in enumerate(value)]
        else:
            converted = _value(field, name, value, f"{where}.", missing)
            if converted is not None:
                out[name] = converted
    return out


def _value(field: F, name: str, value: Any, path: str, missing: list[str]) -> Any:
    if isinstance(field.kind, Mapping):
        if not isinstance(value, dict):
            raise CallError(f"{CONVERT}: Not expecting a JSON {_json_kind(value)} for field '{name}'")
        return _message(field.kind, value, path, missing)
    return _scalar(field, name, value)


def convert(schema: Schema, obj: Any, prefix: str = CONVERT) -> dict[str, Any]:
    """stout's JSON → protobuf conversion of ``obj`` against ``schema``: the converted message, or ``CallError``
    with ``<prefix>: ...`` (the v0 endpoints use their own prefixes, or none)."""
    if not isinstance(obj, dict):
        raise CallError(f"{prefix}: Expecting a JSON object" if prefix else "Expecting a JSON object")
    missing: list[str] = []
    try:
        out = _message(schema, obj, "", missing)
    except CallError as exc:
        detail = exc.message.removeprefix(f"{CONVERT}: ")
        raise CallError(f"{prefix}: {detail}" if prefix else detail) from None
    if missing:
        detail = f"Missing required fields: {', '.join(missing)}"
        raise CallError(f"{prefix}: {detail}" if prefix else detail)
    return out
