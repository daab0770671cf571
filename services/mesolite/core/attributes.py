"""Agent attributes (``--attributes``): free-form facts such as rack or OS that schedulers constrain on.

Unlike resources, attributes are not consumed, so there is no arithmetic; they only need parsing, the v1
``Attribute`` JSON used in offers and agent info, and the flattened v0 form shown by ``/master/state``
(``{"rack": "abc", "level": 10.0}``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mesolite.core.resources import (
    RANGES,
    SCALAR,
    RangeTuple,
    ResourceError,
    _format_ranges_compact,
    _json_number,
    _json_ranges,
    _json_type,
    format_number,
    format_ranges,
    normalize_ranges,
    parse_number,
    parse_ranges,
)

__all__ = ["RANGES", "SCALAR", "TEXT", "Attribute", "AttributeParseError", "Attributes"]

TEXT = "TEXT"
ATTRIBUTE_TYPES = frozenset({SCALAR, RANGES, TEXT})


class AttributeParseError(ValueError):
    """Raised for malformed attribute text or JSON; the message names the bad token or object."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """One named attribute value; normalised on construction so equal values compare equal."""

    name: str
    type: str  # "SCALAR" | "RANGES" | "TEXT"
    scalar: float = 0.0
    ranges: RangeTuple = ()
    text: str = ""

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.strip():
            raise AttributeParseError(f"Attribute name must be a non-empty string, got {name!r}")
        what = f"Attribute '{name}'"
        if self.type not in ATTRIBUTE_TYPES:
            raise AttributeParseError(f"{what}: unsupported type {self.type!r} (expected SCALAR, RANGES or TEXT)")
        scalar: float = 0.0
        ranges: tuple[tuple[int, int], ...] = ()
        text = ""
        if self.type == SCALAR:
            if self.ranges or self.text:
                raise AttributeParseError(f"{what}: a SCALAR attribute cannot carry ranges or text")
            if isinstance(self.scalar, bool) or not isinstance(self.scalar, int | float):
                raise AttributeParseError(f"{what}: scalar value must be a number, got {self.scalar!r}")
            scalar = float(self.scalar)
            if not math.isfinite(scalar):
                raise AttributeParseError(f"{what}: NaN and infinite scalar values are not allowed")
            scalar += 0.0  # fold -0.0 into 0.0 so the text form round trips to an identical value
        elif self.type == RANGES:
            if self.scalar or self.text:
                raise AttributeParseError(f"{what}: a RANGES attribute cannot carry a scalar or text")
            try:
                ranges = normalize_ranges(self.ranges)
            except ResourceError as exc:
                raise AttributeParseError(f"{what}: {exc}") from None
        else:
            if self.scalar or self.ranges:
                raise AttributeParseError(f"{what}: a TEXT attribute cannot carry a scalar or ranges")
            if not isinstance(self.text, str):
                raise AttributeParseError(f"{what}: text value must be a string, got {self.text!r}")
            text = self.text
        object.__setattr__(self, "scalar", scalar)
        object.__setattr__(self, "ranges", ranges)
        object.__setattr__(self, "text", text)

    def value_text(self) -> str:
        if self.type == SCALAR:
            return format_number(self.scalar)
        if self.type == RANGES:
            return _format_ranges_compact(self.ranges)
        return self.text

    def value_v0(self) -> float | str:
        """The value as ``/master/state`` shows it: float, text, or ``"[a-b, c-d]"``."""
        if self.type == SCALAR:
            return self.scalar
        if self.type == RANGES:
            return format_ranges(self.ranges)
        return self.text

    def __str__(self) -> str:
        return f"{self.name}:{self.value_text()}"

    def to_v1(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == SCALAR:
            obj["scalar"] = {"value": self.scalar}
        elif self.type == RANGES:
            obj["ranges"] = {"range": [{"begin": begin, "end": end} for begin, end in self.ranges]}
        else:
            obj["text"] = {"value": self.text}
        return obj


def _parse_token(token: str) -> Attribute:
    def bad(reason: str) -> AttributeParseError:
        return AttributeParseError(f"Bad attribute token '{token}': {reason}")

    # Only the first ':' separates: text values such as URLs may contain more.
    name, sep, raw_value = token.partition(":")
    if not sep:
        raise bad("missing ':'")
    name, value = name.strip(), raw_value.strip()
    if not name:
        raise bad("missing attribute name")
    if not value:
        raise bad("missing value")
    if value.startswith("{"):
        raise bad("sets are not allowed for attributes")
    if value.startswith("["):
        try:
            return Attribute(name, RANGES, ranges=parse_ranges(value))
        except (ResourceError, AttributeParseError) as exc:
            raise bad(str(exc)) from None
    number = parse_number(value)
    if number is not None:
        if not math.isfinite(number):
            raise bad("infinite values are not allowed")
        return Attribute(name, SCALAR, scalar=number)
    return Attribute(name, TEXT, text=value)


def _attribute_from_v1(obj: Any, index: int) -> Attribute:
    what = f"Attribute #{index}"
    if not isinstance(obj, Mapping):
        raise AttributeParseError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AttributeParseError(f"{what}: 'name' must be a non-empty string")
    what = f"Attribute #{index} ('{name}')"
    try:
        atype = _json_type(obj, what)
        if atype not in ATTRIBUTE_TYPES:
            raise AttributeParseError(f"{what}: {atype} values are not allowed for attributes")
        payload_key = atype.lower()
        if payload_key not in obj:
            raise AttributeParseError(f"{what}: type {atype} but no '{payload_key}' value")
        payload = obj[payload_key]
        if atype == RANGES:
            return Attribute(name, RANGES, ranges=_json_ranges(payload, what))
        if not isinstance(payload, Mapping) or "value" not in payload:
            raise AttributeParseError(f"{what}: '{payload_key}' must be an object like {{\"value\": ...}}")
        if atype == SCALAR:
            return Attribute(name, SCALAR, scalar=_json_number(payload["value"], what))
        if not isinstance(payload["value"], str):
            raise AttributeParseError(f"{what}: 'text.value' must be a string")
        return Attribute(name, TEXT, text=payload["value"])
    except ResourceError as exc:
        raise AttributeParseError(str(exc)) from None
    except AttributeParseError as exc:
        if str(exc).startswith(what):
            raise
        raise AttributeParseError(f"{what}: {exc}") from None


class Attributes:
    """An ordered list of attributes, compared as a multiset (as Mesos' ``Attributes::operator==`` does).

    Duplicate names are kept, as upstream allows them: ``get`` returns the first, while ``flatten``
    lets the last one win, mirroring how the v0 JSON object is filled in.
    """

    __slots__ = ("_items",)

    _items: tuple[Attribute, ...]

    def __init__(self, items: Iterable[Attribute] = ()) -> None:
        collected = tuple(items)
        for item in collected:
            if not isinstance(item, Attribute):
                raise TypeError(f"Attributes holds Attribute objects, got {type(item).__name__}")
        self._items = collected

    @classmethod
    def parse(cls, text: str) -> Attributes:
        """Parse an agent ``--attributes`` value: ``name:value`` tokens separated by ';' or newlines."""
        if not isinstance(text, str):
            raise AttributeParseError(f"Attributes text must be a string, got {type(text).__name__}")
        tokens = (token.strip() for line in text.splitlines() for token in line.split(";"))
        return cls(_parse_token(token) for token in tokens if token)

    @classmethod
    def from_v1(cls, objs: list[dict[str, Any]]) -> Attributes:
        if not isinstance(objs, list | tuple):
            raise AttributeParseError(f"Expected a JSON array of Attribute objects, got {type(objs).__name__}")
        return cls(_attribute_from_v1(obj, index) for index, obj in enumerate(objs))

    def to_v1(self) -> list[dict[str, Any]]:
        return [item.to_v1() for item in self._items]

    def flatten(self) -> dict[str, float | str]:
        return {item.name: item.value_v0() for item in self._items}

    def get(self, name: str) -> Attribute | None:
        for item in self._items:
            if item.name == name:
                return item
        return None

    def __str__(self) -> str:
        return ";".join(str(item) for item in self._items)

    def __repr__(self) -> str:
        return f"Attributes({str(self)!r})"

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attributes):
            return NotImplemented
        return Counter(self._items) == Counter(other._items)

    def __hash__(self) -> int:
        return hash(frozenset(Counter(self._items).items()))
