"""The resource model: text and JSON forms, arithmetic, and the invariants the allocator relies on."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesolite.core.resources import (
    Resource,
    ResourceError,
    Resources,
    format_ranges,
    normalize_ranges,
    parse_ranges,
    validate_role,
)

PROPS = settings(max_examples=60, deadline=None)

# ---------------------------------------------------------------------------------------------------------
# Text form


def test_parse_reference_example() -> None:
    text = "cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];bugs(debug_role):{a,b,c}"
    r = Resources.parse(text)
    assert r.scalar("cpus") == 24.0
    assert r.scalar("gpus") == 2.0
    assert r.scalar("mem") == 24576.0
    assert r.scalar("disk") == 409600.0
    assert r.ranges("ports") == ((21000, 24000), (30000, 34000))
    assert Resource("bugs", "SET", set=frozenset({"a", "b", "c"}), role="debug_role") in list(r)
    assert r.roles() == {"*", "debug_role"}
    assert r.names() == {"cpus", "gpus", "mem", "disk", "ports", "bugs"}
    assert str(r) == text


def test_exact_strings_round_trip() -> None:
    text = "cpus:24;mem:24576;disk:409600;ports:[21000-24000];disks:{1,2,3}"
    r = Resources.parse(text)
    assert str(r) == text
    assert len(r) == 5
    reserved = Resources.parse("cpus(prod):2")
    assert str(reserved) == "cpus(prod):2"
    assert list(reserved) == [Resource("cpus", "SCALAR", scalar=2.0, role="prod")]


def test_str_prints_integral_scalars_without_fraction() -> None:
    r = Resources.parse("cpus:2.0;mem:128.5;ports:[31000-31005, 31010-31010];cpus(prod):1")
    assert str(r) == "cpus:2;mem:128.5;ports:[31000-31005,31010-31010];cpus(prod):1"


def test_empty_and_whitespace_and_trailing_semicolon() -> None:
    assert Resources.parse("") == Resources()
    assert not Resources.parse("   ")
    assert Resources.parse("cpus:1;") == Resources.parse("cpus:1")
    assert Resources.parse(" cpus : 1 ; mem ( prod ) : 2 ;; ") == Resources.parse("cpus:1;mem(prod):2")
    assert str(Resources()) == ""


def test_default_role_applies_only_to_roleless_tokens() -> None:
    r = Resources.parse("cpus:1;mem(dev):2", default_role="prod")
    assert r.roles() == {"prod", "dev"}
    assert r.reserved("prod").scalar("cpus") == 1.0


def test_duplicate_names_are_added() -> None:
    r = Resources.parse("cpus:1;cpus:2.5;ports:[1-2];ports:[3-5,10-11];disks:{a};disks:{b}")
    assert r.scalar("cpus") == 3.5
    assert r.ranges("ports") == ((1, 5), (10, 11))
    assert str(r) == "cpus:3.5;ports:[1-5,10-11];disks:{a,b}"


def test_zero_and_empty_values_are_dropped() -> None:
    r = Resources.parse("cpus:0;ports:[];disks:{};mem:1")
    assert str(r) == "mem:1"
    assert len(r) == 1


def test_scalars_are_fixed_point_three_decimals() -> None:
    r = Resources.parse("cpus:0.1;cpus:0.2")
    assert r.scalar("cpus") == 0.3
    assert Resources.parse("cpus:1.23449").scalar("cpus") == 1.234
    assert Resources.parse("cpus:1.2345").scalar("cpus") == 1.235  # half away from zero, like llround
    assert not Resources.parse("cpus:0.0004")
    assert Resource("mem", "SCALAR", scalar=0.0005).scalar == 0.001


@pytest.mark.parametrize(
    ("text", "token", "reason"),
    [
        ("cpus=2", "cpus=2", "missing or extra ':'"),
        ("cpus:1;mem:2:3", "mem:2:3", "missing or extra ':'"),
        ("mem", "mem", "missing or extra ':'"),
        ("cpus(prod:2", "cpus(prod:2", "role"),
        ("cpus(prod)x:2", "cpus(prod)x:2", "role"),
        ("cpus():2", "cpus():2", "role"),
        ("cpus( ):2", "cpus( ):2", "role"),
        ("cpus(-x):2", "cpus(-x):2", "'-'"),
        ("cpus(a//b):2", "cpus(a//b):2", "/"),
        (":2", ":2", "name"),
        ("cpus:", "cpus:", "missing value"),
        ("cpus:abc", "cpus:abc", "text values are not allowed"),
        ("cpus:-1", "cpus:-1", "negative"),
        ("cpus:nan", "cpus:nan", "NaN"),
        ("cpus:inf", "cpus:inf", "infinite"),
        ("cpus:1e999", "cpus:1e999", "infinite"),
        ("cpus:1_000", "cpus:1_000", "text values"),
        ("ports:[5-1]", "ports:[5-1]", "begin greater than end"),
        ("ports:[5]", "ports:[5]", "begin-end"),
        ("ports:[a-b]", "ports:[a-b]", "begin-end"),
        ("ports:[1-2,]", "ports:[1-2,]", "begin-end"),
        ("ports:[-1-2]", "ports:[-1-2]", "begin-end"),
        ("ports:[1-2", "ports:[1-2", "[begin-end"),
        ("disks:{a,,b}", "disks:{a,,b}", "item"),
        ("disks:{a", "disks:{a", "set"),
    ],
)
def test_malformed_text_names_the_bad_token(text: str, token: str, reason: str) -> None:
    with pytest.raises(ResourceError) as info:
        Resources.parse(text)
    message = str(info.value)
    assert f"'{token}'" in message
    assert reason in message


def test_error_message_format() -> None:
    with pytest.raises(ResourceError, match=r"^Bad resource token 'cpus=2': missing or extra ':'$"):
        Resources.parse("cpus=2")


def test_resource_error_is_a_value_error() -> None:
    assert issubclass(ResourceError, ValueError)


def test_same_name_with_different_types_is_rejected() -> None:
    with pytest.raises(ResourceError, match="'cpus'"):
        Resources.parse("cpus:1;cpus:[1-2]")


def test_bad_default_role() -> None:
    with pytest.raises(ResourceError):
        Resources.parse("cpus:1", default_role="")


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ResourceError):
        Resources.parse(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Range helpers


def test_parse_ranges_and_format_ranges() -> None:
    assert parse_ranges("[31000-31005,31010-31010]") == ((31000, 31005), (31010, 31010))
    assert parse_ranges("[ 31000 - 31005 , 31010-31010 ]") == ((31000, 31005), (31010, 31010))
    assert parse_ranges("[]") == ()
    assert parse_ranges("[5-6,1-2,3-4]") == ((1, 6),)
    assert parse_ranges("[1-10,2-3]") == ((1, 10),)
    assert format_ranges(((31000, 31005), (31010, 31010))) == "[31000-31005, 31010-31010]"
    assert format_ranges(()) == "[]"


@pytest.mark.parametrize("bad", ["", "1-2", "[1-2", "1-2]", "[1-]", "[x]", "[2-1]", "[1-2;3-4]", "{1-2}"])
def test_parse_ranges_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ResourceError) as info:
        parse_ranges(bad)
    assert f"'{bad}'" in str(info.value)


def test_normalize_ranges_validates() -> None:
    assert normalize_ranges([(5, 6), [1, 4]]) == ((1, 6),)
    for bad in ([(2, 1)], [(1,)], [(1, 2, 3)], [("a", 2)], [(-1, 2)], [(1.5, 2)], "1-2"):
        with pytest.raises(ResourceError):
            normalize_ranges(bad)  # type: ignore[arg-type]


def test_validate_role() -> None:
    for good in ("*", "prod", "eng/prod", "a.b", "dev-1", "x_y"):
        assert validate_role(good) == good
    for bad in ("", ".", "..", "-x", "a/", "/a", "a//b", "a b", "a/*", "a:b", "a(b", 3):
        with pytest.raises(ResourceError):
            validate_role(bad)


# ---------------------------------------------------------------------------------------------------------
# Resource construction


def test_resource_normalises_itself() -> None:
    r = Resource("ports", "RANGES", ranges=[(5, 6), (1, 4)])  # type: ignore[arg-type]
    assert r.ranges == ((1, 6),)
    s = Resource("disks", "SET", set={"a", "b"})  # type: ignore[arg-type]
    assert s.set == frozenset({"a", "b"})
    assert Resource("cpus", "SCALAR", scalar=1).scalar == 1.0
    assert hash(Resource("cpus", "SCALAR", scalar=1)) == hash(Resource("cpus", "SCALAR", scalar=1.0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "type": "SCALAR", "scalar": 1},
        {"name": "cpus", "type": "TEXT"},
        {"name": "cpus", "type": "SCALAR", "scalar": -1},
        {"name": "cpus", "type": "SCALAR", "scalar": float("nan")},
        {"name": "cpus", "type": "SCALAR", "scalar": "1"},
        {"name": "cpus", "type": "SCALAR", "scalar": True},
        {"name": "cpus", "type": "SCALAR", "scalar": 1, "ranges": ((1, 2),)},
        {"name": "ports", "type": "RANGES", "ranges": ((2, 1),)},
        {"name": "ports", "type": "RANGES", "scalar": 1.0},
        {"name": "disks", "type": "SET", "set": "abc"},
        {"name": "disks", "type": "SET", "set": frozenset({1})},
        {"name": "cpus", "type": "SCALAR", "scalar": 1, "role": "bad role"},
        {"name": "cpus", "type": "SCALAR", "scalar": 1, "role": "a", "reservations": ({"role": "b"},)},
        {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": 1,
            "role": "a",
            "reservations": ({"type": "X", "role": "a"},),
        },
    ],
)
def test_resource_rejects_bad_fields(kwargs: dict) -> None:
    with pytest.raises(ResourceError):
        Resource(**kwargs)


def test_resources_requires_resource_items() -> None:
    with pytest.raises(TypeError):
        Resources(["cpus:1"])  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------------------
# v0 flattening


def test_flatten_reference_shape() -> None:
    r = Resources.parse("cpus:1;mem:128;ports:[31000-31005,31010-31010]")
    assert r.flatten() == {
        "cpus": 1.0,
        "mem": 128.0,
        "gpus": 0.0,
        "disk": 0.0,
        "ports": "[31000-31005, 31010-31010]",
    }
    assert all(isinstance(v, float) for k, v in r.flatten().items() if k != "ports")


def test_flatten_sums_across_roles_and_formats_sets() -> None:
    r = Resources.parse("cpus:1;cpus(prod):2.5;ports:[1-2];ports(prod):[5-5];disks:{b,a};disks(prod):{c}")
    flat = r.flatten()
    assert flat["cpus"] == 3.5
    assert flat["ports"] == "[1-2, 5-5]"
    assert flat["disks"] == "{a, b, c}"
    assert Resources().flatten() == {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
    assert json.loads(json.dumps(flat)) == flat


# ---------------------------------------------------------------------------------------------------------
# v1 JSON


def test_to_v1_shapes() -> None:
    r = Resources.parse("cpus:1;ports:[31000-31005];disks:{b,a};mem(prod):64")
    assert r.to_v1() == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"},
        {
            "name": "ports",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 31000, "end": 31005}]},
            "role": "*",
        },
        {"name": "disks", "type": "SET", "set": {"item": ["a", "b"]}, "role": "*"},
        {
            "name": "mem",
            "type": "SCALAR",
            "scalar": {"value": 64.0},
            "role": "prod",
            "reservations": [{"type": "STATIC", "role": "prod"}],
        },
    ]
    assert isinstance(r.to_v1()[0]["scalar"]["value"], float)
    assert json.dumps(r.to_v1()[0]) == '{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"}'


def test_to_v1_allocation_info() -> None:
    objs = Resources.parse("cpus:1;mem(prod):2").to_v1(allocation_role="prod")
    assert [o["allocation_info"] for o in objs] == [{"role": "prod"}, {"role": "prod"}]


def test_from_v1_basic_and_inference() -> None:
    objs = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31005}]}},
        {"name": "disks", "type": "SET", "set": {"item": ["a"]}},
        {"name": "mem", "scalar": {"value": 32}, "role": "prod"},
        {"name": "gpus", "scalar": {"value": 1}, "allocation_info": {"role": "x"}, "unknown": {"deep": [1]}},
    ]
    r = Resources.from_v1(objs)
    assert str(r) == "cpus:1;ports:[31000-31005];disks:{a};mem(prod):32;gpus:1"


def test_from_v1_reservations_and_roles() -> None:
    static = Resources.from_v1(
        [{"name": "cpus", "scalar": {"value": 2}, "reservations": [{"type": "STATIC", "role": "prod"}]}]
    )
    assert static == Resources.parse("cpus(prod):2")
    refined = [
        {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": 2.0},
            "role": "eng/prod",
            "reservations": [
                {"type": "STATIC", "role": "eng"},
                {
                    "type": "DYNAMIC",
                    "role": "eng/prod",
                    "principal": "ops",
                    "labels": {"labels": [{"key": "k"}]},
                },
            ],
        }
    ]
    r = Resources.from_v1(refined)
    assert r.roles() == {"eng/prod"}
    assert r.to_v1() == refined
    assert Resources.from_v1(json.loads(json.dumps(r.to_v1()))) == r
    # A dynamic reservation is a different resource from a static one for the same role.
    assert not r.contains(Resources.parse("cpus(eng/prod):1"))
    assert r.reserved("eng/prod").scalar("cpus") == 2.0


def test_from_v1_old_reservation_format_is_dynamic() -> None:
    r = Resources.from_v1(
        [{"name": "cpus", "scalar": {"value": 1}, "role": "prod", "reservation": {"principal": "ops"}}]
    )
    assert r.to_v1()[0]["reservations"] == [{"type": "DYNAMIC", "role": "prod", "principal": "ops"}]


def test_from_v1_accepts_protobuf_json_variants() -> None:
    r = Resources.from_v1(
        [
            {"name": "ports", "type": 1, "ranges": {"range": [{"begin": "31000", "end": 31001.0}]}},
            {"name": "cpus", "type": 0, "scalar": {"value": "0.5"}},
        ]
    )
    assert str(r) == "ports:[31000-31001];cpus:0.5"


@pytest.mark.parametrize(
    ("objs", "fragment"),
    [
        ({"name": "cpus"}, "JSON array"),
        (["cpus"], "Resource #0"),
        ([{"type": "SCALAR", "scalar": {"value": 1}}], "'name'"),
        ([{"name": "cpus"}], "cannot be inferred"),
        ([{"name": "cpus", "scalar": {"value": 1}, "ranges": {}}], "cannot be inferred"),
        ([{"name": "cpus", "type": "BOGUS"}], "unknown type"),
        ([{"name": "cpus", "type": "TEXT", "text": {"value": "x"}}], "not allowed"),
        ([{"name": "cpus", "type": "SCALAR"}], "no 'scalar'"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": 1}], "'scalar'"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": "abc"}}], "number"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}], "negative"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": None}}], "number"),
        ([{"name": "p", "type": "RANGES", "ranges": []}], "'ranges'"),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": {}}}], "list"),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 1}]}}], "'end'"),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 3, "end": 1}]}}], "begin"),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 1.5, "end": 2}]}}], "integer"),
        ([{"name": "d", "type": "SET", "set": {"item": "abc"}}], "list of strings"),
        ([{"name": "d", "type": "SET", "set": ["a"]}], "'set'"),
        ([{"name": "cpus", "scalar": {"value": 1}, "role": 5}], "'role'"),
        ([{"name": "cpus", "scalar": {"value": 1}, "role": "a b"}], "role"),
        ([{"name": "cpus", "scalar": {"value": 1}, "reservations": {}}], "list"),
        ([{"name": "cpus", "scalar": {"value": 1}, "reservations": ["prod"]}], "reservation"),
        ([{"name": "cpus", "scalar": {"value": 1}, "reservations": [{"role": "*"}]}], "reservation"),
        (
            [{"name": "cpus", "scalar": {"value": 1}}, {"name": "cpus", "set": {"item": ["a"]}}],
            "different types",
        ),
    ],
)
def test_from_v1_bad_shapes_raise_resource_error(objs: object, fragment: str) -> None:
    with pytest.raises(ResourceError) as info:
        Resources.from_v1(objs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_parse_accepts_json_array() -> None:
    text = ' [{"name":"cpus","type":"SCALAR","scalar":{"value":4}},{"name":"mem","scalar":{"value":8}}] '
    assert Resources.parse(text) == Resources.parse("cpus:4;mem:8")
    assert Resources.parse('[{"name":"cpus","scalar":{"value":4}}]', default_role="prod") == Resources.parse(
        "cpus(prod):4"
    )
    assert Resources.parse("[]") == Resources()
    with pytest.raises(ResourceError, match="Bad resources JSON"):
        Resources.parse('[{"name": "cpus",')


# ---------------------------------------------------------------------------------------------------------
# Arithmetic and queries


def test_add_sub_contains_examples() -> None:
    total = Resources.parse("cpus:4;mem:1024;ports:[31000-32000];disks:{a,b};cpus(prod):2")
    task = Resources.parse("cpus:1.5;mem:256;ports:[31000-31000,31005-31010];disks:{a}")
    left = total - task
    assert str(left) == "cpus:2.5;mem:768;ports:[31001-31004,31011-32000];disks:{b};cpus(prod):2"
    assert left + task == total
    assert total.contains(task)
    assert not left.contains(task)
    assert total.contains(Resources())
    assert not Resources.parse("cpus:1").contains(Resources.parse("cpus(prod):1"))
    assert not Resources.parse("cpus(prod):1").contains(Resources.parse("cpus:1"))
    assert not Resources.parse("ports:[1-5,7-9]").contains(Resources.parse("ports:[5-7]"))


def test_sub_floors_scalars_at_zero_and_drops_empty() -> None:
    r = Resources.parse("cpus:1;mem:10") - Resources.parse("cpus:3;disk:5")
    assert str(r) == "mem:10"
    assert (Resources.parse("cpus:0.3") - Resources.parse("cpus:0.1")).scalar("cpus") == 0.2


def test_operators_reject_other_types() -> None:
    with pytest.raises(TypeError):
        Resources() + "cpus:1"  # type: ignore[operator]
    with pytest.raises(TypeError):
        Resources() - 1  # type: ignore[operator]
    assert Resources() != "cpus:1"


def test_role_queries() -> None:
    r = Resources.parse("cpus:4;mem:64;cpus(prod):2;cpus(dev):1;ports(prod):[1-2]")
    assert str(r.unreserved()) == "cpus:4;mem:64"
    assert str(r.reserved()) == "cpus(prod):2;cpus(dev):1;ports(prod):[1-2]"
    assert str(r.reserved("prod")) == "cpus(prod):2;ports(prod):[1-2]"
    assert not r.reserved("*")
    assert str(r.allocatable_to("prod")) == "cpus:4;mem:64;cpus(prod):2;ports(prod):[1-2]"
    assert r.scalar("cpus") == 7.0
    assert r.scalar("nothing") == 0.0
    assert r.scalars() == {"cpus": 7.0, "mem": 64.0}
    assert r.ranges("ports") == ((1, 2),)
    assert r.ranges("nothing") == ()
    assert r.roles() == {"*", "prod", "dev"}
    assert r.names() == {"cpus", "mem", "ports"}


def test_container_protocol() -> None:
    a = Resources.parse("cpus:1;mem:2")
    b = Resources.parse("mem:2;cpus:1")
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert bool(a) and not bool(Resources())
    assert [r.name for r in a] == ["cpus", "mem"]
    assert repr(a) == "Resources('cpus:1;mem:2')"


# ---------------------------------------------------------------------------------------------------------
# Properties

_SCALAR_NAMES = ("cpus", "mem", "disk", "gpus", "s_extra")
_RANGE_NAMES = ("ports", "r_extra")
_SET_NAMES = ("disks", "t_extra")
_ROLES = ("*", "prod", "dev", "eng/prod")

scalars = st.integers(min_value=0, max_value=10**12).map(lambda m: m / 1000)
range_lists = st.lists(
    st.tuples(st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=50)).map(
        lambda p: (p[0], p[0] + p[1])
    ),
    max_size=6,
)
set_items = st.frozensets(st.text(alphabet="abcxyz019_-.", min_size=1, max_size=5), max_size=5)


@st.composite
def resource(draw: st.DrawFn) -> Resource:
    role = draw(st.sampled_from(_ROLES))
    kind = draw(st.sampled_from(("SCALAR", "RANGES", "SET")))
    if kind == "SCALAR":
        return Resource(draw(st.sampled_from(_SCALAR_NAMES)), kind, scalar=draw(scalars), role=role)
    if kind == "RANGES":
        return Resource(draw(st.sampled_from(_RANGE_NAMES)), kind, ranges=tuple(draw(range_lists)), role=role)
    return Resource(draw(st.sampled_from(_SET_NAMES)), kind, set=draw(set_items), role=role)


resources = st.lists(resource(), max_size=8).map(Resources)


@st.composite
def reserved_resource(draw: st.DrawFn) -> Resource:
    """Resources carrying dynamic or refined reservation stacks, which only the v1 form can express."""
    base = draw(resource())
    stacks = {
        "prod": ({"type": "DYNAMIC", "role": "prod", "principal": draw(st.sampled_from(("ops", "dev")))},),
        "eng/prod": (
            {"type": "STATIC", "role": "eng"},
            {"type": "DYNAMIC", "role": "eng/prod", "labels": {"labels": [{"key": "k", "value": "v"}]}},
        ),
    }
    if base.role not in stacks or not draw(st.booleans()):
        return base
    return Resource(base.name, base.type, base.scalar, base.ranges, base.set, base.role, stacks[base.role])


v1_resources = st.lists(reserved_resource(), max_size=8).map(Resources)


def _disjoint_from(b: Resources, a: Resources) -> Resources:
    """b with the range and set values it shares with a removed (scalars untouched)."""
    scalar_part = Resources(r for r in b if r.type == "SCALAR")
    other_part = Resources(r for r in b if r.type != "SCALAR")
    return scalar_part + (other_part - a)


@PROPS
@given(resources)
def test_prop_text_round_trip(r: Resources) -> None:
    assert Resources.parse(str(r)) == r


@PROPS
@given(v1_resources, st.sampled_from((None, "prod", "*")))
def test_prop_v1_round_trip(r: Resources, allocation_role: str | None) -> None:
    objs = json.loads(json.dumps(r.to_v1(allocation_role)))
    assert Resources.from_v1(objs) == r
    assert Resources.parse(json.dumps(objs)) == r


@PROPS
@given(v1_resources, v1_resources)
def test_prop_add_then_sub_restores(a: Resources, b: Resources) -> None:
    b = _disjoint_from(b, a)
    assert (a + b) - b == a


@PROPS
@given(v1_resources, v1_resources)
def test_prop_containment(a: Resources, b: Resources) -> None:
    assert (a + b).contains(a)
    assert (a + b).contains(b)
    assert a.contains(a - b)
    assert a.contains(a)
    assert Resources().contains(a) == (not a)


@PROPS
@given(v1_resources, v1_resources, v1_resources)
def test_prop_addition_is_commutative_and_associative(a: Resources, b: Resources, c: Resources) -> None:
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + Resources() == a


@PROPS
@given(v1_resources, v1_resources)
def test_prop_sub_is_bounded(a: Resources, b: Resources) -> None:
    left = a - b
    for name in a.names():
        assert 0 <= left.scalar(name) <= a.scalar(name)
    if a.contains(b):
        assert left + b == a


@PROPS
@given(resources)
def test_prop_flatten_matches_queries(r: Resources) -> None:
    flat = r.flatten()
    for name in ("cpus", "gpus", "mem", "disk"):
        assert flat[name] == r.scalar(name)
    for name in _RANGE_NAMES:
        if r.ranges(name):
            assert parse_ranges(flat[name]) == r.ranges(name)
    assert r.unreserved() + r.reserved() == r


def _covered(ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> set[int]:
    return {port for begin, end in ranges for port in range(begin, end + 1)}


@PROPS
@given(range_lists, range_lists)
def test_prop_range_normalisation_invariants(xs: list[tuple[int, int]], ys: list[tuple[int, int]]) -> None:
    norm = normalize_ranges(xs)
    for begin, end in norm:
        assert begin <= end
    for (_, end), (begin, _) in zip(norm, norm[1:], strict=False):
        assert end + 1 < begin  # sorted, disjoint and not adjacent
    assert _covered(norm) == _covered(xs)
    assert normalize_ranges(norm) == norm
    assert parse_ranges(format_ranges(norm)) == norm
    a = Resources([Resource("ports", "RANGES", ranges=tuple(xs))])
    b = Resources([Resource("ports", "RANGES", ranges=tuple(ys))])
    assert _covered((a + b).ranges("ports")) == _covered(xs) | _covered(ys)
    assert _covered((a - b).ranges("ports")) == _covered(xs) - _covered(ys)
    assert a.contains(b) == (_covered(ys) <= _covered(xs))
