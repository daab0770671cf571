"""Failures a Mesos user expects the cluster to survive: an agent that stops answering, a master restart, a
scheduler that goes away for good."""

from __future__ import annotations

import os
import signal

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for

FAST_PINGS = ("--agent_ping_timeout", "0.5", "--max_agent_ping_timeouts", "2")


def test_unreachable_agent_tasks_are_lost_then_come_back(cluster: Cluster) -> None:
    master = cluster.start_master(*FAST_PINGS)
    agent = cluster.start_agent()
    plain = SchedulerClient(master.url, FRAMEWORK)
    aware = SchedulerClient(master.url, {**FRAMEWORK, "name": "aware", "capabilities": [{"type": "PARTITION_AWARE"}]})
    plain.subscribe()
    try:
        offer = next_offer(plain)
        # The rest of the agent must go to ``aware``, however long p takes to start: plain refuses it for a while.
        plain.launch(offer, [task("p", offer)], refuse_seconds=60)
        update_for(plain, "p", "TASK_RUNNING")
        aware.subscribe()
        offer = next_offer(aware)
        aware.launch(offer, [task("a", offer)])
        update_for(aware, "a", "TASK_RUNNING")

        agent.send_signal(signal.SIGSTOP)
        try:
            lost = update_for(plain, "p", "TASK_LOST")
            unreachable = update_for(aware, "a", "TASK_UNREACHABLE")
            assert lost["reason"] == unreachable["reason"] == "REASON_AGENT_UNREACHABLE"
            assert lost["source"] == "SOURCE_MASTER" and "unreachable_time" in unreachable
            failure = plain.next_event("FAILURE")["failure"]
            assert failure == {"agent_id": offer["agent_id"]}
            state = master.get("/master/state").json()
            assert state["unreachable_slaves"] == 1 and state["slaves"] == []
            assert master.get("/metrics/snapshot").json()["master/slaves_unreachable"] == 1.0
        finally:
            agent.send_signal(signal.SIGCONT)

        # The agent notices the master no longer counts it, re-registers under the same id with its running tasks.
        wait_until(lambda: master.get("/master/state").json()["activated_slaves"] == 1, what="re-registration")
        assert cluster.agent_id(agent) == offer["agent_id"]["value"]
        aware.reconcile([("a", None)])
        assert update_for(aware, "a", "TASK_RUNNING")["reason"] == "REASON_RECONCILIATION"
    finally:
        plain.close()
        aware.close()


def test_master_restart_agents_reregister_and_frameworks_resubscribe(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent()
    agent_id = cluster.agent_id(agent)
    client = SchedulerClient(master.url, FRAMEWORK)
    framework_id = client.subscribe()
    offer = next_offer(client)
    client.launch(offer, [task("survivor", offer)])
    update_for(client, "survivor", "TASK_RUNNING")

    master.stop()
    client.closed.wait(10)
    master.start()

    wait_until(lambda: cluster.agent_id(agent) == agent_id, what="the agent to re-register with its id")
    frameworks = master.get("/master/frameworks").json()["frameworks"]
    assert [(f["id"], f["connected"]) for f in frameworks] == [(framework_id, False)]
    assert [t["id"] for t in frameworks[0]["tasks"]] == ["survivor"]

    assert client.subscribe() == framework_id
    client.reconcile([("survivor", agent_id)])
    status = update_for(client, "survivor", "TASK_RUNNING")
    assert status["reason"] == "REASON_RECONCILIATION"
    # The task really is the same process: killing it through the new master reaches the agent.
    client.kill("survivor", agent_id)
    assert update_for(client, "survivor", "TASK_KILLED")["agent_id"]["value"] == agent_id
    client.close()


def test_failover_timeout_expiry_kills_the_frameworks_tasks(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent()
    client = SchedulerClient(master.url, {**FRAMEWORK, "failover_timeout": 1.0})
    framework_id = client.subscribe()
    offer = next_offer(client)
    client.launch(offer, [task("orphan", offer)])
    update_for(client, "orphan", "TASK_RUNNING")
    client.disconnect()

    completed = wait_until(lambda: master.get("/master/frameworks").json()["completed_frameworks"], timeout=20)
    assert completed[0]["id"] == framework_id
    wait_until(lambda: not agent.get("/state").json()["frameworks"], what="the agent to kill the orphan")
    executors = agent.get("/state").json()["completed_frameworks"][0]["completed_executors"]
    assert [t["state"] for e in executors for t in e["completed_tasks"]] == ["TASK_KILLED"]


def test_stopping_an_agent_leaves_no_orphan_processes(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent()
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    offer = next_offer(client)
    client.launch(offer, [task("lingering", offer, "sleep 1000")])
    update_for(client, "lingering", "TASK_RUNNING")
    pid = agent.get("/state").json()["frameworks"][0]["executors"][0]["tasks"][0]["statuses"][-1]["container_status"][
        "executor_pid"
    ]
    assert os.path.exists(f"/proc/{pid}")
    agent.stop()
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10, what="the task's process to be destroyed")
    client.close()
