"""Quota as the allocator enforces it (a pure function of the snapshot) and as the master validates it."""

from __future__ import annotations

import random

import pytest

from mesolite.core.resources import Resources
from mesolite.master.allocator import AgentView, FrameworkView, RoleQuota, Snapshot, allocate
from mesolite.master.quota import QuotaConfig, QuotaError, check_update, config_error, status_json


def R(text: str) -> Resources:  # noqa: N802 - reads like the Mesos helper
    return Resources.parse(text)


def snapshot(agents: list[AgentView], frameworks: list[FrameworkView], **kw: object) -> Snapshot:
    totals: dict[str, float] = {}
    for agent in agents:
        for name, value in agent.available.scalars().items():
            totals[name] = totals.get(name, 0.0) + value
    return Snapshot(agents=agents, frameworks=frameworks, totals=totals, **kw)  # type: ignore[arg-type]


def test_a_limit_cuts_offers_down_to_what_is_left() -> None:
    agents = [AgentView("a1", R("cpus:4;mem:4096;ports:[31000-31010]")), AgentView("a2", R("cpus:4;mem:4096"))]
    quotas = {"dev": RoleQuota(limits={"cpus": 3.0})}
    result = allocate(snapshot(agents, [FrameworkView("f", ("dev",))], quotas=quotas), random.Random(1))
    assert sum(a.resources.scalar("cpus") for a in result) == 3.0
    assert sum(a.resources.scalar("mem") for a in result) == 8192.0  # no limit on mem
    # Consumption counts: a role already at its limit gets nothing of that resource.
    consumed = {"dev": {"cpus": 3.0}}
    result = allocate(snapshot(agents, [FrameworkView("f", ("dev",))], quotas=quotas, consumed=consumed))
    assert all(a.resources.scalar("cpus") == 0.0 for a in result)
    full = {"dev": RoleQuota(limits={"cpus": 3.0, "mem": 100.0})}
    used = {"dev": {"cpus": 3.0, "mem": 100.0}}
    assert allocate(snapshot(agents, [FrameworkView("f", ("dev",))], quotas=full, consumed=used)) == []


def test_a_limit_never_cuts_reservations() -> None:
    agents = [AgentView("a1", R("cpus:2;cpus(dev):2;mem:1024"))]
    quotas = {"dev": RoleQuota(limits={"cpus": 1.0})}
    [offer] = allocate(snapshot(agents, [FrameworkView("f", ("dev",))], quotas=quotas))
    assert offer.resources.reserved("dev").scalar("cpus") == 2.0
    assert offer.resources.unreserved().scalar("cpus") == 1.0


def test_guarantees_hold_back_headroom_and_are_served_first() -> None:
    agents = [AgentView(f"a{i}", R("cpus:2;mem:2048")) for i in range(3)]
    frameworks = [FrameworkView("greedy", ("*",)), FrameworkView("prod", ("prod",))]
    quotas = {"prod": RoleQuota(guarantees={"cpus": 4.0})}
    result = allocate(snapshot(agents, frameworks, quotas=quotas), random.Random(3))
    by_framework: dict[str, float] = {}
    for allocation in result:
        by_framework[allocation.framework_id] = by_framework.get(
            allocation.framework_id, 0.0
        ) + allocation.resources.scalar("cpus")
    assert by_framework["prod"] >= 4.0
    assert by_framework.get("greedy", 0.0) <= 2.0
    # Without a framework in the guaranteed role, its headroom is still held back from the others.
    result = allocate(snapshot(agents, [FrameworkView("greedy", ("*",))], quotas=quotas))
    assert sum(a.resources.scalar("cpus") for a in result) == 2.0
    # Once the guarantee is consumed, nothing is held back.
    consumed = {"prod": {"cpus": 4.0}}
    result = allocate(snapshot(agents, [FrameworkView("greedy", ("*",))], quotas=quotas, consumed=consumed))
    assert sum(a.resources.scalar("cpus") for a in result) == 6.0


def test_config_checks_in_mesos_words() -> None:
    assert config_error(QuotaConfig("dev", {"cpus": 1}, {"cpus": 2})) is None
    assert config_error(QuotaConfig("*", {}, {"cpus": 1})) == (
        "Invalid 'QuotaConfig.role': setting quota for the default '*' role is not supported"
    )
    assert config_error(QuotaConfig("dev", {"cpus": 3}, {"cpus": 2})) == (
        "'QuotaConfig.guarantees' cpus:3 is not contained within the 'QuotaConfig.limits' cpus:2"
    )
    assert "values greater than 1 exabyte" in (config_error(QuotaConfig("dev", {}, {"mem": 2.0 * 1024**4})) or "")
    with pytest.raises(QuotaError, match="is already consuming 'cpus:3'"):
        check_update([QuotaConfig("dev", {}, {"cpus": 2})], False, {}, {"dev": {"cpus": 3}}, {"cpus": 8})
    check_update([QuotaConfig("dev", {}, {"cpus": 2})], True, {}, {"dev": {"cpus": 3}}, {"cpus": 8})
    with pytest.raises(QuotaError, match="exceed cluster capacity 'cpus:8'"):
        check_update([QuotaConfig("dev", {"cpus": 9}, {})], False, {}, {}, {"cpus": 8})
    with pytest.raises(QuotaError, match="nested role 'a/b'"):
        check_update([QuotaConfig("a/b", {}, {"cpus": 1})], False, {}, {}, {"cpus": 8})
    status = status_json({"dev": QuotaConfig("dev", {"cpus": 1.0}, {"cpus": 2.0})})
    assert status == {
        "infos": [{"role": "dev", "guarantee": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}}]}],
        "configs": [{"role": "dev", "guarantees": {"cpus": {"value": 1.0}}, "limits": {"cpus": {"value": 2.0}}}],
    }
