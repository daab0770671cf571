"""Placement constraints as Marathon's constraints.md describes them."""

from __future__ import annotations

from mesolite.marathon.constraints import all_met, meets

A1 = {"hostname": "a", "rack_id": "1"}
B1 = {"hostname": "b", "rack_id": "1"}
C2 = {"hostname": "c", "rack_id": "2"}
NORACK = {"hostname": "d"}


def test_unique() -> None:
    assert meets(["hostname", "UNIQUE"], A1, [B1])
    assert not meets(["hostname", "UNIQUE"], A1, [A1])
    assert not meets(["rack_id", "UNIQUE"], A1, [B1])


def test_cluster_with_and_without_value() -> None:
    assert meets(["rack_id", "CLUSTER", "2"], C2, [])
    assert not meets(["rack_id", "CLUSTER", "2"], A1, [])
    assert meets(["rack_id", "CLUSTER"], B1, [A1]) and not meets(["rack_id", "CLUSTER"], C2, [A1])
    assert meets(["rack_id", "CLUSTER", "1.0"], A1, [])  # scalar attributes compare by value


def test_group_by_balances_over_values_seen() -> None:
    known = {"rack_id": {"1", "2"}}
    assert meets(["rack_id", "GROUP_BY"], A1, [], known)
    assert not meets(["rack_id", "GROUP_BY"], B1, [A1], known)  # rack 2 is empty
    assert meets(["rack_id", "GROUP_BY"], C2, [A1], known)
    assert meets(["rack_id", "GROUP_BY"], B1, [A1, C2], known)
    assert not meets(["rack_id", "GROUP_BY", "2"], B1, [A1])  # expects 2 distinct values before doubling up


def test_like_unlike_max_per_is_and_missing_attributes() -> None:
    assert meets(["hostname", "LIKE", "[ab]"], A1, []) and not meets(["hostname", "LIKE", "[ab]"], C2, [])
    assert meets(["hostname", "UNLIKE", "slave-[2-3]"], A1, [])
    assert not meets(["hostname", "UNLIKE", "[ab]"], B1, [])
    assert meets(["rack_id", "MAX_PER", "2"], A1, [B1]) and not meets(["rack_id", "MAX_PER", "2"], A1, [A1, B1])
    assert meets(["rack_id", "IS", "2"], C2, []) and not meets(["rack_id", "IS", "2"], A1, [])
    # Only UNLIKE accepts an agent without the attribute.
    assert meets(["rack_id", "UNLIKE", "1"], NORACK, []) and not meets(["rack_id", "LIKE", ".*"], NORACK, [])
    assert all_met([["hostname", "UNIQUE"], ["rack_id", "CLUSTER", "1"]], C2, []) == ["rack_id", "CLUSTER", "1"]
