"""End-to-end task launch throughput: a real master, real agents, a v1 scheduler, N ``sleep 300`` command tasks.

Starts ``mesolite master`` and ``--agents`` ``mesolite agent`` processes on free loopback ports (tests.cluster), then
subscribes one framework with ``SchedulerClient`` that accepts every offer, launches as many of the remaining tasks
as fit (spread evenly over the offers of one batch), acknowledges every status update, and stops once all tasks are
TASK_RUNNING. Reported:

* total: SUBSCRIBE sent -> the last task RUNNING, and tasks/s over that;
* first RUNNING: SUBSCRIBE sent -> the first TASK_RUNNING;
* launch latency per task: ACCEPT sent -> its TASK_RUNNING (p50, p99, max).

Also printed: the CPU seconds the master, the agents, the task-side processes (tasks and any per-task helper the
agent starts, such as its supervisor) and the benchmark itself used, and the memory (PSS) of the task-side processes.

Then the framework is torn down (TEARDOWN call), which makes the agents kill every task; the benchmark checks that
none of its processes survive (killing any leftovers itself), and stops the cluster.

Usage: ``.venv/bin/python bench/launch.py [--tasks 1000] [--agents 4]`` from the repository root.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import queue
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "services"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from mesolite.core.scheduler_client import SchedulerClient  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE"}
COMMAND = "sleep 300"


def _scalar(offer: dict[str, Any], name: str) -> float:
    return sum(
        float(r["scalar"]["value"]) for r in offer.get("resources") or [] if r.get("name") == name and "scalar" in r
    )


def _task_info(task_id: str, agent_id: dict[str, str], cpus: float, mem: float) -> dict[str, Any]:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": agent_id,
        "command": {"value": COMMAND, "shell": True},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
    }


@dataclass
class _Process:
    pid: int
    pgrp: int
    cpu: float  # user + system seconds so far
    task: bool  # a task of our framework (MESOS_FRAMEWORK_ID=<ours> in its environment)
    in_run: bool  # its command line names this run's temporary directory (services, per-task supervisors)


def _processes(base: str, framework_id: str | None) -> list[_Process]:
    """Every live process that belongs to this run, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    marker = f"MESOS_FRAMEWORK_ID={framework_id}".encode() if framework_id else None
    needle = base.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                in_run = needle in handle.read()
            task = False
            if marker is not None and not in_run:
                with open(f"/proc/{name}/environ", "rb") as handle:
                    task = marker in handle.read().split(b"\0")
            if not (in_run or task):
                continue
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        # After the command: state, ppid, pgrp, ..., utime (14th field overall), stime (15th).
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        found.append(_Process(int(name), int(fields[2]), cpu, task, in_run))
    return found


def _service_groups(cluster: Cluster) -> dict[int, str]:
    """Process group -> "master" or "agents": each service runs in its own session (gunicorn arbiter + worker)."""
    return {
        service.process.pid: "master" if service is cluster.master else "agents"
        for service in cluster.services
        if service.process is not None and service.process.poll() is None
    }


def _container_side(cluster: Cluster, base: str, framework_id: str | None) -> list[_Process]:
    """What the agents started for the tasks: the tasks themselves and any per-task helper (supervisor) process."""
    services = _service_groups(cluster)
    return [p for p in _processes(base, framework_id) if p.pgrp not in services]


