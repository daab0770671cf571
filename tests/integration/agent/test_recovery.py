"""Checkpointing and recovery: checkpointed tasks survive the agent (kill -9, SIGTERM, a restart) and the next agent
takes them back; ``--recover=cleanup`` and SIGUSR1 take them down; finished sandboxes are garbage collected."""

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


def test_sigterm_ends_the_agent_only_and_the_next_agent_takes_the_task_back(cluster: Cluster) -> None:
    """``systemctl stop``/restart or an upgrade (SIGTERM) must not touch checkpointed tasks, as in Mesos."""
    master = cluster.start_master()
    agent = cluster.start_agent()
    agent_id = cluster.agent_id(agent)
    keep = SchedulerClient(master.url, CHECKPOINTED)
    keep.subscribe()
    try:
        offer = next_offer(keep)
        keep.launch(offer, [task("outliver", offer)])
        pid = _pid(update_for(keep, "outliver", "TASK_RUNNING"))
        assert agent.process is not None
        agent.send_signal(signal.SIGTERM)
        assert agent.process.wait(timeout=15) == 0
        time.sleep(1)
        assert os.path.exists(f"/proc/{pid}"), "SIGTERM took the checkpointed task down"

        agent.start()
        wait_until(lambda: cluster.agent_id(agent) == agent_id, what="re-registration under the same id")
        [executor] = [e for f in agent.get("/state").json()["frameworks"] for e in f["executors"]]
        assert executor["tasks"][0]["state"] == "TASK_RUNNING"
        assert executor["tasks"][0]["statuses"][-1]["container_status"]["executor_pid"] == pid
        keep.kill("outliver", agent_id)
        assert update_for(keep, "outliver", "TASK_KILLED")["message"] == "Command terminated with signal Terminated"
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="the recovered task to be killed")
    finally:
        keep.close()


def _processes_under(directory: str) -> list[int]:
    """Processes whose command line or working directory is inside ``directory``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if directory in cmdline or cwd.startswith(directory):
            found.append(int(entry))
    return found


def _ignores_sigterm(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        mask = next(int(line.split()[1], 16) for line in handle if line.startswith("SigIgn:"))
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def _events_until_failure(client: SchedulerClient, timeout: float = 20.0) -> tuple[dict[str, dict], dict]:
    """The last update of each task (acknowledged as they come) up to the FAILURE event, and that event."""
    last: dict[str, dict] = {status["task_id"]["value"]: status for status in client.__dict__.get("seen_updates", [])}
    deadline = time.monotonic() + timeout
    while True:
        event = client.next_event(None, max(0.01, deadline - time.monotonic()))
        if event["type"] == "FAILURE":
            return last, event["failure"]
        if event["type"] == "UPDATE":
            status = event["update"]["status"]
            client.acknowledge(status)
            last[status["task_id"]["value"]] = status


def test_sigusr1_shuts_the_tasks_down_and_the_agent_leaves_the_master(cluster: Cluster) -> None:
    """Mesos' SIGUSR1: the explicit way to take an agent and everything it runs out of the cluster."""
    master = cluster.start_master()
    agent = cluster.start_agent()
    agent_id = cluster.agent_id(agent)
    keep = SchedulerClient(master.url, CHECKPOINTED)
    keep.subscribe()
    try:
        offer = next_offer(keep)
        keep.launch(offer, [task("retired", offer), task("stubborn", offer, "trap '' TERM; exec sleep 1000")])
        retired = _pid(update_for(keep, "retired", "TASK_RUNNING"))
        stubborn = _pid(update_for(keep, "stubborn", "TASK_RUNNING"))
        wait_until(lambda: _ignores_sigterm(stubborn), what="the stubborn task to ignore SIGTERM")
        assert _processes_under(agent.work_dir)
        assert agent.process is not None
        agent.send_signal(signal.SIGUSR1)
        assert agent.process.wait(timeout=20) == 0

        last, failure = _events_until_failure(keep)
        assert failure == {"agent_id": {"value": agent_id}}  # the scheduler's agentLost
        assert last["retired"]["state"] == last["stubborn"]["state"] == "TASK_KILLED"
        assert last["retired"]["message"] == (
            "Task killed: the agent is shutting down (Command terminated with signal Terminated)"
        )
        assert last["stubborn"]["message"].endswith("(Command terminated with signal Killed)")
        assert not os.path.exists(f"/proc/{retired}") and not os.path.exists(f"/proc/{stubborn}")
        assert _processes_under(agent.work_dir) == []
        assert master.get("/master/slaves").json()["slaves"] == []
        assert master.get("/master/state").json()["activated_slaves"] == 0

        agent.start()  # the work dir now belongs to a new agent
        wait_until(lambda: cluster.agent_id(agent), what="the next agent to register")
        assert cluster.agent_id(agent) != agent_id
        assert [e for f in agent.get("/state").json()["frameworks"] for e in f["executors"]] == []
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
