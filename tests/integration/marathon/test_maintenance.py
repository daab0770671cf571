"""Marathon through an operator's maintenance: a drained agent's tasks are replaced on another agent, and an agent
whose machine is scheduled for maintenance now gets no new tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.cluster import Cluster, wait_until
from tests.integration.marathon.conftest import MarathonHarness

APP = {"id": "/web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 2}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[MarathonHarness]:
    cluster = Cluster(tmp_path)
    marathon = MarathonHarness(cluster, tmp_path)
    try:
        cluster.start_master()
        cluster.start_agent("--hostname", "first.local")
        marathon.start()
        yield marathon
    finally:
        marathon.stop()
        cluster.stop()


def operator(marathon: MarathonHarness, body: dict[str, object]) -> requests.Response:
    master = marathon.cluster.master
    assert master is not None
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    return requests.post(f"{master.url}/api/v1", data=json.dumps(body), headers=headers, timeout=10)


def hosts(marathon: MarathonHarness) -> list[str]:
    return sorted(t["host"] for t in marathon.running("/web"))


def test_drained_agents_tasks_are_replaced_elsewhere(harness: MarathonHarness) -> None:
    cluster = harness.cluster
    assert harness.request("POST", "/v2/apps", json=APP).status_code == 201
    wait_until(lambda: hosts(harness) == ["first.local", "first.local"], 60, what="two tasks on the first agent")
    cluster.start_agent("--hostname", "second.local")
    first_id = cluster.agent_id(cluster.agents[0])

    drain = {
        "type": "DRAIN_AGENT",
        "drain_agent": {"agent_id": {"value": first_id}, "max_grace_period": {"seconds": 1}},
    }
    assert operator(harness, drain).status_code == 200
    wait_until(lambda: hosts(harness) == ["second.local", "second.local"], 60, what="the tasks replaced elsewhere")
    agents = operator(harness, {"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
    drained = next(a for a in agents if a["agent_info"]["id"]["value"] == first_id)
    wait_until(
        lambda: (
            next(
                a
                for a in operator(harness, {"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
                if a["agent_info"]["id"]["value"] == first_id
            )["drain_info"]["state"]
            == "DRAINED"
        ),
        what="the first agent drained",
    )
    assert drained["deactivated"] is True

    # The second machine goes into maintenance now: Marathon launches nothing more there.
    master = cluster.master
    assert master is not None
    now_ns = int(time.time() * 1e9)
    window = {
        "machine_ids": [{"hostname": "second.local", "ip": "127.0.0.1"}],
        "unavailability": {"start": {"nanoseconds": now_ns}, "duration": {"nanoseconds": 3600 * 10**9}},
    }
    assert (
        requests.post(f"{master.url}/maintenance/schedule", json={"windows": [window]}, timeout=10).status_code == 200
    )
    assert harness.request("PUT", "/v2/apps/web", json={"instances": 3}).status_code == 200
    time.sleep(3)
    assert hosts(harness) == ["second.local", "second.local"]
    # Reactivated, the drained agent takes the third task.
    reactivate = {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": first_id}}}
    assert operator(harness, reactivate).status_code == 200
    wait_until(
        lambda: hosts(harness) == ["first.local", "second.local", "second.local"], 60, what="the third task placed"
    )