def _wait_gone(cluster: Cluster, base: str, framework_id: str | None, timeout: float) -> list[_Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = _container_side(cluster, base, framework_id)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _cpu_usage(cluster: Cluster, base: str, framework_id: str | None) -> dict[str, float]:
    """CPU seconds so far of the master, of all agents together, of the live task-side processes, and of this
    benchmark process (its threads)."""
    services = _service_groups(cluster)
    usage = {"master": 0.0, "agents": 0.0, "task side": 0.0}
    for process in _processes(base, framework_id):
        usage[services.get(process.pgrp, "task side")] += process.cpu
    own = os.times()
    usage["bench"] = own.user + own.system
    return usage


def _pss_mb(pids: list[int]) -> float:
    """Proportional set size of these processes together (shared pages split between their users), in MB."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            continue
    return total_kb / 1024


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


class Bench:
    def __init__(self, args: argparse.Namespace, master_url: str) -> None:
        self.args = args
        self.client = SchedulerClient(
            master_url,
            {"user": getpass.getuser(), "name": "bench-launch", "role": "*", "failover_timeout": 0},
        )
        self.pending = [f"task-{i:05d}" for i in range(args.tasks)]
        self.accept_sent: dict[str, float] = {}
        self.running_at: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.offers_seen = 0
        self.accepts = 0
        self.started = 0.0
        self.first_offer = 0.0
        # Acknowledgements go out on a few threads so the event loop keeps draining while they are in flight; each
        # STARTING must be acknowledged before the agent sends that task's RUNNING.
        self.acks = ThreadPoolExecutor(max_workers=args.ack_threads, thread_name_prefix="ack")

    def run(self) -> None:
        self.started = time.perf_counter()
        self.client.subscribe(timeout=30)
        deadline = time.monotonic() + self.args.timeout
        done = len(self.running_at) + len(self.failed)
        while done < self.args.tasks:
            if time.monotonic() > deadline:
                print(f"!! timed out after {self.args.timeout:.0f}s", flush=True)
                break
            try:
                event = self.client.events.get(timeout=1.0)
            except queue.Empty:
                if self.client.closed.is_set():
                    raise RuntimeError("the master closed the event stream") from None
                continue
            kind = event.get("type")
            if kind == "OFFERS":
                self.on_offers(event["offers"].get("offers") or [])
            elif kind == "UPDATE":
                self.on_update(event["update"]["status"])
            elif kind == "ERROR":
                raise RuntimeError(f"master sent ERROR: {event.get('error')}")
            done = len(self.running_at) + len(self.failed)
        self.acks.shutdown(wait=True)

    def on_offers(self, offers: list[dict[str, Any]]) -> None:
        if not self.first_offer:
            self.first_offer = time.perf_counter()
        self.offers_seen += len(offers)
        cpus, mem = self.args.task_cpus, self.args.task_mem
        # Spread what is left over this batch of offers, each taking no more than fits.
        share = math.ceil(len(self.pending) / len(offers)) if offers else 0
        for offer in offers:
            offer_id = offer["id"]["value"]
            fit = int(min(_scalar(offer, "cpus") / cpus, _scalar(offer, "mem") / mem) + 1e-9)
            count = min(fit, share, len(self.pending))
            if count <= 0:
                # Nothing left to launch: keep these resources away from us for the rest of the run.
                self.client.decline([offer_id], refuse_seconds=3600)
                continue
            batch, self.pending = self.pending[:count], self.pending[count:]
            tasks = [_task_info(task_id, offer["agent_id"], cpus, mem) for task_id in batch]
            now = time.perf_counter()
            for task_id in batch:
                self.accept_sent[task_id] = now
            self.client.launch(offer, tasks, refuse_seconds=1)
            self.accepts += 1

    def on_update(self, status: dict[str, Any]) -> None:
        task_id = status["task_id"]["value"]
        state = status.get("state")
        if state == "TASK_RUNNING" and task_id not in self.running_at:
            self.running_at[task_id] = time.perf_counter()
        elif state in TERMINAL and task_id not in self.failed:
            self.running_at.pop(task_id, None)
            self.failed[task_id] = f"{state}: {status.get('message', '')}"
        if "uuid" in status:
            self.acks.submit(self.client.acknowledge, status)

    def report(self) -> dict[str, float]:
        wanted = self.args.tasks
        running = len(self.running_at)
        print(f"tasks RUNNING: {running}/{wanted}  (offers received {self.offers_seen}, ACCEPT calls {self.accepts})")
        if self.failed:
            print(f"tasks failed: {len(self.failed)}, e.g. {next(iter(self.failed.items()))}")
        if not running:
            return {}
        last = max(self.running_at.values())
        total = last - self.started
        latencies = [self.running_at[t] - self.accept_sent[t] for t in self.running_at]
        figures = {
            "total": total,
            "rate": running / total,
            "first_offer": self.first_offer - self.started,
            "first_running": min(self.running_at.values()) - self.started,
            "p50": statistics.median(latencies),
            "p99": _percentile(latencies, 0.99),
            "max": max(latencies),
        }
        print(f"total (SUBSCRIBE -> last RUNNING): {figures['total']:.2f} s")
        print(f"throughput:                        {figures['rate']:.1f} tasks/s")
        print(f"first offer:                       {figures['first_offer']:.2f} s")
        print(f"first RUNNING:                     {figures['first_running']:.2f} s")
        print(
            f"launch latency (ACCEPT -> RUNNING): p50 {figures['p50']:.2f} s, p99 {figures['p99']:.2f} s, "
            f"max {figures['max']:.2f} s"
        )
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="sleep tasks to launch (default 1000)")
    parser.add_argument("--agents", type=int, default=4, help="agents to start (default 4)")
    parser.add_argument("--agent-resources", default="cpus:64;mem:65536;disk:100000;ports:[31000-32000]")
    parser.add_argument("--task-cpus", type=float, default=0.1)
    parser.add_argument("--task-mem", type=float, default=32.0)
    parser.add_argument("--ack-threads", type=int, default=4, help="threads sending ACKNOWLEDGE calls (default 4)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up launching after this many seconds")
    args = parser.parse_args(argv)

    print(
        f"launch benchmark: {args.tasks} x '{COMMAND}' (cpus {args.task_cpus:g}, mem {args.task_mem:g}) "
        f"on {args.agents} agents '{args.agent_resources}', {os.cpu_count()} cores",
        flush=True,
    )
    ok = False
    with tempfile.TemporaryDirectory(prefix="mesolite-bench-") as base:
        cluster = Cluster(Path(base))
        bench: Bench | None = None
        try:
            started = time.perf_counter()
            master = cluster.start_master()
            for _ in range(args.agents):
                cluster.start_agent(resources=args.agent_resources)
            print(f"cluster up in {time.perf_counter() - started:.1f} s (master {master.url})", flush=True)
            bench = Bench(args, master.url)
            cpu_before, wall_before = _cpu_usage(cluster, base, None), time.perf_counter()
            try:
                bench.run()
            finally:
                figures = bench.report()
                _report_resources(cluster, base, bench.client.framework_id, cpu_before, wall_before)
            ok = bool(figures) and len(bench.running_at) == args.tasks
        finally:
            _teardown(cluster, base, bench)
    return 0 if ok else 1


def _report_resources(
    cluster: Cluster, base: str, framework_id: str | None, cpu_before: dict[str, float], wall_before: float
) -> None:
    wall = time.perf_counter() - wall_before
    cpu = {k: v - cpu_before.get(k, 0.0) for k, v in _cpu_usage(cluster, base, framework_id).items()}
    print(
        f"CPU seconds during the run ({wall:.1f} s wall x {os.cpu_count()} cores): "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
    )
    side = _container_side(cluster, base, framework_id)
    helpers = [p.pid for p in side if not p.task]
    tasks = [p.pid for p in side if p.task]
    print(
        f"task-side processes: {len(tasks)} task processes ({_pss_mb(tasks):.0f} MB PSS), "
        f"{len(helpers)} per-task helper processes ({_pss_mb(helpers):.0f} MB PSS)"
    )


def _teardown(cluster: Cluster, base: str, bench: Bench | None) -> None:
    """TEARDOWN (the agents kill every task), stop the cluster, and make sure nothing this run started survives."""
    framework_id = bench.client.framework_id if bench is not None else None
    started = time.perf_counter()
    if bench is not None and bench.client.stream_id:
        try:
            bench.client.call("TEARDOWN")
        except Exception as exc:  # noqa: BLE001 - the cluster is stopped and leftovers killed regardless
            print(f"TEARDOWN failed: {exc}")
        left = _wait_gone(cluster, base, framework_id, timeout=30)
        gone = time.perf_counter() - started
        if left:
            print(f"teardown: {len(left)} task-side processes still alive {gone:.1f} s after TEARDOWN")
        else:
            print(f"teardown: every task-side process gone {gone:.1f} s after TEARDOWN")
        bench.client.close()
    cluster.stop()
    # With the services stopped, anything left that names this run's directory or carries our framework id is ours.
    leftovers = _processes(base, framework_id)
    for process in leftovers:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if leftovers:
        print(f"killed {len(leftovers)} leftover processes")
    remaining = _wait_gone(cluster, base, framework_id, timeout=5)
    print(f"cluster stopped; processes of this run left (tasks '{COMMAND}' and helpers): {len(remaining)}")


if __name__ == "__main__":
    sys.exit(main())
