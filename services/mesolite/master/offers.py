"""Offers: the allocator's view of the cluster, the offers its allocations become, and what takes them back
(rescinds, declines and their filters, the offer timeout).

The glue around ``allocator.py``: ``snapshot`` is all the allocator sees and ``make`` turns its result into offers,
dropping any allocation that went stale while the allocator ran without the lock. Called with the master's lock
held.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from mesolite.core import protocol as proto
from mesolite.core.resources import Resources
from mesolite.master import allocator, events
from mesolite.master.model import Agent, Cluster, Framework, Offer, accumulate

# After rescinding an offer that timed out, the same resources are held back from that framework briefly, so that
# the other frameworks get their turn instead of the hoarder being offered the same agent on the next cycle.
OFFER_TIMEOUT_REFUSE_SECONDS = 5.0


class OfferBook:
    def __init__(self, cluster: Cluster, master_id: str, wake: Callable[[], None]) -> None:
        self._cluster = cluster
        self._master_id = master_id
        self._seq = itertools.count()
        self._wake = wake

    def snapshot(
        self,
        now: float,
        weights: Mapping[str, float],
        min_allocatable: Sequence[Mapping[str, float]],
        quotas: Mapping[str, allocator.RoleQuota] | None = None,
    ) -> allocator.Snapshot:
        """Free resources of the agents that may be offered (connected, not deactivated by the operator), the
        shares, roles, suppressions and live filters of the connected frameworks (expired filters are dropped on
        the way), and the quotas with what their roles consume."""
        totals: dict[str, float] = {}
        views: list[allocator.AgentView] = []
        for agent in self._cluster.agents.values():
            if not agent.offerable:
                continue
            accumulate(totals, agent.resources.scalars())
            available = self._cluster.available(agent)
            if available:
                views.append(allocator.AgentView(agent.id, available))
        frameworks: list[allocator.FrameworkView] = []
        for framework in self._cluster.frameworks.values():
            if framework.active and framework.connected:
                frameworks.append(self._framework_view(framework, now))
        return allocator.Snapshot(
            agents=views,
            frameworks=frameworks,
            totals=totals,
            weights=dict(weights),
            min_allocatable=min_allocatable,
            quotas=dict(quotas or {}),
            consumed=self.consumed(quotas) if quotas else {},
        )

    def consumed(self, roles: Iterable[str]) -> dict[str, dict[str, float]]:
        """What each role consumes against its quota: its reservations on registered agents, plus the unreserved
        scalars its live tasks hold and its outstanding offers carry (Mesos counts offers against limits)."""
        wanted = set(roles)
        consumed: dict[str, dict[str, float]] = {role: {} for role in wanted}
        for agent in self._cluster.agents.values():
            if not agent.active:
                continue
            for role in wanted & agent.resources.roles():
                accumulate(consumed[role], agent.resources.reserved(role).scalars())
            for task in agent.tasks.values():
                if task.role in wanted and not proto.is_terminal(task.state):
                    accumulate(consumed[task.role], task.resources.unreserved().scalars())
        for offer in self._cluster.offers.values():
            if offer.role in wanted:
                accumulate(consumed[offer.role], offer.resources.unreserved().scalars())
        return consumed

    def _framework_view(self, framework: Framework, now: float) -> allocator.FrameworkView:
        allocated = {role: dict(scalars) for role, scalars in framework.task_allocation().items()}
        for offer_id in framework.offers:
            offer = self._cluster.offers[offer_id]
            accumulate(allocated.setdefault(offer.role, {}), offer.resources.scalars())
        for agent_id, (_resources, expiry) in list(framework.filters.items()):
            if expiry <= now:
                del framework.filters[agent_id]
        return allocator.FrameworkView(
            id=framework.id,
            roles=framework.roles,
            allocated=allocated,
            suppressed_roles=frozenset(framework.suppressed_roles),
            filters={agent_id: resources for agent_id, (resources, _) in framework.filters.items()},
        )

    def make(self, allocations: Sequence[allocator.Allocation], now: float) -> int:
        """Turn allocations into offers, one OFFERS event per framework; returns how many offers were made."""
        batches: dict[str, list[tuple[Offer, Agent]]] = {}
        available: dict[str, Resources] = {}
        for allocation in allocations:
            framework = self._cluster.frameworks.get(allocation.framework_id)
            agent = self._cluster.agents.get(allocation.agent_id)
            if framework is None or agent is None or not framework.connected or not agent.offerable:
                continue
            if agent.id not in available:
                available[agent.id] = self._cluster.available(agent)
            if not available[agent.id].contains(allocation.resources):
                continue
            available[agent.id] = available[agent.id] - allocation.resources
            offer = Offer(
                id=f"{self._master_id}-O{next(self._seq)}",
                framework_id=framework.id,
                agent_id=agent.id,
                role=allocation.role,
                resources=allocation.resources,
                created=now,
            )
            self._cluster.offers[offer.id] = offer
            framework.offers.add(offer.id)
            agent.offers.add(offer.id)
            batches.setdefault(framework.id, []).append((offer, agent))
        for framework_id, made in batches.items():
            self._cluster.frameworks[framework_id].send(events.offers(made))
        return sum(len(made) for made in batches.values())

    def remove(self, offer_id: str, recover: bool = True) -> Offer | None:
        """Take an offer off the books (accepted, declined, withdrawn); with ``recover`` its resources go back to
        the allocator at once."""
        offer = self._cluster.offers.pop(offer_id, None)
        if offer is None:
            return None
        framework = self._cluster.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer_id)
        agent = self._cluster.agents.get(offer.agent_id)
        if agent is not None:
            agent.offers.discard(offer_id)
        if recover:
            self._wake()
        return offer

    def withdraw(self, framework: Framework) -> None:
        """Every offer of a framework that is going away or failing over (its scheduler hears nothing)."""
        for offer_id in list(framework.offers):
            self.remove(offer_id)

    def rescind(self, offer_id: str) -> None:
        offer = self.remove(offer_id)
        if offer is None:
            return
        framework = self._cluster.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.send(events.rescind(offer_id))

    def rescind_agent(self, agent: Agent) -> None:
        for offer_id in list(agent.offers):
            self.rescind(offer_id)

    def rescind_role(self, role: str, keep: bool = False) -> None:
        """Offers made to ``role`` (or, with ``keep``, to every other role): a quota changed."""
        for offer in list(self._cluster.offers.values()):
            if (offer.role == role) != keep:
                self.rescind(offer.id)

    def rescind_roles_left(self, framework: Framework) -> None:
        """Offers made to roles the framework no longer holds."""
        for offer_id in [o for o in framework.offers if self._cluster.offers[o].role not in framework.roles]:
            self.rescind(offer_id)

    def add_filter(self, framework: Framework, agent_id: str, resources: Resources, seconds: float) -> None:
        """Hold these resources on this agent back from the framework for ``seconds`` (a decline's filter)."""
        now = time.time()
        previous = framework.filters.get(agent_id)
        expiry = now + seconds
        if previous is not None and previous[1] > now:
            resources = resources + previous[0]
            expiry = max(expiry, previous[1])
        framework.filters[agent_id] = (resources, expiry)

    def decline(self, framework: Framework, offer_ids: Sequence[str], refuse_seconds: float) -> None:
        for offer_id in offer_ids:
            offer = self._cluster.offers.get(offer_id)
            if offer is None or offer.framework_id != framework.id:
                continue
            self.remove(offer.id)
            if refuse_seconds > 0:
                self.add_filter(framework, offer.agent_id, offer.resources, refuse_seconds)
        self._wake()

    def expire(self, now: float, timeout: float) -> None:
        """Rescind offers outstanding for ``timeout`` seconds, and keep them briefly from the framework that sat
        on them."""
        for offer in list(self._cluster.offers.values()):
            if now - offer.created >= timeout:
                framework = self._cluster.frameworks.get(offer.framework_id)
                self.rescind(offer.id)
                if framework is not None:
                    self.add_filter(framework, offer.agent_id, offer.resources, OFFER_TIMEOUT_REFUSE_SECONDS)
