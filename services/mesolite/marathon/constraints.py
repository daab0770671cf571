"""Placement constraints (``[["hostname", "UNIQUE"]]``): does an offer's agent fit, given where the app already runs.

Semantics follow Marathon's constraints.md: the field is ``hostname`` (or ``@hostname``) or an agent attribute;
when the agent lacks the attribute, only ``UNLIKE`` accepts it. Attribute values compare as text, and numbers also
by value, since Marathon 1.x rendered scalar attributes as ``1.0`` where operators write ``1``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

Placement = Mapping[str, str]  # field name → value, for one agent ("hostname" always present)


def field_value(placement: Placement, field: str) -> str | None:
    if field in ("hostname", "@hostname"):
        return placement.get("hostname")
    return placement.get(field)


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _fullmatch(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def meets(
    constraint: list[str], offer: Placement, placed: Iterable[Placement], known: Mapping[str, set[str]] | None = None
) -> bool:
    """One constraint against the offer's agent and the placements of the app's active tasks. ``known`` holds the
    values of each field seen in offers so far, so GROUP_BY balances over agents it has not placed on yet."""
    field, operator = constraint[0], constraint[1]
    param = constraint[2] if len(constraint) > 2 else None
    value = field_value(offer, field)
    if value is None:
        return operator == "UNLIKE"
    others = [v for v in (field_value(p, field) for p in placed) if v is not None]
    if operator == "UNIQUE":
        return not any(_same(value, other) for other in others)
    if operator == "CLUSTER":
        if param:
            return _same(value, param)
        return all(_same(value, other) for other in others)
    if operator == "LIKE":
        return param is not None and _fullmatch(param, value)
    if operator == "UNLIKE":
        return param is None or not _fullmatch(param, value)
    if operator == "MAX_PER":
        limit = int(param or 0)
        return sum(1 for other in others if _same(value, other)) < limit
    if operator == "IS":
        return param is not None and _same(value, param)
    if operator == "GROUP_BY":
        seen = (known or {}).get("hostname" if field == "@hostname" else field, set())
        return _group_by(value, others, int(param) if param else 0, seen)
    return False


def _group_by(value: str, others: list[str], expected: int, seen: set[str]) -> bool:
    """Spread evenly over the distinct values: place where the fewest tasks are. With an expected number of
    distinct values, do not double up on a value before that many values have been used."""
    counts = Counter(others)
    for other in seen:
        if not any(_same(other, v) for v in counts):
            counts[other] = 0
    mine = next((c for v, c in counts.items() if _same(v, value)), 0)
    if mine == 0:
        return True
    if expected and len([c for c in counts.values() if c]) < expected:
        return False
    return mine <= min(counts.values())


def all_met(
    constraints: list[list[str]],
    offer: Placement,
    placed: Sequence[Placement],
    known: Mapping[str, set[str]] | None = None,
) -> list[str] | None:
    """None when every constraint holds, else the first one that does not (for the rejection summary)."""
    for constraint in constraints:
        if not meets(constraint, offer, placed, known):
            return constraint
    return None
