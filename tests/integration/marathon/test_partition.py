"""Partition awareness with real parts: an agent frozen with SIGSTOP (the master, pinging fast, declares it
unreachable within seconds) and thawed with SIGCONT, under three unreachableStrategy settings at once:

* ``{inactiveAfterSeconds: 8, expungeAfterSeconds: 300}``: replaced only after 8 s; when the agent returns the
  original keeps running and the replacement is killed (Marathon's ``ScalingProposition``, YOUNGEST_FIRST);
* the default ``{0, 0}``: replaced at once and forgotten; when the agent returns the original is an unknown task
  and is killed;
* ``"disabled"``: never replaced; it simply runs on once its agent is back.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster, wait_until
from tests.integration.marathon.conftest import MarathonHarness
from tests.integration.marathon.test_pods import Events

FAST_PINGS = ("--agent_ping_timeout", "0.5", "--max_agent_ping_timeouts", "2")
SMALL = "cpus:1;mem:512;disk:1000;ports:[31000-31100]"
INACTIVE_AFTER = 8


@pytest.fixture
def partitioned(tmp_path: Path) -> Iterator[tuple[Cluster, MarathonHarness]]:
    cluster = Cluster(tmp_path)
    harness = MarathonHarness(cluster, tmp_path)
    try:
        cluster.start_master(*FAST_PINGS)
        cluster.start_agent(resources=SMALL)
        harness.start()
        yield cluster, harness
    finally:
        harness.stop()
        cluster.stop()


def app(app_id: str, strategy: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": app_id, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16}
    if strategy is not None:
        out["unreachableStrategy"] = strategy
    return out


def tasks(m: MarathonHarness, app_id: str) -> list[dict[str, Any]]:
    return m.get(f"/v2/apps{app_id}/tasks").json()["tasks"]


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_unreachable_tasks_follow_their_strategy_and_the_surplus_dies_when_the_agent_returns(
    partitioned: tuple[Cluster, MarathonHarness],
) -> None:
    cluster, marathon = partitioned
    strategies = {
        "/patient": {"inactiveAfterSeconds": INACTIVE_AFTER, "expungeAfterSeconds": 300},
        "/eager": None,
        "/waiting": "disabled",
    }
    for app_id, strategy in strategies.items():
        assert marathon.request("POST", "/v2/apps", json=app(app_id, strategy)).status_code == 201
    marathon.wait_deployed()
    original = {a: tasks(marathon, a)[0]["id"] for a in strategies}
    frozen = cluster.agents[0]
    cluster.start_agent(resources=SMALL)  # where replacements can go
    events = Events(marathon)
    try:
        frozen.send_signal(signal.SIGSTOP)
        try:
            unreachable = wait_until(
                lambda: [e for e in events.of("status_update_event") if e["taskStatus"] == "TASK_UNREACHABLE"],
                30,
                what="TASK_UNREACHABLE",
            )
            seen_at = time.time()
            # {0, 0}: replaced at once; "disabled": never; the patient app not before inactiveAfterSeconds.
            wait_until(
                lambda: (
                    len(tasks(marathon, "/eager")) == 1 and tasks(marathon, "/eager")[0]["id"] != original["/eager"]
                ),
                20,
                what="the eager app replaced",
            )
            assert [t["id"] for t in tasks(marathon, "/patient")] == [original["/patient"]]
            assert tasks(marathon, "/patient")[0]["state"] == "TASK_UNREACHABLE"
            replacement = wait_until(
                lambda: [t for t in tasks(marathon, "/patient") if t["id"] != original["/patient"]],
                30,
                what="the patient app's replacement",
            )[0]
            became_unreachable = min(seconds(e["timestamp"]) for e in unreachable)
            assert seconds(replacement["stagedAt"]) - became_unreachable >= INACTIVE_AFTER - 1
            assert time.time() - seen_at >= INACTIVE_AFTER - 2
            inactive = [e for e in events.of("instance_changed_event") if e["condition"] == "UnreachableInactive"]
            assert original["/patient"] in [e["instanceId"] for e in inactive]
            assert [t["id"] for t in tasks(marathon, "/waiting")] == [original["/waiting"]]
        finally:
            frozen.send_signal(signal.SIGCONT)

        # Back: the patient app's original runs on and its replacement is killed; the eager app's original is
        # unknown by now and is killed; the waiting app never had a replacement.
        def settled() -> bool:
            current = {a: [(t["id"], t["state"]) for t in tasks(marathon, a)] for a in strategies}
            return (
                current["/patient"] == [(original["/patient"], "TASK_RUNNING")]
                and current["/waiting"] == [(original["/waiting"], "TASK_RUNNING")]
                and len(current["/eager"]) == 1
                and current["/eager"][0][0] != original["/eager"]
            )

        wait_until(settled, 60, interval=0.2, what="the surplus killed")
        killed = wait_until(
            lambda: {e["taskId"] for e in events.of("status_update_event") if e["taskStatus"] == "TASK_KILLED"},
            10,
            what="the replacement's TASK_KILLED",
        )
        assert replacement["id"] in killed
        # The eager app's original came back unknown (expunged at once): killed, and its end reported as such.
        ended = wait_until(
            lambda: [
                e for e in events.of("unknown_instance_terminated_event") if e["instanceId"] == original["/eager"]
            ],
            30,
            what="the eager app's returning task killed",
        )
        assert ended[0]["runSpecId"] == "/eager" and ended[0]["condition"] == "Killed"
        assert cluster.master is not None
        running = [
            t["id"]
            for f in cluster.master.get("/master/frameworks").json()["frameworks"]
            for t in f["tasks"]
            if t["state"] == "TASK_RUNNING"
        ]
        assert sorted(running) == sorted(
            [original["/patient"], original["/waiting"], tasks(marathon, "/eager")[0]["id"]]
        )
    finally:
        events.close()


def test_unreachable_strategy_is_validated_as_marathon_does(partitioned: tuple[Cluster, MarathonHarness]) -> None:
    _, marathon = partitioned
    answer = marathon.request(
        "POST", "/v2/apps", json=app("/bad", {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5})
    )
    assert answer.status_code == 422
    assert answer.json()["details"] == [
        {
            "path": "/unreachableStrategy/inactiveAfterSeconds",
            "errors": ["inactiveAfterSeconds (10) must be less or equal to expungeAfterSeconds, which is 5"],
        }
    ]
    default = marathon.request("POST", "/v2/apps", json=app("/plain")).json()
    assert default["unreachableStrategy"] == {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
    marathon.request("DELETE", "/v2/apps/plain")
    info = marathon.get("/v2/info").json()
    assert info["frameworkId"]
    assert cluster_capabilities(partitioned[0], info["frameworkId"]) >= {"PARTITION_AWARE", "TASK_KILLING_STATE"}


def cluster_capabilities(cluster: Cluster, framework_id: str) -> set[str]:
    assert cluster.master is not None
    for framework in cluster.master.get("/master/frameworks").json()["frameworks"]:
        if framework["id"] == framework_id:
            return set(framework.get("capabilities") or [])
    return set()
