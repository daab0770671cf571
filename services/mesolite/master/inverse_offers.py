"""Inverse offers: the master asking frameworks to give an agent back for maintenance (scheduler API
INVERSE_OFFERS / RESCIND_INVERSE_OFFER, answered with ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS).

Every allocation cycle, each active framework using an agent on a DRAINING machine (tasks there, or offers) gets
one inverse offer for it, unless one is outstanding or its refuse filter is live; ``resources`` is empty, meaning
the whole agent. An answer is only a hint: it is recorded for ``/maintenance/status`` and filters the next inverse
offer for ``refuse_seconds``. Inverse offers are rescinded when the unavailability changes, the agent is deactivated
or drained, or it is removed. Called with the master's lock held.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesolite.core import protocol as proto
from mesolite.master.maintenance import MachineID, Maintenance
from mesolite.master.model import Agent, Cluster, Framework


@dataclass(frozen=True)
class InverseOffer:
    id: str
    framework_id: str
    agent_id: str
    unavailability: dict[str, Any]

    def to_json(self, agent: Agent | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": proto.wrap(self.id),
            "framework_id": proto.wrap(self.framework_id),
            "agent_id": proto.wrap(self.agent_id),
            "unavailability": self.unavailability,
        }
        if agent is not None:
            out["url"] = {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": agent.ip, "port": agent.port},
                "path": "/slave(1)",
            }
        return out


class InverseOfferBook:
    def __init__(self, cluster: Cluster, maintenance: Maintenance, master_id: str) -> None:
        self._cluster = cluster
        self._maintenance = maintenance
        self._master_id = master_id
        self._seq = itertools.count()
        self._offers: dict[str, InverseOffer] = {}
        self._filters: dict[tuple[str, str], float] = {}

    def clear(self) -> None:
        self._offers.clear()
        self._filters.clear()

    def use_maintenance(self, maintenance: Maintenance) -> None:
        """A new leadership term recovered its schedule from the registry."""
        self._maintenance = maintenance
        self.clear()

    def _outstanding(self) -> set[tuple[str, str]]:
        return {(o.framework_id, o.agent_id) for o in self._offers.values()}

    def generate(self, now: float) -> int:
        """Send the inverse offers due this cycle; returns how many were sent."""
        outstanding = self._outstanding()
        batches: dict[str, list[InverseOffer]] = {}
        for agent in self._cluster.agents.values():
            if not agent.offerable or agent.unavailability is None:
                continue
            users = {framework_id for framework_id, _ in agent.tasks}
            users.update(self._cluster.offers[o].framework_id for o in agent.offers if o in self._cluster.offers)
            for framework_id in sorted(users):
                framework = self._cluster.frameworks.get(framework_id)
                key = (framework_id, agent.id)
                if framework is None or not (framework.active and framework.connected) or key in outstanding:
                    continue
                if self._filters.get(key, 0.0) > now:
                    continue
                offer = InverseOffer(
                    f"{self._master_id}-IO{next(self._seq)}", framework_id, agent.id, dict(agent.unavailability)
                )
                self._offers[offer.id] = offer
                batches.setdefault(framework_id, []).append(offer)
        for framework_id, offers in batches.items():
            self._cluster.frameworks[framework_id].send(
                {
                    "type": "INVERSE_OFFERS",
                    "inverse_offers": {
                        "inverse_offers": [o.to_json(self._cluster.agents.get(o.agent_id)) for o in offers]
                    },
                }
            )
        return sum(len(offers) for offers in batches.values())

    def rescind_agent(self, agent_id: str) -> None:
        for offer in [o for o in self._offers.values() if o.agent_id == agent_id]:
            del self._offers[offer.id]
            framework = self._cluster.frameworks.get(offer.framework_id)
            if framework is not None:
                framework.send(
                    {
                        "type": "RESCIND_INVERSE_OFFER",
                        "rescind_inverse_offer": {"inverse_offer_id": proto.wrap(offer.id)},
                    }
                )

    def withdraw(self, framework_id: str) -> None:
        """A framework that disconnected or left: its inverse offers go with it, unannounced."""
        for offer_id in [i for i, o in self._offers.items() if o.framework_id == framework_id]:
            del self._offers[offer_id]

    def answer(
        self, framework: Framework, offer_ids: Sequence[str], accept: bool, refuse_seconds: float, now: float
    ) -> None:
        """ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: unknown ids are ignored, as Mesos only logs them."""
        for offer_id in offer_ids:
            offer = self._offers.get(offer_id)
            if offer is None or offer.framework_id != framework.id:
                continue
            del self._offers[offer_id]
            agent = self._cluster.agents.get(offer.agent_id)
            if agent is not None:
                machine = MachineID.of_agent(agent.hostname, agent.ip)
                self._maintenance.record_answer(machine, framework.id, "ACCEPT" if accept else "DECLINE", now)
            if refuse_seconds > 0:
                self._filters[(framework.id, offer.agent_id)] = now + refuse_seconds

    def by_framework(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for offer in self._offers.values():
            out.setdefault(offer.framework_id, []).append(offer.to_json(self._cluster.agents.get(offer.agent_id)))
        return out
