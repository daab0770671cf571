"""Container churn on one agent: launch N command tasks and N Docker tasks, then destroy them.

Starts a real ``mesolite master`` and one ``mesolite agent`` (tests.cluster) with ``--containerizers=mesos,docker``
against podman's Docker-compatible API (scripts/setup-podman.sh builds the local busybox image; nothing is pulled).
For each kind, one v1 framework launches N ``sleep 300`` tasks (0.01 cpus, 32 MB each) in one ACCEPT, acknowledges
every update, and once all are TASK_RUNNING kills them all and waits for every TASK_KILLED. Reported per kind: the
time from ACCEPT to the last TASK_RUNNING (launch), from the first KILL to the last TASK_KILLED (destroy), the sum,
and containers per second; compared with the published Mesos 1.7 figure (1,000 containers launched and destroyed in
about 30 s, i.e. ~33 per second).

The Docker half is skipped, saying why, only when podman is not installed.

Usage: ``.venv/bin/python bench/containers.py [--tasks 200]`` from the repository root (as root, for cgroups).
"""

from __future__ import annotations

import argparse
import getpass
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "services"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from mesolite.core.scheduler_client import SchedulerClient  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

MESOS_CONTAINERS_PER_SECOND = 1000 / 30.0  # Mesos 1.7: 1,000 containers launched and destroyed in about 30 s


def _task(task_id: str, agent_id: dict[str, str], image: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": agent_id,
        "command": {"value": "sleep 300"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
        "kill_policy": {"grace_period": {"nanoseconds": 0}},
    }
    if image:
        info["container"] = {"type": "DOCKER", "docker": {"image": image, "network": "NONE"}}
    return info


def _scalar(offer: dict[str, Any], name: str) -> float:
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name and "scalar" in r)


def _offer_for(client: SchedulerClient, count: int) -> dict[str, Any]:
    """An offer that holds all the tasks (resources of the previous half may still be on their way back)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for offer in client.next_event("OFFERS", 30)["offers"]["offers"]:
            if _scalar(offer, "cpus") >= 0.01 * count - 1e-6 and _scalar(offer, "mem") >= 32 * count:
                return offer
            client.decline([offer["id"]["value"]], refuse_seconds=0.5)
    raise TimeoutError("no offer large enough for the benchmark")


def run(master_url: str, count: int, image: str | None, timeout: float) -> dict[str, float]:
    name = "docker" if image else "command"
    client = SchedulerClient(master_url, {"user": getpass.getuser(), "name": f"bench-containers-{name}"})
    acks = ThreadPoolExecutor(max_workers=8)
    states: dict[str, str] = {}
    try:
        client.subscribe(timeout=30)
        offer = _offer_for(client, count)
        ids = [f"{name}-{i:04d}" for i in range(count)]
        started = time.perf_counter()
        client.launch(offer, [_task(i, offer["agent_id"], image) for i in ids], refuse_seconds=3600)

        def wait_for(wanted: set[str]) -> None:
            deadline = time.monotonic() + timeout
            while sum(states.get(i) in wanted for i in ids) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: only {sum(states.get(i) in wanted for i in ids)} of {count} done")
                try:
                    event = client.events.get(timeout=1)
                except queue.Empty:
                    continue
                if event.get("type") != "UPDATE":
                    continue
                status = event["update"]["status"]
                states[status["task_id"]["value"]] = status["state"]
                acks.submit(client.acknowledge, status)
                if status["state"] in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST"):
                    raise RuntimeError(f"{status['task_id']['value']}: {status['state']} {status.get('message')}")

        wait_for({"TASK_RUNNING"})
        launched = time.perf_counter()
        for task_id in ids:
            client.kill(task_id, offer["agent_id"]["value"])
        wait_for({"TASK_KILLED"})
        destroyed = time.perf_counter()
    finally:
        acks.shutdown(wait=True)
        client.close()
    launch, destroy = launched - started, destroyed - launched
    return {"launch": launch, "destroy": destroy, "total": launch + destroy, "per_second": count / (launch + destroy)}


def podman_engine() -> tuple[str, str] | None:
    if shutil.which("podman") is None:
        return None
    result = subprocess.run([str(ROOT / "scripts" / "setup-podman.sh"), "start"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/setup-podman.sh failed:\n{result.stderr}")
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return values["DOCKER_HOST"], values["MESOLITE_IMAGE"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--only", choices=["command", "docker"], help="run one half only")
    args = parser.parse_args()
    engine = podman_engine()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as base:
        cluster = Cluster(Path(base))
        try:
            cluster.start_master()
            flags = ["--containerizers", "mesos,docker", "--docker_socket", engine[0]] if engine else []
            cluster.start_agent(*flags, resources=f"cpus:{args.tasks};mem:{64 * args.tasks};disk:1000")
            assert cluster.master is not None
            if args.only != "docker":
                results["command"] = run(cluster.master.url, args.tasks, None, args.timeout)
            if args.only == "command":
                pass
            elif engine is None:
                print("docker: skipped - podman is not installed (apt-get install podman runc busybox-static)")
            else:
                results["docker"] = run(cluster.master.url, args.tasks, engine[1], args.timeout)
        finally:
            cluster.stop()
    print(f"{'kind':<8} {'tasks':>6} {'launch':>9} {'destroy':>9} {'total':>9} {'per s':>8} {'vs Mesos 1.7':>13}")
    for kind, figures in results.items():
        ratio = figures["per_second"] / MESOS_CONTAINERS_PER_SECOND
        print(
            f"{kind:<8} {args.tasks:>6} {figures['launch']:>8.1f}s {figures['destroy']:>8.1f}s "
            f"{figures['total']:>8.1f}s {figures['per_second']:>8.1f} {ratio:>12.2f}x"
        )
    print(f"(Mesos 1.7: 1000 containers in ~30 s = {MESOS_CONTAINERS_PER_SECOND:.1f} per second; ratio > 1 is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
