"""Allocation cycle time of the DRF allocator, against the published Mesos 1.8.0 figures.

Mirrors Mesos' ``HierarchicalAllocator_BENCHMARK_Test`` setup (src/tests/hierarchical_allocator_tests.cpp): every
agent is free, all frameworks subscribe in role ``*`` with no filters, and one cycle hands every agent to some
framework. Per size:

* ``allocate()``: ``mesolite.master.allocator.allocate()`` on a prebuilt snapshot, the pure DRF cycle that the Mesos
  figures measure;
* ``snapshot()``: ``Master.snapshot()``, the time the master spends under its lock building that snapshot from its
  own state (agents, frameworks, tasks, offers) before the cycle can run, for the same idle cluster. Mesos keeps its
  sorters up to date incrementally, so it has no equivalent step; we report it separately rather than hide it;
* ``loaded``: ``Master.snapshot()`` again with ``TASKS_PER_AGENT`` running tasks on every agent (the task density of
  Mesos' failover benchmarks), since building the snapshot is linear in the number of tasks;
* ``allocate_once()``: the master's whole cycle on the idle cluster, ``Master.allocate_once()``: snapshot, allocate,
  and turning every allocation into an ``Offer`` and an OFFERS event (queued on each framework's subscription; nothing
  goes over the network). The offers are withdrawn between runs, untimed.

Usage: ``.venv/bin/python bench/allocator.py [--repeat N] [--sizes 1000x100,5000x500] [--profile]
[--declined 1000x100,5000x500]``; ``--declined`` adds the worst case for decline filters, where every framework has
declined every agent and each cycle checks every (agent, framework) pair.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "services") not in sys.path:
    sys.path.insert(0, str(ROOT / "services"))

from mesolite.core.attributes import Attributes  # noqa: E402
from mesolite.core.resources import Resources  # noqa: E402
from mesolite.core.store import MemoryStore  # noqa: E402
from mesolite.master import allocator  # noqa: E402
from mesolite.master.state import Agent, Framework, Master, MasterConfig, Subscription, Task  # noqa: E402

AGENT_RESOURCES = "cpus:16;mem:65536;disk:1000000;ports:[31000-32000]"
TASK_RESOURCES = "cpus:0.1;mem:32"
TASKS_PER_AGENT = 10

# Mesos 1.8.0 allocation cycle, all frameworks in one role, no filters (1.7 performance blog, docs/reference §8).
MESOS_1_8_0: dict[tuple[int, int], float] = {
    (1000, 100): 0.08,
    (5000, 500): 0.4,
    (10000, 1000): 1.1,
}
DEFAULT_SIZES = list(MESOS_1_8_0)


def build_snapshot(agents: int, frameworks: int, declined: bool = False) -> allocator.Snapshot:
    """The snapshot the master would build for ``agents`` free agents and ``frameworks`` idle frameworks; with
    ``declined``, every framework holds a live decline filter on every agent (Mesos' DeclineOffers benchmark)."""
    free = Resources.parse(AGENT_RESOURCES)
    views = [allocator.AgentView(f"agent-{i}", free) for i in range(agents)]
    filters = {view.id: free for view in views} if declined else {}
    fws = [allocator.FrameworkView(f"framework-{i:05d}", ("*",), filters=filters) for i in range(frameworks)]
    totals: dict[str, float] = {}
    for name, amount in free.scalars().items():
        totals[name] = amount * agents
    return allocator.Snapshot(agents=views, frameworks=fws, totals=totals)


class _NoLink:
    """Stands in for the master's AgentLink: nothing is sent to any agent in this benchmark."""

    def send(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def build_master(agents: int, frameworks: int, tasks_per_agent: int = 0) -> Master:
    """A Master with no loops running, populated directly the way registration, SUBSCRIBE and launches would leave
    it; tasks are spread round-robin over the frameworks."""
    master = Master(MasterConfig(work_dir="/nonexistent"), MemoryStore(), link=_NoLink())  # type: ignore[arg-type]
    free = Resources.parse(AGENT_RESOURCES)
    now = time.time()
    for i in range(agents):
        agent_id = f"{master.id}-S{i}"
        master.agents[agent_id] = Agent(
            id=agent_id,
            hostname=f"host-{i}",
            ip="127.0.0.1",
            port=5051,
            resources=free,
            attributes=Attributes(),
            registered_time=now,
            last_seen=now,
        )
    for i in range(frameworks):
        framework_id = f"{master.id}-{i:05d}"
        framework = Framework(
            id=framework_id,
            info={"id": {"value": framework_id}, "name": f"bench-{i}", "user": "root", "role": "*"},
            registered_time=now,
        )
        framework.subscription = Subscription(framework_id)
        master.frameworks[framework_id] = framework
    task_resources = Resources.parse(TASK_RESOURCES)
    owners = list(master.frameworks.values())
    serial = 0
    for agent in master.agents.values():
        for _ in range(tasks_per_agent):
            owner = owners[serial % len(owners)]
            task_id = f"task-{serial}"
            serial += 1
            task = Task(
                id=task_id,
                framework_id=owner.id,
                agent_id=agent.id,
                executor_id=task_id,
                name=task_id,
                resources=task_resources,
                role="*",
                info={},
                state="TASK_RUNNING",
            )
            owner.tasks[task_id] = task
            agent.tasks[(owner.id, task_id)] = task
    return master


def _median_time(fn: Any, repeat: int, reset: Any = None) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
        if reset is not None:
            reset()
    return statistics.median(times), result


def _withdraw_offers(master: Master) -> None:
    """Undo what allocate_once() did, so the next run finds every agent free again."""
    master.offers.clear()
    for agent in master.agents.values():
        agent.offers.clear()
    for framework in master.frameworks.values():
        framework.offers.clear()
        if framework.subscription is not None:
            framework.subscription.events.queue.clear()


def run(sizes: list[tuple[int, int]], repeat: int, with_snapshot: bool) -> list[dict[str, Any]]:
    rows = []
    for agents, frameworks in sizes:
        snapshot = build_snapshot(agents, frameworks)
        rng = random.Random(42)
        allocate_s, allocations = _median_time(lambda s=snapshot, r=rng: allocator.allocate(s, r), repeat)
        assert len(allocations) == agents, f"expected every agent allocated, got {len(allocations)}"
        per_framework: dict[str, int] = {}
        for allocation in allocations:
            per_framework[allocation.framework_id] = per_framework.get(allocation.framework_id, 0) + 1
        # DRF with equal agents: every framework gets agents/frameworks of them (within one).
        assert max(per_framework.values()) - min(per_framework.values()) <= 1, "DRF imbalance"
        row: dict[str, Any] = {
            "agents": agents,
            "frameworks": frameworks,
            "allocate": allocate_s,
            "mesos": MESOS_1_8_0.get((agents, frameworks)),
        }
        if with_snapshot:
            master = build_master(agents, frameworks)
            snapshot_s, built = _median_time(master.snapshot, repeat)
            assert len(built.agents) == agents and len(built.frameworks) == frameworks
            row["snapshot"] = snapshot_s
            row["cycle"], offered = _median_time(master.allocate_once, repeat, lambda m=master: _withdraw_offers(m))
            assert offered == agents, f"allocate_once() made {offered} offers"
            del master, built
            loaded = build_master(agents, frameworks, TASKS_PER_AGENT)
            row["loaded"], built = _median_time(loaded.snapshot, repeat)
            assert len(built.agents) == agents
            del loaded, built
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


def run_declined(sizes: list[tuple[int, int]]) -> None:
    """One cycle in which no framework may take anything: every (agent, framework) pair is a filter check."""
    print(f"\n{'agents':>7} {'frameworks':>10} | {'allocate(), all declined':>24}\n" + "-" * 45)
    for agents, frameworks in sizes:
        snapshot = build_snapshot(agents, frameworks, declined=True)
        elapsed, allocations = _median_time(lambda s=snapshot: allocator.allocate(s, random.Random(42)), 1)
        assert allocations == []
        print(f"{agents:>7} {frameworks:>10} | {elapsed:>23.3f}s", flush=True)


def _header(with_snapshot: bool) -> str:
    columns = f"{'agents':>7} {'frameworks':>10} | {'allocate()':>10} {'Mesos 1.8.0':>11} {'ratio':>6}"
    if with_snapshot:
        columns += f" | {'snapshot()':>10} {'loaded':>7} | {'allocate_once()':>15} {'ratio':>6}"
    return columns + "\n" + "-" * len(columns)


def _format_row(row: dict[str, Any]) -> str:
    mesos = row["mesos"]
    ratio = f"{row['allocate'] / mesos:6.2f}" if mesos else f"{'-':>6}"
    text = (
        f"{row['agents']:>7} {row['frameworks']:>10} | {row['allocate']:>9.3f}s "
        f"{(f'{mesos:.2f}s' if mesos else '-'):>11} {ratio}"
    )
    if "snapshot" in row:
        cycle_ratio = f"{row['cycle'] / mesos:6.2f}" if mesos else f"{'-':>6}"
        text += f" | {row['snapshot']:>9.3f}s {row['loaded']:>6.3f}s | {row['cycle']:>14.3f}s {cycle_ratio}"
    return text


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        agents, frameworks = item.lower().split("x")
        sizes.append((int(agents), int(frameworks)))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="cycles per size; the median is reported (default 5)")
    parser.add_argument(
        "--sizes",
        type=_parse_sizes,
        default=DEFAULT_SIZES,
        help="comma-separated AGENTSxFRAMEWORKS (default 1000x100,5000x500,10000x1000)",
    )
    parser.add_argument("--no-snapshot", action="store_true", help="time allocate() only")
    parser.add_argument("--profile", action="store_true", help="cProfile one allocate() at the largest size")
    parser.add_argument(
        "--declined",
        type=_parse_sizes,
        metavar="SIZES",
        help="also time one cycle where every framework has declined every agent (e.g. 1000x100,5000x500)",
    )
    args = parser.parse_args(argv)

    if args.profile:
        agents, frameworks = max(args.sizes)
        snapshot = build_snapshot(agents, frameworks)
        profiler = cProfile.Profile()
        profiler.runcall(allocator.allocate, snapshot, random.Random(42))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return 0

    print(f"DRF allocation cycle, all frameworks in role '*', no filters, agents '{AGENT_RESOURCES}'")
    print(f"median of {args.repeat} runs; ratio = ours / Mesos 1.8.0 (below 1 = faster than Mesos)\n")
    print(_header(not args.no_snapshot))
    started = time.perf_counter()
    run(args.sizes, args.repeat, not args.no_snapshot)
    if not args.no_snapshot:
        print(
            f"\nloaded = snapshot() with {TASKS_PER_AGENT} running tasks per agent; allocate_once() = the master's "
            "whole cycle (snapshot + allocate + offers) on the idle cluster"
        )
    if args.declined:
        run_declined(args.declined)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
