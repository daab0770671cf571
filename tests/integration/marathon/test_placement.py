"""Constraints on a cluster of agents with hostnames and rack attributes, as Marathon users write them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import Cluster, wait_until
from tests.integration.marathon.conftest import MarathonHarness

AGENTS = [("node-a", "1"), ("node-b", "1"), ("node-c", "2"), ("node-d", "2")]
SLEEP = {"cmd": "sleep 3600", "cpus": 0.1, "mem": 16}


@pytest.fixture(scope="module")
def racks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarathonHarness]:
    base = tmp_path_factory.mktemp("placement")
    cluster = Cluster(base)
    harness = MarathonHarness(cluster, base)
    try:
        cluster.start_master()
        for hostname, rack in AGENTS:
            cluster.start_agent(
                "--hostname",
                hostname,
                "--attributes",
                f"rack_id:{rack}",
                resources="cpus:2;mem:1024;ports:[31000-31050]",
            )
        harness.start()
        yield harness
    finally:
        harness.stop()
        cluster.stop()


@pytest.fixture
def m(racks: MarathonHarness) -> Iterator[MarathonHarness]:
    try:
        yield racks
    finally:
        racks.clean()


def deploy(m: MarathonHarness, app_id: str, instances: int, constraints: list[list[str]]) -> list[dict[str, Any]]:
    response = m.request(
        "POST", "/v2/apps", json={"id": app_id, "instances": instances, "constraints": constraints, **SLEEP}
    )
    assert response.status_code == 201, response.text
    m.wait_deployed()
    return m.running(app_id)


RACK = {hostname: rack for hostname, rack in AGENTS}


def test_unique_spreads_over_hostnames(m: MarathonHarness) -> None:
    tasks = deploy(m, "unique", 4, [["hostname", "UNIQUE"]])
    assert sorted(t["host"] for t in tasks) == ["node-a", "node-b", "node-c", "node-d"]
    # A fifth instance has nowhere to go: it waits in the queue, and the queue says why.
    m.request("PUT", "/v2/apps/unique", json={"instances": 5})
    item = wait_until(
        lambda: (
            (q := m.get("/v2/queue").json()["queue"])
            and any(
                r["reason"] == "UnfulfilledConstraint" and r["declined"]
                for r in q[0]["processedOffersSummary"]["rejectSummaryLastOffers"]
            )
            and q[0]
        ),
        20,
        what="UnfulfilledConstraint in the queue",
    )
    assert item["count"] == 1
    assert len(m.running("unique")) == 4
    m.request("DELETE", "/v2/deployments/" + m.get("/v2/deployments").json()[0]["id"] + "?force=true")


def test_group_by_balances_racks(m: MarathonHarness) -> None:
    tasks = deploy(m, "grouped", 4, [["rack_id", "GROUP_BY", "2"]])
    assert Counter(RACK[t["host"]] for t in tasks) == {"1": 2, "2": 2}


def test_cluster_pins_to_a_value(m: MarathonHarness) -> None:
    tasks = deploy(m, "pinned", 3, [["rack_id", "CLUSTER", "2"]])
    assert {RACK[t["host"]] for t in tasks} == {"2"}
    tasks = deploy(m, "one-host", 2, [["hostname", "CLUSTER", "node-b"]])
    assert {t["host"] for t in tasks} == {"node-b"}


def test_max_per_caps_and_like_unlike_filter(m: MarathonHarness) -> None:
    m.request(
        "POST", "/v2/apps", json={"id": "capped", "instances": 3, "constraints": [["rack_id", "MAX_PER", "1"]], **SLEEP}
    )
    wait_until(lambda: len(m.running("capped")) == 2, 20, what="two racks used")
    assert sorted(RACK[t["host"]] for t in m.running("capped")) == ["1", "2"]
    assert wait_until(lambda: m.get("/v2/queue").json()["queue"], 10)[0]["count"] == 1
    m.request("DELETE", "/v2/apps/capped")
    m.wait_deployed()
    liked = deploy(m, "liked", 3, [["hostname", "LIKE", "node-[ab]"]])
    assert {t["host"] for t in liked} <= {"node-a", "node-b"}
    unliked = deploy(m, "unliked", 3, [["hostname", "UNLIKE", "node-[ab]"]])
    assert {t["host"] for t in unliked} <= {"node-c", "node-d"}
