"""Checkpointing and recovery: tasks survive the agent (kill -9, restart), ``--recover=cleanup`` kills them, a
graceful stop takes its tasks along, and finished sandboxes are garbage collected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for

CHECKPOINTED = {**FRAMEWORK, "name": "checkpointed", "checkpoint": True}


def _pid(status: dict) -> int:
    return int(status["container_status"]["executor_pid"])


def test_kill_9_and_restart_keeps_checkpointed_tasks_and_reports_what_ended_meanwhile(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent()
    agent_id = cluster.agent_id(agent)
    keep = SchedulerClient(master.url, CHECKPOINTED)
    lose = SchedulerClient(master.url, {**FRAMEWORK, "name": "not-checkpointed"})
    keep.subscribe()
    try:
        offer = next_offer(keep)
        keep.launch(offer, [task("survivor", offer), task("ender", offer, "sleep 2; exit 4")], refuse_seconds=60)
        survivor = _pid(update_for(keep, "survivor", "TASK_RUNNING"))
        update_for(keep, "ender", "TASK_RUNNING")
        lose.subscribe()
        offer = next_offer(lose)
        lose.launch(offer, [task("ephemeral", offer)])
        ephemeral = _pid(update_for(lose, "ephemeral", "TASK_RUNNING"))

        agent.stop(signal.SIGKILL)
        time.sleep(3)  # "ender" ends while no agent is there to see it
        assert os.path.exists(f"/proc/{survivor}") and os.path.exists(f"/proc/{ephemeral}")
        agent.start()
        wait_until(lambda: cluster.agent_id(agent) == agent_id, what="re-registration under the same id")

        ended = update_for(keep, "ender", "TASK_FAILED", timeout=30)
        assert ended["message"] == "Command exited with status 4"
        [executor] = [
            e for f in agent.get("/state").json()["frameworks"] for e in f["executors"] if e["id"] == "survivor"
        ]
        [recovered] = executor["tasks"]
        assert recovered["state"] == "TASK_RUNNING"
        assert recovered["statuses"][-1]["container_status"]["executor_pid"] == survivor
        keep.reconcile([("survivor", agent_id)])
        assert update_for(keep, "survivor", "TASK_RUNNING")["reason"] == "REASON_RECONCILIATION"
        # The framework that does not checkpoint lost its task, as in Mesos.
        wait_until(lambda: not os.path.exists(f"/proc/{ephemeral}"), what="the non-checkpointed task to be killed")
        assert update_for(lose, "ephemeral", "TASK_LOST", timeout=30)["reason"] == "REASON_AGENT_RESTARTED"

        keep.kill("survivor", agent_id)
        assert update_for(keep, "survivor", "TASK_KILLED")["message"] == "Command terminated with signal Terminated"
        wait_until(lambda: not os.path.exists(f"/proc/{survivor}"), what="the recovered task to be killed")
    finally:
        keep.close()
        lose.close()


def test_recover_cleanup_kills_what_a_dead_agent_left(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent()
    keep = SchedulerClient(master.url, CHECKPOINTED)
    keep.subscribe()
    try:
        offer = next_offer(keep)
        keep.launch(offer, [task("sleeper", offer)])
        pid = _pid(update_for(keep, "sleeper", "TASK_RUNNING"))
    finally:
        keep.close()
    agent.stop(signal.SIGKILL)
    assert os.path.exists(f"/proc/{pid}")
    cleanup = subprocess.run(
        [sys.executable, "-m", "mesolite.cli", *agent.args, "--recover", "cleanup"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cleanup.returncode == 0, cleanup.stderr
    assert "--recover=cleanup: destroyed 1 containers" in cleanup.stderr
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="--recover=cleanup to kill the task")


def test_a_graceful_stop_destroys_even_checkpointed_tasks_and_the_next_agent_reports_them(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent()
    keep = SchedulerClient(master.url, CHECKPOINTED)
    keep.subscribe()
    try:
        offer = next_offer(keep)
        keep.launch(offer, [task("stopped", offer)])
        pid = _pid(update_for(keep, "stopped", "TASK_RUNNING"))
        agent.stop()  # SIGTERM
        assert not os.path.exists(f"/proc/{pid}")
        agent.start()
        killed = update_for(keep, "stopped", "TASK_KILLED", timeout=30)
        assert killed["message"] == "Command terminated with signal Killed"
    finally:
        keep.close()


def test_finished_sandboxes_are_garbage_collected_after_gc_delay(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent("--gc_delay", "1secs", "--disk_watch_interval", "0.3secs")
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        client.launch(offer, [task("brief", offer, "echo bye"), task("lasting", offer)])
        update_for(client, "brief", "TASK_FINISHED")
        update_for(client, "lasting", "TASK_RUNNING")
        frameworks = agent.get("/state").json()["frameworks"]
        directories = {e["id"]: e["directory"] for f in frameworks for e in f["executors"] + f["completed_executors"]}
        assert os.path.isdir(directories["brief"])
        wait_until(lambda: not os.path.exists(directories["brief"]), what="the finished sandbox to be collected")
        time.sleep(1.5)
        assert os.path.isdir(directories["lasting"])  # a live sandbox is never collected
    finally:
        client.close()
