"""The Mesos resource model: parsing, printing, arithmetic and the two JSON dialects.

Mesos describes what an agent offers as named, typed values (``cpus:2``, ``ports:[31000-32000]``,
``disks:{a,b}``) that may be reserved for a role. The master, the allocator and the agents all need the
same arithmetic over them, and two wire forms: full v1 ``Resource`` objects for the HTTP APIs and the
"flattened" v0 dictionaries that ``/master/state`` consumers (Mesos-DNS, the web UI) parse.

Scalars use Mesos' fixed-point convention (three decimal places, rounded half away from zero), and all
scalar arithmetic is done on integer thousandths, so ``(a + b) - b == a`` holds exactly instead of
drifting the way binary floating point would.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "RANGES",
    "SCALAR",
    "SET",
    "STANDARD_SCALARS",
    "UNRESERVED",
    "Resource",
    "ResourceError",
    "Resources",
    "format_number",
    "format_ranges",
    "normalize_ranges",
    "parse_number",
    "parse_ranges",
    "validate_role",
]

SCALAR = "SCALAR"
RANGES = "RANGES"
SET = "SET"
RESOURCE_TYPES = frozenset({SCALAR, RANGES, SET})
UNRESERVED = "*"
# /master/state always reports these, even when an agent has none (src/common/http.cpp).
STANDARD_SCALARS = ("cpus", "gpus", "mem", "disk")

# protobuf JSON allows enum numbers as well as names (mesos.proto Value.Type).
_VALUE_TYPE_NUMBERS = {0: SCALAR, 1: RANGES, 2: SET, 3: "TEXT"}
_RESERVATION_TYPES = frozenset({"STATIC", "DYNAMIC"})
_MAX_BOUND = 2**64 - 1  # Mesos range bounds are uint64.

Range = tuple[int, int]
RangeTuple = tuple[Range, ...]
# A v1 ReservationInfo dict frozen into sorted (key, frozen value) items so Resource stays hashable.
ReservationEntry = tuple[tuple[str, Any], ...]
_Key = tuple[str, str, str, tuple[ReservationEntry, ...]]

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RANGE_RE = re.compile(r"([0-9]+)-([0-9]+)")
_JSON_START_RE = re.compile(r"\[\s*[{\]]")
_NAME_ROLE_RE = re.compile(r"([^()]*?)\s*(?:\(([^()]*)\))?")
_ROLE_FORBIDDEN_RE = re.compile(r"[\s\x00-\x1f\x7f():;]")


class ResourceError(ValueError):
    """Raised for malformed text or JSON; the message names the bad token, e.g.
    "Bad resource token 'cpus=2': missing or extra ':'"."""


# ---------------------------------------------------------------------------------------------------------
# Numbers


def parse_number(text: str) -> float | None:
    """Return the decimal number spelled by ``text``, or None when it is not one.

    Deliberately stricter than ``float()``: Mesos (boost ``lexical_cast``) does not accept ``1_000``,
    ``nan`` or ``inf`` as numbers, so neither do we; such strings are text values instead.
    """
    candidate = text.strip()
    if not _NUMBER_RE.fullmatch(candidate):
        return None
    return float(candidate)


def format_number(value: float) -> str:
    """Print a number the way the text grammar reads it back, without a noisy trailing ``.0``."""
    if value.is_integer():
        return str(int(value))
    return repr(value)


def _to_milli(value: float) -> int:
    # Mesos stores scalars as int64 thousandths via llround(value * 1000): half away from zero.
    scaled = value * 1000.0
    return math.floor(scaled + 0.5) if scaled >= 0 else -math.floor(-scaled + 0.5)


def _from_milli(milli: int) -> float:
    return milli / 1000


def _check_scalar(value: Any, what: str) -> float:
    """Validate and fixed-point-round a scalar; Mesos rejects negative, NaN and infinite values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResourceError(f"{what}: scalar value must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ResourceError(f"{what}: NaN and infinite scalar values are not allowed")
    if number < 0:
        raise ResourceError(f"{what}: negative scalar values are not allowed")
    return _from_milli(_to_milli(number))


# ---------------------------------------------------------------------------------------------------------
# Ranges: sorted tuples of inclusive, non-overlapping, non-adjacent (begin, end) pairs.


def _check_bound(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResourceError(f"{what}: range bounds must be integers, got {value!r}")
    if not 0 <= value <= _MAX_BOUND:
        raise ResourceError(f"{what}: range bound {value} is outside 0..2^64-1")
    return value


def _coalesce(sorted_pairs: Iterable[Range]) -> RangeTuple:
    """Merge overlapping and adjacent ranges; input must already be sorted by begin."""
    out: list[Range] = []
    for begin, end in sorted_pairs:
        if out and begin <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((begin, end))
    return tuple(out)


def normalize_ranges(ranges: Iterable[Sequence[int]]) -> RangeTuple:
    """Validate and bring any collection of (begin, end) pairs into the canonical sorted, merged form.

    Adjacent ranges are merged too (``[1-2,3-4]`` is ``[1-4]``), as Mesos does, so that equal port sets
    always compare equal.
    """
    if isinstance(ranges, str | bytes):
        raise ResourceError(f"Bad ranges {ranges!r}: expected (begin, end) pairs, not a string")
    pairs: list[Range] = []
    for item in ranges:
        if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
            raise ResourceError(f"Bad range {item!r}: expected a (begin, end) pair")
        begin = _check_bound(item[0], f"Bad range {item!r}")
        end = _check_bound(item[1], f"Bad range {item!r}")
        if begin > end:
            raise ResourceError(f"Bad range {begin}-{end}: begin is greater than end")
        pairs.append((begin, end))
    pairs.sort()
    return _coalesce(pairs)


def _ranges_union(a: RangeTuple, b: RangeTuple) -> RangeTuple:
    if not a:
        return b
    if not b:
        return a
    return _coalesce(heapq.merge(a, b))


def _ranges_difference(a: RangeTuple, b: RangeTuple) -> RangeTuple:
    """a minus b for normalised inputs, in one linear sweep."""
    if not a or not b:
        return a
    out: list[Range] = []
    j, nb = 0, len(b)
    for begin, end in a:
        cur = begin
        while j < nb and b[j][1] < cur:
            j += 1
        k = j
        while k < nb and b[k][0] <= end:
            hole_begin, hole_end = b[k]
            if hole_begin > cur:
                out.append((cur, hole_begin - 1))
            cur = max(cur, hole_end + 1)
            if cur > end:
                break
            k += 1
        if cur <= end:
            out.append((cur, end))
    return tuple(out)


def _ranges_contain(a: RangeTuple, b: RangeTuple) -> bool:
    """Whether b ⊆ a; relies on a being coalesced, so each range of b must sit inside one range of a."""
    i, na = 0, len(a)
    for begin, end in b:
        while i < na and a[i][1] < begin:
            i += 1
        if i == na or a[i][0] > begin or a[i][1] < end:
            return False
    return True


def parse_ranges(text: str) -> RangeTuple:
    """Parse ``[a-b,c-d]`` (whitespace anywhere is ignored) into the canonical form."""
    if not isinstance(text, str):
        raise ResourceError(f"Bad ranges {text!r}: expected a string")
    compact = "".join(text.split())
    if len(compact) < 2 or compact[0] != "[" or compact[-1] != "]":
        raise ResourceError(f"Bad ranges '{text}': expected '[begin-end,...]'")
    body = compact[1:-1]
    if not body:
        return ()
    pairs: list[Range] = []
    for piece in body.split(","):
        match = _RANGE_RE.fullmatch(piece)
        if match is None:
            raise ResourceError(
                f"Bad ranges '{text}': bad range '{piece}', expected 'begin-end' with non-negative integers"
            )
        begin, end = int(match[1]), int(match[2])
        if begin > end:
            raise ResourceError(f"Bad ranges '{text}': range '{piece}' has begin greater than end")
        if end > _MAX_BOUND:
            raise ResourceError(f"Bad ranges '{text}': range '{piece}' is outside 0..2^64-1")
        pairs.append((begin, end))
    pairs.sort()
    return _coalesce(pairs)


def format_ranges(ranges: Iterable[Sequence[int]]) -> str:
    """The v0 style Mesos-DNS parses: ``[31000-31005, 31010-31010]`` (a single port is ``a-a``)."""
    return "[" + ", ".join(f"{begin}-{end}" for begin, end in ranges) + "]"


def _format_ranges_compact(ranges: RangeTuple) -> str:
    return "[" + ",".join(f"{begin}-{end}" for begin, end in ranges) + "]"


# ---------------------------------------------------------------------------------------------------------
# Roles and reservations


@lru_cache(maxsize=4096)
def _role_problem(role: str) -> str | None:
    if role == UNRESERVED:
        return None
    if not role:
        return "role must not be empty"
    if _ROLE_FORBIDDEN_RE.search(role):
        return "role must not contain whitespace, control characters or any of '():;'"
    for component in role.split("/"):
        if not component:
            return "role must not start or end with '/' or contain '//'"
        if component in (".", "..", UNRESERVED):
            return f"role path component '{component}' is not allowed"
        if component.startswith("-"):
            return "role path components must not start with '-'"
    return None


def validate_role(role: Any) -> str:
    """Check a role name against the Mesos rules (``docs/roles.md``) and return it.

    Beyond upstream we also refuse ``(``, ``)``, ``:`` and ``;`` because they would make the text form
    ambiguous.
    """
    if not isinstance(role, str):
        raise ResourceError(f"Bad role {role!r}: must be a string")
    problem = _role_problem(role)
    if problem is not None:
        raise ResourceError(f"Bad role '{role}': {problem}")
    return role


def _freeze(value: Any) -> Any:
    # Tagged so thawing is unambiguous: JSON never produces tuples itself.
    if isinstance(value, Mapping):
        return ("d", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("l", tuple(_freeze(v) for v in value))
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        tag, payload = value
        if tag == "d":
            return {k: _thaw(v) for k, v in payload}
        return [_thaw(v) for v in payload]
    return value


def _freeze_entry(entry: Mapping[str, Any]) -> ReservationEntry:
    return tuple(sorted((str(k), _freeze(v)) for k, v in entry.items()))


def _thaw_entry(entry: ReservationEntry) -> dict[str, Any]:
    return {k: _thaw(v) for k, v in entry}


def _canonical_reservations(raw: Any, role: str, what: str) -> tuple[ReservationEntry, ...]:
    """Validate a reservation stack and reduce the plain static one to ``()``.

    A single STATIC reservation for the resource's own role carries no more information than the role
    itself, so it is stored as ``()``; that makes ``cpus(prod):1`` parsed from text and the same
    resource received as v1 JSON compare equal.
    """
    if not raw:
        return ()
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
        raise ResourceError(f"{what}: 'reservations' must be a list of reservation objects")
    entries: list[ReservationEntry] = []
    last_role = None
    for entry in raw:
        if isinstance(entry, Mapping):
            as_dict = dict(entry)
        elif isinstance(entry, tuple):
            try:
                as_dict = _thaw_entry(entry)
            except (TypeError, ValueError):
                raise ResourceError(f"{what}: malformed frozen reservation {entry!r}") from None
        else:
            raise ResourceError(f"{what}: each reservation must be an object, got {entry!r}")
        reservation_role = as_dict.get("role")
        if not isinstance(reservation_role, str) or reservation_role == UNRESERVED:
            raise ResourceError(f"{what}: each reservation needs a 'role' other than '*'")
        problem = _role_problem(reservation_role)
        if problem is not None:
            raise ResourceError(f"{what}: bad reservation role '{reservation_role}': {problem}")
        as_dict.setdefault("type", "STATIC")
        if as_dict["type"] not in _RESERVATION_TYPES:
            raise ResourceError(f"{what}: reservation type must be STATIC or DYNAMIC, got {as_dict['type']!r}")
        entries.append(_freeze_entry(as_dict))
        last_role = reservation_role
    if last_role != role:
        raise ResourceError(f"{what}: role '{role}' differs from the last reservation's role '{last_role}'")
    if len(entries) == 1 and entries[0] == (("role", role), ("type", "STATIC")):
        return ()
    return tuple(entries)


# ---------------------------------------------------------------------------------------------------------
# Resource


@dataclass(frozen=True, slots=True)
class Resource:
    """One typed, possibly reserved, resource value; normalised on construction so equal values are equal."""

    name: str
    type: str  # "SCALAR" | "RANGES" | "SET"
    scalar: float = 0.0
    ranges: RangeTuple = ()
    set: frozenset[str] = frozenset()
    role: str = UNRESERVED
    # v1 ReservationInfo stack (refinement order, last = effective role), frozen; () = none or plain static.
    reservations: tuple[ReservationEntry, ...] = ()

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.strip():
            raise ResourceError(f"Resource name must be a non-empty string, got {name!r}")
        what = f"Resource '{name}'"
        if self.type not in RESOURCE_TYPES:
            raise ResourceError(f"{what}: unsupported type {self.type!r} (expected SCALAR, RANGES or SET)")
        try:
            validate_role(self.role)
        except ResourceError as exc:
            raise ResourceError(f"{what}: {exc}") from None
        scalar: float = 0.0
        ranges: tuple[tuple[int, int], ...] = ()
        items: frozenset[str] = frozenset()
        if self.type == SCALAR:
            if self.ranges or self.set:
                raise ResourceError(f"{what}: a SCALAR resource cannot carry ranges or set items")
            scalar = _check_scalar(self.scalar, what)
        elif self.type == RANGES:
            if self.scalar or self.set:
                raise ResourceError(f"{what}: a RANGES resource cannot carry a scalar or set items")
            try:
                ranges = normalize_ranges(self.ranges)
            except ResourceError as exc:
                raise ResourceError(f"{what}: {exc}") from None
        else:
            if self.scalar or self.ranges:
                raise ResourceError(f"{what}: a SET resource cannot carry a scalar or ranges")
            if isinstance(self.set, str | bytes):
                raise ResourceError(f"{what}: set items must be a collection of strings, not a string")
            items = frozenset(self.set)
            if not all(isinstance(item, str) for item in items):
                raise ResourceError(f"{what}: set items must be strings")
        reservations = _canonical_reservations(self.reservations, self.role, what)
        object.__setattr__(self, "scalar", scalar)
        object.__setattr__(self, "ranges", ranges)
        object.__setattr__(self, "set", items)
        object.__setattr__(self, "reservations", reservations)

    @classmethod
    def _raw(
        cls,
        name: str,
        type_: str,
        scalar: float,
        ranges: RangeTuple,
        items: frozenset[str],
        role: str,
        reservations: tuple[ReservationEntry, ...],
    ) -> Resource:
        """Build from already-normalised parts; arithmetic results skip re-validation for speed."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "name", name)
        object.__setattr__(obj, "type", type_)
        object.__setattr__(obj, "scalar", scalar)
        object.__setattr__(obj, "ranges", ranges)
        object.__setattr__(obj, "set", items)
        object.__setattr__(obj, "role", role)
        object.__setattr__(obj, "reservations", reservations)
        return obj

    def _with(self, scalar: float = 0.0, ranges: RangeTuple = (), items: frozenset[str] = frozenset()) -> Resource:
        return Resource._raw(self.name, self.type, scalar, ranges, items, self.role, self.reservations)

    def _key(self) -> _Key:
        return (self.name, self.type, self.role, self.reservations)

    def is_empty(self) -> bool:
        """Zero scalars, no ranges and empty sets carry nothing and are dropped from collections."""
        if self.type == SCALAR:
            return self.scalar == 0.0
        if self.type == RANGES:
            return not self.ranges
        return not self.set

    def value_text(self) -> str:
        """The value half of the text form (``2``, ``[1-2,5-5]``, ``{a,b}``)."""
        if self.type == SCALAR:
            return format_number(self.scalar)
        if self.type == RANGES:
            return _format_ranges_compact(self.ranges)
        return "{" + ",".join(sorted(self.set)) + "}"

    def __str__(self) -> str:
        prefix = self.name if self.role == UNRESERVED else f"{self.name}({self.role})"
        return f"{prefix}:{self.value_text()}"

    def to_v1(self, allocation_role: str | None = None) -> dict[str, Any]:
        """The v1 ``Resource`` object, with both the deprecated ``role`` and the ``reservations`` stack."""
        obj: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == SCALAR:
            obj["scalar"] = {"value": float(self.scalar)}
        elif self.type == RANGES:
            obj["ranges"] = {"range": [{"begin": begin, "end": end} for begin, end in self.ranges]}
        else:
            obj["set"] = {"item": sorted(self.set)}
        obj["role"] = self.role
        if self.reservations:
            obj["reservations"] = [_thaw_entry(entry) for entry in self.reservations]
        elif self.role != UNRESERVED:
            obj["reservations"] = [{"type": "STATIC", "role": self.role}]
        if allocation_role is not None:
            obj["allocation_info"] = {"role": allocation_role}
        return obj


def _combine(a: Resource, b: Resource) -> Resource:
    if a.type == SCALAR:
        return a._with(scalar=_from_milli(_to_milli(a.scalar) + _to_milli(b.scalar)))
    if a.type == RANGES:
        return a._with(ranges=_ranges_union(a.ranges, b.ranges))
    return a._with(items=a.set | b.set)


def _difference(a: Resource, b: Resource) -> Resource:
    if a.type == SCALAR:
        return a._with(scalar=_from_milli(max(0, _to_milli(a.scalar) - _to_milli(b.scalar))))
    if a.type == RANGES:
        return a._with(ranges=_ranges_difference(a.ranges, b.ranges))
    return a._with(items=a.set - b.set)


def _covers(a: Resource, b: Resource) -> bool:
    if a.type == SCALAR:
        return _to_milli(a.scalar) >= _to_milli(b.scalar)
    if a.type == RANGES:
        return _ranges_contain(a.ranges, b.ranges)
    return b.set <= a.set


# ---------------------------------------------------------------------------------------------------------
# Parsing helpers


def _parse_text_token(token: str, default_role: str) -> Resource:
    def bad(reason: str) -> ResourceError:
        return ResourceError(f"Bad resource token '{token}': {reason}")

    if token.count(":") != 1:
        raise bad("missing or extra ':'")
    left, raw_value = token.split(":")
    match = _NAME_ROLE_RE.fullmatch(left.strip())
    if match is None:
        raise bad("malformed role, expected 'name(role):value'")
    name, role = match[1], match[2]
    if not name:
        raise bad("missing resource name")
    if role is None:
        role = default_role
    else:
        role = role.strip()
        problem = _role_problem(role)
        if problem is not None:
            raise bad(problem)
    value = raw_value.strip()
    if not value:
        raise bad("missing value")
    if value.startswith("[") or value.startswith("{"):
        try:
            if value.startswith("["):
                return Resource(name, RANGES, ranges=parse_ranges(value), role=role)
            return Resource(name, SET, set=_parse_set(value), role=role)
        except ResourceError as exc:
            raise bad(str(exc)) from None
    number = parse_number(value)
    if number is None:
        try:
            special = not math.isfinite(float(value))  # "nan", "inf", "infinity"
        except ValueError:
            special = False
        raise bad("NaN and infinite values are not allowed" if special else "text values are not allowed for resources")
    if number < 0:
        raise bad("negative values are not allowed")
    if not math.isfinite(number):
        raise bad("NaN and infinite values are not allowed")
    try:
        return Resource(name, SCALAR, scalar=number, role=role)
    except ResourceError as exc:
        raise bad(str(exc)) from None


def _parse_set(text: str) -> frozenset[str]:
    if not text.endswith("}"):
        raise ResourceError(f"Bad set '{text}': expected '{{item,...}}'")
    body = text[1:-1].strip()
    if not body:
        return frozenset()
    items = [item.strip() for item in body.split(",")]
    for item in items:
        if not item or any(ch in item for ch in "{}[]"):
            raise ResourceError(f"Bad set '{text}': bad item '{item}'")
    return frozenset(items)


def _json_number(value: Any, what: str) -> float:
    """A JSON scalar; numeric strings are accepted too, as protobuf's JSON mapping allows."""
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            raise ResourceError(f"{what}: expected a number, got {value!r}")
        return number
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResourceError(f"{what}: expected a number, got {value!r}")
    return float(value)


def _json_int(value: Any, what: str) -> int:
    """A JSON uint64; proto3 JSON encodes 64-bit integers as strings, and some clients send ``1.0``."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResourceError(f"{what}: expected an integer, got {value!r}")
    return value


def _json_ranges(value: Any, what: str) -> RangeTuple:
    if not isinstance(value, Mapping):
        raise ResourceError(f"{what}: 'ranges' must be an object like {{\"range\": [...]}}")
    items = value.get("range", [])
    if not isinstance(items, list):
        raise ResourceError(f"{what}: 'ranges.range' must be a list")
    pairs: list[Range] = []
    for item in items:
        if not isinstance(item, Mapping) or "begin" not in item or "end" not in item:
            raise ResourceError(f"{what}: each range must be an object with 'begin' and 'end', got {item!r}")
        pairs.append((_json_int(item["begin"], what), _json_int(item["end"], what)))
    try:
        return normalize_ranges(pairs)
    except ResourceError as exc:
        raise ResourceError(f"{what}: {exc}") from None


def _json_type(obj: Mapping[str, Any], what: str) -> str:
    """The value type name, inferred from the payload key when ``type`` is absent."""
    raw = obj.get("type")
    if raw is None:
        present = [key for key in ("scalar", "ranges", "set", "text") if key in obj]
        if len(present) != 1:
            raise ResourceError(
                f"{what}: 'type' is missing and cannot be inferred "
                "(expected exactly one of 'scalar', 'ranges', 'set', 'text')"
            )
        return present[0].upper()
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = _VALUE_TYPE_NUMBERS.get(raw, raw)
    if not isinstance(raw, str) or raw not in _VALUE_TYPE_NUMBERS.values():
        raise ResourceError(f"{what}: unknown type {raw!r}")
    return raw


def _resource_from_v1(obj: Any, index: int, default_role: str) -> Resource:
    what = f"Resource #{index}"
    if not isinstance(obj, Mapping):
        raise ResourceError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ResourceError(f"{what}: 'name' must be a non-empty string")
    what = f"Resource #{index} ('{name}')"
    rtype = _json_type(obj, what)
    if rtype not in RESOURCE_TYPES:
        raise ResourceError(f"{what}: {rtype} values are not allowed for resources")
    payload_key = rtype.lower()
    if payload_key not in obj:
        raise ResourceError(f"{what}: type {rtype} but no '{payload_key}' value")
    payload = obj[payload_key]
    scalar: float = 0.0
    ranges: tuple[tuple[int, int], ...] = ()
    items: frozenset[str] = frozenset()
    if rtype == SCALAR:
        if not isinstance(payload, Mapping) or "value" not in payload:
            raise ResourceError(f"{what}: 'scalar' must be an object like {{\"value\": 1.0}}")
        scalar = _json_number(payload["value"], what)
    elif rtype == RANGES:
        ranges = _json_ranges(payload, what)
    else:
        if not isinstance(payload, Mapping):
            raise ResourceError(f"{what}: 'set' must be an object like {{\"item\": [...]}}")
        raw_items = payload.get("item", [])
        if not isinstance(raw_items, list) or not all(isinstance(i, str) for i in raw_items):
            raise ResourceError(f"{what}: 'set.item' must be a list of strings")
        items = frozenset(raw_items)

    reservations = obj.get("reservations")
    if reservations is not None and not isinstance(reservations, list):
        raise ResourceError(f"{what}: 'reservations' must be a list")
    if reservations:
        last = reservations[-1]
        if not isinstance(last, Mapping) or not isinstance(last.get("role"), str):
            raise ResourceError(f"{what}: each reservation must be an object with a string 'role'")
        role = last["role"]
    else:
        role = obj.get("role", default_role)
        if not isinstance(role, str):
            raise ResourceError(f"{what}: 'role' must be a string")
        old = obj.get("reservation")
        # Pre-1.4 format: a non-'*' role plus a `reservation` object means a dynamic reservation.
        if isinstance(old, Mapping) and role != UNRESERVED:
            extra = {k: v for k, v in old.items() if k in ("principal", "labels")}
            reservations = [{"type": "DYNAMIC", "role": role, **extra}]
    try:
        return Resource(name, rtype, scalar, ranges, items, role, tuple(reservations or ()))
    except ResourceError as exc:
        raise ResourceError(f"{what}: {exc}") from None


def _check_consistent_types(resources: Resources) -> None:
    # Mesos refuses e.g. "cpus:1;cpus:[1-2]": scalar()/ranges() and the v0 view would be ambiguous.
    seen: dict[str, str] = {}
    for resource in resources:
        previous = seen.setdefault(resource.name, resource.type)
        if previous != resource.type:
            raise ResourceError(f"Resources with the same name ('{resource.name}') but different types are not allowed")


# ---------------------------------------------------------------------------------------------------------
# Resources


class Resources:
    """An immutable collection of resources, merged per (name, type, role, reservations).

    Entries are kept in a dict so that ``+``, ``-`` and ``contains`` are linear in the number of
    entries: the allocator runs them for every agent on every allocation cycle. Iteration follows
    insertion order, which is deterministic and makes ``str(Resources.parse(s)) == s`` for canonical
    text.
    """

    __slots__ = ("_items",)

    _items: dict[_Key, Resource]

    def __init__(self, items: Iterable[Resource] = ()) -> None:
        merged: dict[_Key, Resource] = {}
        for resource in items:
            if not isinstance(resource, Resource):
                raise TypeError(f"Resources holds Resource objects, got {type(resource).__name__}")
            if resource.is_empty():
                continue
            key = resource._key()
            existing = merged.get(key)
            merged[key] = resource if existing is None else _combine(existing, resource)
        self._items = merged

    @classmethod
    def _wrap(cls, items: dict[_Key, Resource]) -> Resources:
        obj = object.__new__(cls)
        obj._items = items
        return obj

    # -- construction from the wire ---------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, default_role: str = UNRESERVED) -> Resources:
        """Parse an agent ``--resources`` value: the ``name(role):value;...`` text or a v1 JSON array."""
        if not isinstance(text, str):
            raise ResourceError(f"Resources text must be a string, got {type(text).__name__}")
        validate_role(default_role)
        stripped = text.strip()
        if not stripped:
            return cls()
        if _JSON_START_RE.match(stripped):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError as exc:
                shown = stripped if len(stripped) <= 200 else stripped[:200] + "..."
                raise ResourceError(f"Bad resources JSON '{shown}': {exc}") from None
            return cls.from_v1(data, default_role=default_role)
        result = cls(_parse_text_token(token.strip(), default_role) for token in stripped.split(";") if token.strip())
        _check_consistent_types(result)
        return result

    @classmethod
    def from_v1(cls, objs: list[dict[str, Any]], default_role: str = UNRESERVED) -> Resources:
        """Build from v1 ``Resource`` JSON objects; ``allocation_info`` and unknown keys are ignored."""
        if not isinstance(objs, list | tuple):
            raise ResourceError(f"Expected a JSON array of Resource objects, got {type(objs).__name__}")
        result = cls(_resource_from_v1(obj, index, default_role) for index, obj in enumerate(objs))
        _check_consistent_types(result)
        return result

    # -- wire forms ---------------------------------------------------------------------------------------

    def to_v1(self, allocation_role: str | None = None) -> list[dict[str, Any]]:
        return [resource.to_v1(allocation_role) for resource in self._items.values()]

    def flatten(self) -> dict[str, Any]:
        """The v0 view of ``/master/state``: one value per name, summed across roles."""
        milli: dict[str, int] = {name: 0 for name in STANDARD_SCALARS}
        ranges: dict[str, RangeTuple] = {}
        sets: dict[str, frozenset[str]] = {}
        kinds: dict[str, str] = {name: SCALAR for name in STANDARD_SCALARS}
        for resource in self._items.values():
            name = resource.name
            if kinds.setdefault(name, resource.type) != resource.type:
                continue  # mixed types for one name cannot be shown in one v0 value; first type wins
            if resource.type == SCALAR:
                milli[name] = milli.get(name, 0) + _to_milli(resource.scalar)
            elif resource.type == RANGES:
                ranges[name] = _ranges_union(ranges.get(name, ()), resource.ranges)
            else:
                sets[name] = sets.get(name, frozenset()) | resource.set
        out: dict[str, Any] = {}
        for name, kind in kinds.items():
            if kind == SCALAR:
                out[name] = _from_milli(milli[name])
            elif kind == RANGES:
                out[name] = format_ranges(ranges[name])
            else:
                out[name] = "{" + ", ".join(sorted(sets[name])) + "}"
        return out

    def __str__(self) -> str:
        return ";".join(str(resource) for resource in self._items.values())

    def __repr__(self) -> str:
        return f"Resources({str(self)!r})"

    # -- arithmetic ---------------------------------------------------------------------------------------

    def __add__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        if not other._items:
            return self
        merged = dict(self._items)
        for key, resource in other._items.items():
            existing = merged.get(key)
            merged[key] = resource if existing is None else _combine(existing, resource)
        return Resources._wrap(merged)

    def __sub__(self, other: Resources) -> Resources:
        """Per entry: scalars floor at zero, ranges and sets take the set difference."""
        if not isinstance(other, Resources):
            return NotImplemented
        if not other._items:
            return self
        theirs = other._items
        result: dict[_Key, Resource] = {}
        for key, resource in self._items.items():
            taken = theirs.get(key)
            if taken is None:
                result[key] = resource
                continue
            remaining = _difference(resource, taken)
            if not remaining.is_empty():
                result[key] = remaining
        return Resources._wrap(result)

    def contains(self, other: Resources) -> bool:
        """Whether ``other`` ⊆ ``self``; reserved resources only satisfy the same reservation."""
        mine = self._items
        for key, wanted in other._items.items():
            have = mine.get(key)
            if have is None or not _covers(have, wanted):
                return False
        return True

    # -- container protocol -------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(frozenset(self._items.values()))

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._items.values())

    # -- queries ------------------------------------------------------------------------------------------

    def scalar(self, name: str) -> float:
        """Total of a scalar across all roles (0.0 when absent)."""
        return _from_milli(
            sum(_to_milli(r.scalar) for r in self._items.values() if r.name == name and r.type == SCALAR)
        )

    def scalars(self) -> dict[str, float]:
        totals: dict[str, int] = {}
        for resource in self._items.values():
            if resource.type == SCALAR:
                totals[resource.name] = totals.get(resource.name, 0) + _to_milli(resource.scalar)
        return {name: _from_milli(milli) for name, milli in totals.items()}

    def ranges(self, name: str) -> RangeTuple:
        """All ranges of ``name`` merged across roles."""
        merged: RangeTuple = ()
        for resource in self._items.values():
            if resource.name == name and resource.type == RANGES:
                merged = _ranges_union(merged, resource.ranges)
        return merged

    def _filter(self, keep: Any) -> Resources:
        return Resources._wrap({key: r for key, r in self._items.items() if keep(r)})

    def unreserved(self) -> Resources:
        return self._filter(lambda r: r.role == UNRESERVED)

    def reserved(self, role: str | None = None) -> Resources:
        if role is None:
            return self._filter(lambda r: r.role != UNRESERVED)
        return self._filter(lambda r: r.role == role and r.role != UNRESERVED)

    def allocatable_to(self, role: str) -> Resources:
        """What a framework subscribed with ``role`` may be offered: unreserved plus exactly its role's."""
        return self._filter(lambda r: r.role == UNRESERVED or r.role == role)

    def roles(self) -> set[str]:
        return {resource.role for resource in self._items.values()}

    def names(self) -> set[str]:
        return {resource.name for resource in self._items.values()}
