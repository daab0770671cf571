"""Agent attributes: the ``--attributes`` grammar, v1 JSON and the flattened v0 view."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesolite.core.attributes import Attribute, AttributeParseError, Attributes

PROPS = settings(max_examples=60, deadline=None)


def test_parse_reference_example() -> None:
    a = Attributes.parse("rack_id:2;os:ubuntu;level:10;keys:[1000-1500]")
    assert list(a) == [
        Attribute("rack_id", "SCALAR", scalar=2.0),
        Attribute("os", "TEXT", text="ubuntu"),
        Attribute("level", "SCALAR", scalar=10.0),
        Attribute("keys", "RANGES", ranges=((1000, 1500),)),
    ]
    assert str(a) == "rack_id:2;os:ubuntu;level:10;keys:[1000-1500]"
    assert len(a) == 4 and bool(a)


def test_flatten_v0() -> None:
    a = Attributes.parse("rack_id:2;os:ubuntu;keys:[1000-1500, 2000-2001];weight:0.5")
    assert a.flatten() == {"rack_id": 2.0, "os": "ubuntu", "keys": "[1000-1500, 2000-2001]", "weight": 0.5}
    assert isinstance(a.flatten()["rack_id"], float)


def test_to_v1_shapes() -> None:
    a = Attributes.parse("rack_id:2;os:ubuntu;keys:[1000-1500]")
    assert a.to_v1() == [
        {"name": "rack_id", "type": "SCALAR", "scalar": {"value": 2.0}},
        {"name": "os", "type": "TEXT", "text": {"value": "ubuntu"}},
        {"name": "keys", "type": "RANGES", "ranges": {"range": [{"begin": 1000, "end": 1500}]}},
    ]


def test_newlines_split_tokens_and_only_first_colon_splits() -> None:
    a = Attributes.parse("rack:abc\nzone:west;\r\nurl: http://h:80/x ;;\n")
    assert a.flatten() == {"rack": "abc", "zone": "west", "url": "http://h:80/x"}


def test_empty() -> None:
    assert Attributes.parse("") == Attributes()
    assert not Attributes.parse(" ; \n ")
    assert str(Attributes()) == ""
    assert Attributes().flatten() == {}


def test_get_and_duplicates() -> None:
    a = Attributes.parse("rack:a;rack:b;level:1")
    assert a.get("rack") == Attribute("rack", "TEXT", text="a")
    assert a.get("missing") is None
    assert a.flatten()["rack"] == "b"  # the v0 object keeps the last value, as upstream fills it in order
    assert len(a) == 3


def test_equality_ignores_order() -> None:
    a = Attributes.parse("rack:a;level:1")
    b = Attributes.parse("level:1;rack:a")
    assert a == b and hash(a) == hash(b)
    assert a != Attributes.parse("rack:a;level:1;level:1")
    assert a != "rack:a;level:1"
    assert repr(a) == "Attributes('rack:a;level:1')"


def test_numbers_and_text() -> None:
    a = Attributes.parse("a:1.5;b:-3;c:1e3;d:nan;e:v1.2;f:10abc")
    assert a.get("a") == Attribute("a", "SCALAR", scalar=1.5)
    assert a.get("b") == Attribute("b", "SCALAR", scalar=-3.0)
    assert a.get("c") == Attribute("c", "SCALAR", scalar=1000.0)
    assert a.get("d") == Attribute("d", "TEXT", text="nan")
    assert a.get("e") == Attribute("e", "TEXT", text="v1.2")
    assert a.get("f") == Attribute("f", "TEXT", text="10abc")


@pytest.mark.parametrize(
    ("text", "token", "reason"),
    [
        ("rack", "rack", "missing ':'"),
        ("os:ubuntu;zone", "zone", "missing ':'"),
        ("disks:{a,b}", "disks:{a,b}", "sets are not allowed"),
        (":abc", ":abc", "name"),
        ("os:", "os:", "missing value"),
        ("keys:[1-]", "keys:[1-]", "begin-end"),
        ("keys:[5-1]", "keys:[5-1]", "begin greater than end"),
        ("big:1e999", "big:1e999", "infinite"),
    ],
)
def test_malformed_text_names_the_bad_token(text: str, token: str, reason: str) -> None:
    with pytest.raises(AttributeParseError) as info:
        Attributes.parse(text)
    assert f"'{token}'" in str(info.value)
    assert reason in str(info.value)


def test_attribute_parse_error_is_value_error() -> None:
    assert issubclass(AttributeParseError, ValueError)
    with pytest.raises(AttributeParseError):
        Attributes.parse(None)  # type: ignore[arg-type]


def test_from_v1_inference_and_variants() -> None:
    a = Attributes.from_v1(
        [
            {"name": "rack", "text": {"value": "abc"}},
            {"name": "level", "scalar": {"value": 10}},
            {"name": "keys", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2}]}, "extra": 1},
            {"name": "n", "type": 0, "scalar": {"value": "2.5"}},
        ]
    )
    assert str(a) == "rack:abc;level:10;keys:[1-2];n:2.5"


@pytest.mark.parametrize(
    ("objs", "fragment"),
    [
        ({}, "JSON array"),
        ([1], "Attribute #0"),
        ([{"type": "TEXT", "text": {"value": "x"}}], "'name'"),
        ([{"name": "a"}], "cannot be inferred"),
        ([{"name": "a", "type": "SET", "set": {"item": ["x"]}}], "not allowed"),
        ([{"name": "a", "type": "WHAT"}], "unknown type"),
        ([{"name": "a", "type": "TEXT"}], "no 'text'"),
        ([{"name": "a", "type": "TEXT", "text": "x"}], "'text'"),
        ([{"name": "a", "type": "TEXT", "text": {"value": 3}}], "string"),
        ([{"name": "a", "type": "SCALAR", "scalar": {"value": "x"}}], "number"),
        ([{"name": "a", "type": "SCALAR", "scalar": {"value": float("inf")}}], "infinite"),
        ([{"name": "a", "type": "RANGES", "ranges": {"range": [{"begin": 3, "end": 1}]}}], "begin"),
        ([{"name": "a", "type": "RANGES", "ranges": {"range": [{"end": 1}]}}], "'begin'"),
    ],
)
def test_from_v1_bad_shapes(objs: object, fragment: str) -> None:
    with pytest.raises(AttributeParseError) as info:
        Attributes.from_v1(objs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    if isinstance(objs, list) and isinstance(objs[0], dict) and "name" in objs[0]:
        assert "Attribute #0 ('a')" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "type": "TEXT", "text": "x"},
        {"name": "a", "type": "SET"},
        {"name": "a", "type": "SCALAR", "scalar": "1"},
        {"name": "a", "type": "SCALAR", "scalar": float("nan")},
        {"name": "a", "type": "SCALAR", "scalar": 1.0, "text": "x"},
        {"name": "a", "type": "TEXT", "text": 1},
        {"name": "a", "type": "TEXT", "text": "x", "scalar": 1.0},
        {"name": "a", "type": "RANGES", "ranges": ((2, 1),)},
        {"name": "a", "type": "RANGES", "ranges": ((1, 2),), "text": "x"},
    ],
)
def test_attribute_rejects_bad_fields(kwargs: dict) -> None:
    with pytest.raises(AttributeParseError):
        Attribute(**kwargs)


def test_attributes_requires_attribute_items() -> None:
    with pytest.raises(TypeError):
        Attributes(["rack:a"])  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------------------
# Properties

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789.", min_size=1, max_size=8)
texts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-./ ", min_size=1, max_size=10).filter(
    lambda t: t.strip() == t and t not in ("nan", "inf") and "inf" not in t
)
scalar_values = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(float),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
range_lists = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=100)).map(
        lambda p: (p[0], p[0] + p[1])
    ),
    max_size=4,
)


@st.composite
def attribute(draw: st.DrawFn) -> Attribute:
    name = draw(names)
    kind = draw(st.sampled_from(("SCALAR", "RANGES", "TEXT")))
    if kind == "SCALAR":
        return Attribute(name, kind, scalar=draw(scalar_values))
    if kind == "RANGES":
        return Attribute(name, kind, ranges=tuple(draw(range_lists)))
    return Attribute(name, kind, text=draw(texts))


attributes = st.lists(attribute(), max_size=6).map(Attributes)


@PROPS
@given(attributes)
def test_prop_text_round_trip(a: Attributes) -> None:
    parsed = Attributes.parse(str(a))
    assert parsed == a
    assert list(parsed) == list(a)  # order is preserved too


@PROPS
@given(attributes)
def test_prop_v1_round_trip(a: Attributes) -> None:
    assert Attributes.from_v1(json.loads(json.dumps(a.to_v1()))) == a


@PROPS
@given(attributes)
def test_prop_flatten_agrees_with_get(a: Attributes) -> None:
    flat = a.flatten()
    assert set(flat) == {item.name for item in a}
    assert json.loads(json.dumps(flat)) == flat
    for name in flat:
        assert a.get(name) is not None
