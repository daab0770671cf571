"""The DRF hierarchical allocator, as a pure function over a snapshot of the cluster.

Mesos' algorithm (src/master/allocator/mesos/hierarchical.cpp): for each agent with free resources (agents shuffled
every cycle), walk roles in DRF order, and within the role walk frameworks in DRF order; the first framework that has
not suppressed the role and has no live decline filter covering the resources gets everything on that agent
allocatable to the role. Shares are recomputed for the one framework (and role) that just received resources, which
is why roles sit in a heap and each role's frameworks in a list kept sorted (only the one that received resources is
moved) instead of re-sorting everyone per agent (the re-sorting was Mesos' own bottleneck until 1.7.1).

Keeping this a function of a snapshot lets the master hold its lock only to build the snapshot, and lets the unit
tests and bench/allocator.py drive it with no server at all.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mesolite.core.resources import Resource, Resources

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


@dataclass(frozen=True, slots=True)
class RoleQuota:
    """A role's quota on scalar resources: ``guarantees`` are held back for it and served first, ``limits`` cap
    what it consumes."""

    guarantees: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    agents: Sequence[AgentView]
    frameworks: Sequence[FrameworkView]
    totals: Mapping[str, float]
    weights: Mapping[str, float] = field(default_factory=dict)
    min_allocatable: Sequence[Mapping[str, float]] = DEFAULT_MIN_ALLOCATABLE
    excluded_from_share: frozenset[str] = frozenset({"gpus"})
    # Quota by role, and what each role with quota consumes now (its reservations plus the unreserved scalars
    # allocated or offered to it), the basis of both limits and guarantees.
    quotas: Mapping[str, RoleQuota] = field(default_factory=dict)
    consumed: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


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
    """A DRF-ordered heap of roles: (stage, share, allocation count, name), smallest first. Stage 0 holds the
    roles whose quota guarantee is not met yet, which Mesos serves before everyone else."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, float, int, str]] = []

    def push(self, stage: int, share: float, count: int, name: str) -> None:
        heapq.heappush(self._heap, (stage, share, count, name))

    def ordered(self) -> Iterable[tuple[int, float, int, str]]:
        """Yield entries in DRF order, each popped; the caller pushes back what it does not consume."""
        while self._heap:
            yield heapq.heappop(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)


class _Quota:
    """Quota during one cycle: limits shrink a role's unreserved scalars to ``limit - consumed``, and every
    allocation leaves the cluster's free unreserved scalars at or above the headroom the other roles' unmet
    guarantees need (Mesos' hierarchical allocator since 1.9). Reservations and non-scalars are never cut."""

    def __init__(self, snapshot: Snapshot, agents: Sequence[AgentView]) -> None:
        self.limits = {role: q.limits for role, q in snapshot.quotas.items() if q.limits}
        self.guarantees = {role: q.guarantees for role, q in snapshot.quotas.items() if q.guarantees}
        self.consumed = {role: dict(snapshot.consumed.get(role, {})) for role in snapshot.quotas}
        self.free: dict[str, float] = {}
        if self.guarantees:
            for agent in agents:
                _add_scalars(self.free, agent.available.unreserved().scalars())

    def stage(self, role: str) -> int:
        guarantees = self.guarantees.get(role)
        if not guarantees:
            return 1
        used = self.consumed[role]
        return 0 if any(used.get(name, 0.0) + 1e-9 < amount for name, amount in guarantees.items()) else 1

    def _headroom(self, role: str) -> dict[str, float]:
        needed: dict[str, float] = {}
        for other, guarantees in self.guarantees.items():
            if other == role:
                continue
            used = self.consumed[other]
            for name, amount in guarantees.items():
                missing = amount - used.get(name, 0.0)
                if missing > 0:
                    needed[name] = needed.get(name, 0.0) + missing
        return needed

    def restrict(self, role: str, offered: Resources) -> Resources:
        """What of ``offered`` the role may take."""
        unreserved = offered.unreserved().scalars()
        cut: dict[str, float] = {}
        limits = self.limits.get(role)
        if limits:
            used = self.consumed[role]
            for name, limit in limits.items():
                allowed = max(0.0, limit - used.get(name, 0.0))
                if unreserved.get(name, 0.0) > allowed:
                    cut[name] = unreserved[name] - allowed
        if self.guarantees:
            for name, needed in self._headroom(role).items():
                have = unreserved.get(name, 0.0) - cut.get(name, 0.0)
                allowed = max(0.0, self.free.get(name, 0.0) - needed)
                if have > allowed:
                    cut[name] = cut.get(name, 0.0) + have - allowed
        if not cut:
            return offered
        return offered - Resources(Resource(name, "SCALAR", scalar=amount) for name, amount in cut.items())

    def charge(self, role: str, offered: Resources) -> None:
        unreserved = offered.unreserved().scalars()
        if role in self.consumed:
            _add_scalars(self.consumed[role], unreserved)
        for name, amount in unreserved.items():
            if name in self.free:
                self.free[name] -= amount


