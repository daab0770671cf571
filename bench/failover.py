"""Master failover with ZooKeeper: how long from killing the leader to a new leader serving, and to every agent
re-registered with its tasks.

Agents are emulated, as in Mesos' own failover benchmarks: each is a registration (with its running tasks) sent to
the master's agent protocol, not a process. Two real ``mesolite master`` processes contend through a real ZooKeeper.

    .venv/bin/python bench/failover.py [--agents 1000] [--tasks-per-agent 10] [--zk-session-timeout 2]

Published anchors: Mesos 1.5 re-registers 1K agents / 10K tasks in under 0.5 s (time-to-completion after the new
leader is elected, 2017 performance report); the NSDI 2011 paper measured a 4-8 s mean time to recovery, which
includes ZooKeeper noticing the dead leader (bounded by the ZooKeeper session timeout, 10 s by default).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mesolite.core.resources import Resources  # noqa: E402
from mesolite.core.scheduler_client import SchedulerClient  # noqa: E402
from tests.cluster import Cluster, ServiceProcess, wait_until  # noqa: E402
from tests.zookeeper import ZooKeeper  # noqa: E402

AGENT_RESOURCES = Resources.parse("cpus:16;mem:65536;disk:100000;ports:[31000-32000]").to_v1()
TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32").to_v1()


def registration(index: int, agent_id: str | None, framework_info: dict, tasks_per_agent: int) -> dict:
    """What an agent with ``tasks_per_agent`` running tasks sends when it (re-)registers."""
    framework_id = framework_info["id"]
    tasks = [
        {
            "framework_id": framework_id,
            "task_id": {"value": f"task-{index}-{n}"},
            "executor_id": {"value": f"task-{index}-{n}"},
            "name": f"task-{index}-{n}",
            "state": "TASK_RUNNING",
            "resources": TASK_RESOURCES,
            "role": "*",
            "info": {},
            "statuses": [{"state": "TASK_RUNNING", "timestamp": time.time()}],
        }
        for n in range(tasks_per_agent)
    ]
    info = {
        "hostname": f"agent{index}.bench",
        "ip": "127.0.0.1",
        # Nothing listens there: the master only contacts an agent to launch or kill, which this bench never does.
        "port": 40000 + index % 20000,
        "resources": AGENT_RESOURCES,
        "attributes": [],
    }
    if agent_id:
        info["id"] = {"value": agent_id}
    return {"agent_info": info, "frameworks": [framework_info], "tasks": tasks}


def register_all(url: str, bodies: list[dict]) -> list[str]:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
    session.mount("http://", adapter)

    def post(body: dict) -> str:
        response = session.post(f"{url}/master/internal/register", json=body, timeout=60)
        response.raise_for_status()
        return str(response.json()["agent_id"]["value"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(post, bodies))


def elected(master: ServiceProcess) -> bool:
    try:
        return master.get("/metrics/snapshot").json()["master/elected"] == 1.0
    except requests.RequestException:
        return False


def run(agents: int, tasks_per_agent: int, session_timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="mesolite-failover-") as tmp:
        base = Path(tmp)
        zookeeper = ZooKeeper(base / "zk").start()
        cluster = Cluster(base)
        try:
            flags = (
                "--zk",
                zookeeper.url("mesos"),
                "--zk_session_timeout",
                str(session_timeout),
                "--agent_ping_timeout",
                "600",
                "--allocation_interval",
                "5",
            )
            masters = [cluster.start_master(*flags, name=f"master{n}") for n in range(2)]
            leader = wait_until(lambda: next((m for m in masters if elected(m)), None), timeout=60, what="a leader")
            follower = next(m for m in masters if m is not leader)
            client = SchedulerClient(leader.url, {"user": "bench", "name": "failover-bench", "failover_timeout": 3600})
            framework_id = client.subscribe()
            framework_info = {
                "user": "bench",
                "name": "failover-bench",
                "id": {"value": framework_id},
                "failover_timeout": 3600.0,
            }
            started = time.perf_counter()
            ids = register_all(
                leader.url, [registration(i, None, framework_info, tasks_per_agent) for i in range(agents)]
            )
            print(
                f"registered {agents} agents with {agents * tasks_per_agent} tasks in "
                f"{time.perf_counter() - started:.2f}s"
            )
            client.close()

            killed = time.perf_counter()
            leader.stop(signal.SIGKILL)
            wait_until(lambda: elected(follower), timeout=120, interval=0.01, what="the follower to lead")
            serving = wait_until(
                lambda: follower.get("/master/state-summary").ok, timeout=30, interval=0.01, what="state served"
            )
            leader_serving = time.perf_counter() - killed
            assert serving
            reregister_started = time.perf_counter()
            register_all(
                follower.url, [registration(i, ids[i], framework_info, tasks_per_agent) for i in range(agents)]
            )
            summary = follower.get("/master/state-summary").json()
            active = len(summary["slaves"])
            running = sum(s["TASK_RUNNING"] for s in summary["slaves"])
            reregistered = time.perf_counter() - reregister_started
            total = time.perf_counter() - killed
        finally:
            cluster.stop()
            zookeeper.stop()

    print()
    print(f"{'measure':<52}{'mesolite':>12}{'anchor':>14}{'ratio':>8}")
    print(
        f"{'kill -9 leader -> new leader serving (ZK session ' + str(session_timeout) + 's)':<52}"
        f"{leader_serving:>11.2f}s{'4-8 s (NSDI)':>14}{leader_serving / 6.0:>8.2f}"
    )
    print(
        f"{'new leader -> all agents re-registered':<52}{reregistered:>11.2f}s{'<0.5 s (1.5)':>14}"
        f"{reregistered / 0.5:>8.2f}"
    )
    print(f"{'kill -9 leader -> all agents re-registered':<52}{total:>11.2f}s")
    print(f"agents active after failover: {active}/{agents}, tasks running: {running}/{agents * tasks_per_agent}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--tasks-per-agent", type=int, default=10)
    parser.add_argument("--zk-session-timeout", type=float, default=2.0)
    args = parser.parse_args()
    run(args.agents, args.tasks_per_agent, args.zk_session_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
