"""The DRF hierarchical allocator, as a pure function over a snapshot of the cluster.

Mesos' algorithm (src/master/allocator/mesos/hierarchical.cpp): for each agent with free resources (agents shuffled
every cycle), walk roles in DRF order, and within the role walk frameworks in DRF order; the first framework that has
not suppressed the role and has no live decline filter covering the resources gets everything on that agent
allocatable to the role. Shares are recomputed for the one framework (and role) that just received resources, which
is why heaps are used instead of re-sorting everyone per agent (the re-sorting was Mesos' own bottleneck until 1.7.1).

Keeping this a function of a snapshot lets the master hold its lock only to build the snapshot, and lets the unit
tests and bench/allocator.py drive it with no server at all.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mesolite.core.resources import Resources

# An offer must carry at least one of these (Mesos --min_allocatable_resources default "cpus:0.01|mem:32").
DEFAULT_MIN_ALLOCATABLE: tuple[dict[str, float], ...] = ({"cpus": 0.01}, {"mem": 32.0})


@dataclass(slots=True)
class AgentView:
    id: str
    available: Resources


@dataclass(slots=True)
class FrameworkView:
    id: str
    roles: tuple[str, ...]
    # Scalars already allocated (in use or offered) per role this framework holds: the basis of its DRF share.
    allocated: dict[str, dict[str, float]] = field(default_factory=dict)
    suppressed_roles: frozenset[str] = frozenset()
    # agent id -> the resources declined there; an offer is refused while its resources are a subset of these.
    filters: Mapping[str, Resources] = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    agents: Sequence[AgentView]
    frameworks: Sequence[FrameworkView]
    totals: Mapping[str, float]
    weights: Mapping[str, float] = field(default_factory=dict)
    min_allocatable: Sequence[Mapping[str, float]] = DEFAULT_MIN_ALLOCATABLE
    excluded_from_share: frozenset[str] = frozenset({"gpus"})


@dataclass(frozen=True, slots=True)
class Allocation:
    framework_id: str
    role: str
    agent_id: str
    resources: Resources


def is_allocatable(resources: Resources, minimums: Sequence[Mapping[str, float]]) -> bool:
    if not resources:
        return False
    scalars = resources.scalars()
    if not minimums:
        return True
    return any(all(scalars.get(name, 0.0) >= amount for name, amount in quantity.items()) for quantity in minimums)


class _Share:
    """DRF share of one client: max over scalar resources of allocated/total, divided by the weight."""

    __slots__ = ("_totals", "_excluded")

    def __init__(self, totals: Mapping[str, float], excluded: frozenset[str]) -> None:
        self._totals = {name: total for name, total in totals.items() if total > 0 and name not in excluded}
        self._excluded = excluded

    def __call__(self, allocated: Mapping[str, float], weight: float) -> float:
        share = 0.0
        for name, amount in allocated.items():
            total = self._totals.get(name)
            if total:
                share = max(share, amount / total)
        return share / (weight or 1.0)


def _add_scalars(into: dict[str, float], scalars: Mapping[str, float]) -> None:
    for name, amount in scalars.items():
        into[name] = into.get(name, 0.0) + amount


class _Sorter:
    """A DRF-ordered heap of clients with lazy updates: (share, allocation count, name).

    ``pop_eligible`` removes entries until one passes the predicate; the skipped entries go back unchanged.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []

    def push(self, share: float, count: int, name: str) -> None:
        heapq.heappush(self._heap, (share, count, name))

    def ordered(self) -> Iterable[tuple[float, int, str]]:
        """Yield entries in DRF order, each popped; the caller pushes back what it does not consume."""
        while self._heap:
            yield heapq.heappop(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)


def allocate(snapshot: Snapshot, rng: random.Random | None = None) -> list[Allocation]:
    """One allocation cycle: which framework gets which agent's free resources, and under which role."""
    rng = rng or random.Random()
    share_of = _Share(snapshot.totals, snapshot.excluded_from_share)
    weights = snapshot.weights

    role_alloc: dict[str, dict[str, float]] = {}
    role_count: dict[str, int] = {}
    fw_alloc: dict[tuple[str, str], dict[str, float]] = {}
    fw_count: dict[tuple[str, str], int] = {}
    frameworks_by_id = {fw.id: fw for fw in snapshot.frameworks}
    members: dict[str, _Sorter] = {}
    for fw in snapshot.frameworks:
        for role in fw.roles:
            allocated = dict(fw.allocated.get(role, {}))
            fw_alloc[(role, fw.id)] = allocated
            fw_count[(role, fw.id)] = 0
            _add_scalars(role_alloc.setdefault(role, {}), allocated)
            role_count.setdefault(role, 0)
            members.setdefault(role, _Sorter()).push(share_of(allocated, 1.0), 0, fw.id)

    roles = _Sorter()
    for role, allocated in role_alloc.items():
        roles.push(share_of(allocated, weights.get(role, 1.0)), 0, role)

    agents = list(snapshot.agents)
    rng.shuffle(agents)
    minimums = snapshot.min_allocatable
    result: list[Allocation] = []
    for agent in agents:
        available = agent.available
        if not is_allocatable(available, minimums):
            continue
        skipped_roles: list[tuple[float, int, str]] = []
        for role_entry in roles.ordered():
            role = role_entry[2]
            offered = available.allocatable_to(role)
            chosen = _pick_framework(members[role], role, agent.id, offered, frameworks_by_id, minimums)
            if chosen is None:
                skipped_roles.append(role_entry)
                continue
            key = (role, chosen)
            scalars = offered.scalars()
            _add_scalars(fw_alloc[key], scalars)
            fw_count[key] += 1
            members[role].push(share_of(fw_alloc[key], 1.0), fw_count[key], chosen)
            _add_scalars(role_alloc[role], scalars)
            role_count[role] += 1
            skipped_roles.append((share_of(role_alloc[role], weights.get(role, 1.0)), role_count[role], role))
            result.append(Allocation(chosen, role, agent.id, offered))
            available = available - offered
            if not is_allocatable(available, minimums):
                break
        for entry in skipped_roles:
            roles.push(*entry)
    return result


def _pick_framework(
    sorter: _Sorter,
    role: str,
    agent_id: str,
    offered: Resources,
    frameworks: Mapping[str, FrameworkView],
    minimums: Sequence[Mapping[str, float]],
) -> str | None:
    """Pop frameworks in DRF order until one may take ``offered``; the chosen one is left out of the heap for the
    caller to push back with its new share, every skipped one is restored."""
    if not is_allocatable(offered, minimums):
        return None
    skipped: list[tuple[float, int, str]] = []
    chosen: str | None = None
    for entry in sorter.ordered():
        fw = frameworks[entry[2]]
        refused = fw.filters.get(agent_id)
        if role in fw.suppressed_roles or (refused is not None and refused.contains(offered)):
            skipped.append(entry)
            continue
        chosen = fw.id
        break
    for entry in skipped:
        sorter.push(*entry)
    return chosen