def _meets_minimum(scalars: Mapping[str, float], minimums: Sequence[Mapping[str, float]]) -> bool:
    """is_allocatable() for resources whose scalars() are already at hand (and which are not empty)."""
    if not minimums:
        return True
    return any(all(scalars.get(name, 0.0) >= amount for name, amount in quantity.items()) for quantity in minimums)


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
    # Per role, its frameworks as a list kept in DRF order: walking it costs nothing for the frameworks that are
    # passed over (filtered, suppressed), only the one that receives resources is moved.
    members: dict[str, list[tuple[float, int, str]]] = {}
    for fw in snapshot.frameworks:
        for role in fw.roles:
            allocated = dict(fw.allocated.get(role, {}))
            fw_alloc[(role, fw.id)] = allocated
            fw_count[(role, fw.id)] = 0
            _add_scalars(role_alloc.setdefault(role, {}), allocated)
            role_count.setdefault(role, 0)
            members.setdefault(role, []).append((share_of(allocated, 1.0), 0, fw.id))
    for entries in members.values():
        entries.sort()

    agents = list(snapshot.agents)
    quota = _Quota(snapshot, agents) if snapshot.quotas else None
    roles = _Sorter()
    for role, allocated in role_alloc.items():
        roles.push(quota.stage(role) if quota else 1, share_of(allocated, weights.get(role, 1.0)), 0, role)

    rng.shuffle(agents)
    minimums = snapshot.min_allocatable
    result: list[Allocation] = []
    for agent in agents:
        available = agent.available
        if not available:
            continue
        scalars = available.scalars()
        if not _meets_minimum(scalars, minimums):
            continue
        # The common case: nothing reserved, so every role is offered the agent whole.
        unreserved_only = available.roles() == {"*"}
        skipped_roles: list[tuple[int, float, int, str]] = []
        for role_entry in roles.ordered():
            role = role_entry[3]
            if unreserved_only:
                offered, offered_scalars = available, scalars
            else:
                offered = available.allocatable_to(role)
                if len(offered) == len(available):
                    offered, offered_scalars = available, scalars
                else:
                    offered_scalars = offered.scalars()
                    if not offered or not _meets_minimum(offered_scalars, minimums):
                        skipped_roles.append(role_entry)
                        continue
            if quota is not None:
                restricted = quota.restrict(role, offered)
                if restricted is not offered:
                    offered, offered_scalars = restricted, restricted.scalars()
                    if not offered or not _meets_minimum(offered_scalars, minimums):
                        skipped_roles.append(role_entry)
                        continue
            entries = members[role]
            index = _pick_framework(entries, role, agent.id, offered, frameworks_by_id)
            if index is None:
                skipped_roles.append(role_entry)
                continue
            chosen = entries.pop(index)[2]
            key = (role, chosen)
            _add_scalars(fw_alloc[key], offered_scalars)
            fw_count[key] += 1
            bisect.insort(entries, (share_of(fw_alloc[key], 1.0), fw_count[key], chosen))
            _add_scalars(role_alloc[role], offered_scalars)
            role_count[role] += 1
            stage = 1
            if quota is not None:
                quota.charge(role, offered)
                stage = quota.stage(role)
            skipped_roles.append((stage, share_of(role_alloc[role], weights.get(role, 1.0)), role_count[role], role))
            result.append(Allocation(chosen, role, agent.id, offered))
            if offered is available:
                break
            available = available - offered
            if not available:
                break
            scalars = available.scalars()
            if not _meets_minimum(scalars, minimums):
                break
        for entry in skipped_roles:
            roles.push(*entry)
    return result


def _pick_framework(
    entries: Sequence[tuple[float, int, str]],
    role: str,
    agent_id: str,
    offered: Resources,
    frameworks: Mapping[str, FrameworkView],
) -> int | None:
    """The position in ``entries`` (DRF order) of the first framework that may take ``offered``, if any."""
    for index, entry in enumerate(entries):
        fw = frameworks[entry[2]]
        if fw.suppressed_roles and role in fw.suppressed_roles:
            continue
        if fw.filters:
            refused = fw.filters.get(agent_id)
            if refused is not None and refused.contains(offered):
                continue
        return index
    return None
