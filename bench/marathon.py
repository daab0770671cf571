"""Marathon at scale: launching a 500-instance app, and GET /v2/apps with 1,000 apps and 10,000 tasks.

1. Launch: a real master, ``--agents`` agents and ``mesolite marathon`` (tests.cluster); POST one app with
   ``--instances`` ``sleep`` instances (0.01 cpus, 4 MiB, one port each) and time POST -> all TASK_RUNNING and
   POST -> the deployment gone. Marathon 0.15.2 took 14.18 s for 500 instances on 189 agents (OpenStack
   performance-docs); ``--max_instances_per_offer`` is set as in that run (20) unless given.
2. Read latency: 1,000 apps with 10 tasks each written to a fresh Marathon store, then ``mesolite marathon`` started
   on it against a master address where nothing listens (so nothing reconciles the fake tasks away), and GET
   /v2/apps timed (default embeds: counts, deployments; and with ``embed=apps.tasks``). Marathon 0.8 took 12.08 s
   with 1,000 tasks (its issue #1274).

Usage: ``.venv/bin/python bench/marathon.py [--instances 500] [--agents 5] [--apps 1000] [--tasks-per-app 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "services"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from mesolite.core.store import SQLiteStore  # noqa: E402
from mesolite.marathon.appdef import normalize_app  # noqa: E402
from mesolite.marathon.state import State, Task, iso  # noqa: E402
from tests.cluster import Cluster, ServiceProcess, free_port  # noqa: E402


def launch(instances: int, agents: int, per_offer: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cluster = Cluster(base)
        marathon: ServiceProcess | None = None
        try:
            cluster.start_master()
            per_agent = instances // agents + 20
            for _ in range(agents):
                cluster.start_agent(
                    resources=f"cpus:{per_agent * 0.01 + 1:.2f};mem:{per_agent * 4 + 256};"
                    f"ports:[31000-{31000 + per_agent}]"
                )
            port = free_port()
            assert cluster.master is not None
            marathon = ServiceProcess(
                "marathon",
                [
                    "--log_level",
                    "warning",
                    "marathon",
                    "--master",
                    f"127.0.0.1:{cluster.master.port}",
                    "--http_port",
                    str(port),
                    "--work_dir",
                    str(base / "marathon"),
                    "--max_instances_per_offer",
                    str(per_offer),
                ],
                port,
                base,
            ).start("/v2/info")
            url = marathon.url
            while not requests.get(url + "/v2/info", timeout=5).json()["frameworkId"]:
                time.sleep(0.1)
            app = {"id": "bench", "cmd": "sleep 3600", "cpus": 0.01, "mem": 4, "instances": instances}
            started = time.monotonic()
            assert requests.post(url + "/v2/apps", json=app, timeout=30).status_code == 201
            running_at = deployed_at = None
            while deployed_at is None:
                data = requests.get(url + "/v2/apps/bench", timeout=30).json()["app"]
                now = time.monotonic()
                if running_at is None and data["tasksRunning"] == instances:
                    running_at = now
                if running_at is not None and not data["deployments"]:
                    deployed_at = now
                if now - started > 600:
                    raise TimeoutError(f"only {data['tasksRunning']} of {instances} running after 600 s")
                time.sleep(0.2)
            assert running_at is not None
            print(f"launch: {instances} instances on {agents} agents (--max_instances_per_offer {per_offer})")
            print(
                f"  all running after {running_at - started:.2f} s; deployment done after {deployed_at - started:.2f} s"
            )
            print(f"  Marathon 0.15.2: 14.18 s for 500 on 189 agents -> ratio {14.18 / (running_at - started):.2f}x")
            requests.delete(url + "/v2/apps/bench", timeout=30)
            end = time.monotonic() + 120
            while requests.get(url + "/v2/tasks", timeout=30).json()["tasks"] and time.monotonic() < end:
                time.sleep(0.5)
        finally:
            if marathon is not None:
                marathon.stop()
            cluster.stop()


def read_latency(apps: int, tasks_per_app: int, requests_count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        store = SQLiteStore(str(base / "marathon" / "marathon.db"))
        state = State(store)
        version = iso()
        for a in range(apps):
            app = normalize_app(
                {
                    "id": f"/team{a % 20}/app{a}",
                    "cmd": "sleep 3600",
                    "cpus": 0.01,
                    "mem": 4,
                    "instances": tasks_per_app,
                    "labels": {"team": str(a % 20)},
                }
            )
            app["portDefinitions"][0]["port"] = 10000 + a
            app["version"] = version
            app["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": version}
            state.put_app(app, f"/team{a % 20}")
            for t in range(tasks_per_app):
                state.add_task(
                    Task(
                        id=f"team{a % 20}_app{a}.{t}",
                        app_id=app["id"],
                        agent_id=f"agent-{t % 5}",
                        host=f"10.0.0.{t % 5}",
                        ports=[31000 + t],
                        service_ports=[10000 + a],
                        version=version,
                        config_version=version,
                        staged_at=version,
                        state="TASK_RUNNING",
                        started_at=version,
                    )
                )
        for g in range(20):
            state.put_group({"id": f"/team{g}", "dependencies": [], "version": version})
        store.close()
        port = free_port()
        marathon = ServiceProcess(
            "marathon",
            [
                "--log_level",
                "warning",
                "marathon",
                "--master",
                f"127.0.0.1:{free_port()}",
                "--http_port",
                str(port),
                "--work_dir",
                str(base / "marathon"),
            ],
            port,
            base,
        )
        try:
            marathon.start("/v2/info")
            session = requests.Session()
            for label, path in (
                ("GET /v2/apps", "/v2/apps"),
                ("GET /v2/apps?embed=apps.tasks", "/v2/apps?embed=apps.tasks"),
            ):
                session.get(marathon.url + path, timeout=60)
                timings = []
                for _ in range(requests_count):
                    started = time.perf_counter()
                    response = session.get(marathon.url + path, timeout=60)
                    timings.append(time.perf_counter() - started)
                    assert response.status_code == 200
                count = len(response.json()["apps"])
                timings.sort()
                p50 = statistics.median(timings)
                p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
                print(
                    f"{label}: {count} apps, {apps * tasks_per_app} tasks in the store, "
                    f"{len(response.content) / 1e6:.1f} MB"
                )
                print(
                    f"  p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (Marathon 0.8: 12.08 s with 1,000 tasks"
                    f" -> ratio {12.08 / p50:.0f}x)"
                )
        finally:
            marathon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--max-instances-per-offer", type=int, default=20)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--tasks-per-app", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--skip-launch", action="store_true")
    args = parser.parse_args()
    if not args.skip_launch:
        launch(args.instances, args.agents, args.max_instances_per_offer)
    read_latency(args.apps, args.tasks_per_app, args.requests)


if __name__ == "__main__":
    main()
