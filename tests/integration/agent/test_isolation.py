"""cgroups isolation as an operator checks it: limits in the task's own cgroups, OOM as a memory limitation, usage
in /monitor/statistics."""

from __future__ import annotations

import os
import sys

import pytest

from mesolite.agent.cgroups import v1_mounts
from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, scalar, task, update_for

CGROUPS_V1 = "memory" in v1_mounts() and "cpu" in v1_mounts() and os.access(v1_mounts().get("memory", "/"), os.W_OK)
pytestmark = pytest.mark.skipif(not CGROUPS_V1, reason="needs writable cgroups v1 cpu and memory hierarchies")


def _cgroup_of(pid: int, subsystem: str) -> str:
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.strip().split(":", 2)
            if subsystem in controllers.split(","):
                return os.path.join(v1_mounts()[subsystem], path.lstrip("/"))
    raise AssertionError(f"pid {pid} has no {subsystem} cgroup")


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def test_cgroups_limit_cpu_shares_and_memory_and_report_usage(running: Cluster) -> None:
    assert running.master is not None
    agent = running.agents[0]
    client = SchedulerClient(running.master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        hog = f"{sys.executable} -c 'x = bytearray(300 * 1024 * 1024); import time; time.sleep(60)'"
        greedy = task("greedy", offer, hog)
        greedy["resources"] = [scalar("cpus", 0.1), scalar("mem", 64)]
        client.launch(offer, [task("small", offer, cpus=0.5), task("big", offer, cpus=1.5), greedy])

        pids = {}
        for name in ("small", "big"):
            status = update_for(client, name, "TASK_RUNNING")
            pids[name] = status["container_status"]["executor_pid"]
        small_cpu, big_cpu = (_cgroup_of(pids[n], "cpu") for n in ("small", "big"))
        assert small_cpu != big_cpu and os.path.basename(os.path.dirname(small_cpu)) == "mesolite"
        assert (int(_read(f"{small_cpu}/cpu.shares")), int(_read(f"{big_cpu}/cpu.shares"))) == (512, 1536)
        memory = _cgroup_of(pids["small"], "memory")
        assert int(_read(f"{memory}/memory.limit_in_bytes")) == 32 * 1024 * 1024

        failed = update_for(client, "greedy", "TASK_FAILED", timeout=30)
        assert failed["reason"] == "REASON_CONTAINER_LIMITATION_MEMORY"
        assert failed["message"].startswith("Memory limit exceeded: Requested: 64MB Maximum Used: ")

        stats = {s["executor_id"]: s["statistics"] for s in agent.get("/monitor/statistics").json()}
        assert set(stats) == {"small", "big"}
        for key in ("cpus_user_time_secs", "cpus_system_time_secs", "mem_rss_bytes", "timestamp"):
            assert key in stats["big"]
        assert stats["big"]["cpus_limit"] == 1.5
        assert stats["big"]["mem_limit_bytes"] == 32 * 1024 * 1024
        assert stats["big"]["mem_rss_bytes"] > 0

        client.kill("small", offer["agent_id"]["value"])
        update_for(client, "small", "TASK_KILLED")
        wait_until(lambda: not os.path.exists(small_cpu), what="the killed task's cgroup to be removed")
    finally:
        client.close()


def test_posix_isolation_says_so_and_still_accounts_usage(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent("--isolation", "posix/cpu,posix/mem")
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        client.launch(offer, [task("plain", offer)])
        pid = update_for(client, "plain", "TASK_RUNNING")["container_status"]["executor_pid"]
        assert "/mesolite/" not in _cgroup_of(pid, "memory")
        [entry] = agent.get("/monitor/statistics").json()
        assert entry["statistics"]["mem_rss_bytes"] > 0 and entry["statistics"]["mem_limit_bytes"] == 32 * 1024**2
        assert agent.get("/state").json()["flags"]["isolation"] == "posix/cpu,posix/mem"
        assert "resource limits are accounted, not enforced" in agent.log()
    finally:
        client.close()
