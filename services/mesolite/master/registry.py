"""The master's registry: what must survive a restart or a failover, kept in the ``Store`` (SQLite, or ZooKeeper
with ``--zk``).

Admitted agents (with what the operator decided about them: deactivation and drains), agents marked gone,
subscribed frameworks (so a new leader keeps their ids and failover timeouts), role weights, quotas, the maintenance
schedule with the machines that are down, and the agent id sequence. Everything else the master knows is soft state
that agents and schedulers report again.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from mesolite.core import protocol as proto
from mesolite.core.attributes import Attributes
from mesolite.core.resources import Resources
from mesolite.core.store import Store
from mesolite.master.model import Agent, Framework

log = logging.getLogger(__name__)

AGENT_SEQ = "meta/agent_seq"
WEIGHTS = "meta/weights"
QUOTAS = "meta/quotas"
MAINTENANCE = "meta/maintenance"


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._agent_seq = itertools.count(self._saved_agent_seq())

    def _saved_agent_seq(self) -> int:
        return int(self.store.get(AGENT_SEQ) or 0)

    def reset_agent_ids(self) -> None:
        """Continue the agent id sequence where the registry says (a new leader after another one admitted some)."""
        self._agent_seq = itertools.count(self._saved_agent_seq())

    def new_agent_id(self, master_id: str) -> str:
        """Agent ids are ``<master id>-S<n>`` as in Mesos; ``n`` never repeats across failovers."""
        number = next(self._agent_seq)
        self.store.put(AGENT_SEQ, number + 1)
        return f"{master_id}-S{number}"

    # ------------------------------------------------------------------ recovery

    def weights(self) -> dict[str, float]:
        saved = self.store.get(WEIGHTS)
        if not isinstance(saved, dict):
            return {}
        return {str(role): float(weight) for role, weight in saved.items()}

    def agents(self, now: float) -> list[Agent]:
        """Agents admitted before, as RECOVERED until they re-register (or the re-register timeout passes)."""
        agents = []
        for record in self.store.list("agents/").values():
            try:
                agent = Agent(
                    id=record["id"],
                    hostname=record["hostname"],
                    ip=record["ip"],
                    port=int(record["port"]),
                    resources=Resources.parse(record["resources"]),
                    attributes=Attributes.parse(record.get("attributes", "")),
                    registered_time=record.get("registered_time", now),
                    state="RECOVERED",
                    last_seen=now,
                    persisted=record,
                    deactivated=bool(record.get("deactivated", False)),
                    drain_info=record.get("drain_info"),
                    drain_start_time=record.get("drain_start_time"),
                )
            except (KeyError, ValueError) as exc:
                log.error("ignoring unreadable registry entry for an agent: %s", exc)
                continue
            agents.append(agent)
        return agents

    def frameworks(self, now: float) -> list[Framework]:
        """Frameworks subscribed before, inactive until they re-subscribe (or their failover timeout passes)."""
        frameworks = []
        for record in self.store.list("frameworks/").values():
            info = dict(record.get("framework_info") or {})
            framework_id = proto.unwrap(info.pop("id", None))
            if not framework_id:
                continue
            registered = record.get("registered_time", now)
            frameworks.append(Framework.recovered_from(framework_id, info, registered, now))
        return frameworks

    # ------------------------------------------------------------------ writes

    def save_agent(self, agent: Agent) -> None:
        """Write the agent's entry, unless it already says exactly this: after a failover every agent re-registers
        unchanged, and skipping those writes keeps re-registration off the registry's latency."""
        record: dict[str, Any] = {
            "id": agent.id,
            "hostname": agent.hostname,
            "ip": agent.ip,
            "port": agent.port,
            "resources": str(agent.resources),
            "attributes": str(agent.attributes),
            "registered_time": agent.registered_time,
        }
        if agent.deactivated:
            record["deactivated"] = True
        if agent.drain_info is not None:
            record["drain_info"] = agent.drain_info
            record["drain_start_time"] = agent.drain_start_time
        if agent.persisted != record:
            self.store.put(f"agents/{agent.id}", record)
            agent.persisted = record

    def save_framework(self, framework: Framework) -> None:
        self.store.put(
            f"frameworks/{framework.id}",
            {"framework_info": framework.framework_info(), "registered_time": framework.registered_time},
        )

    def forget_agent(self, agent_id: str) -> None:
        self.store.delete(f"agents/{agent_id}")

    def forget_framework(self, framework_id: str) -> None:
        self.store.delete(f"frameworks/{framework_id}")

    def save_weights(self, weights: dict[str, float]) -> None:
        self.store.put(WEIGHTS, weights)

    def mark_gone(self, agent_id: str, now: float) -> None:
        """A gone agent never comes back under this id: it is refused at every registration."""
        self.store.delete(f"agents/{agent_id}")
        self.store.put(f"gone/{agent_id}", {"gone_time": now})

    def gone_agents(self) -> set[str]:
        return {key.rsplit("/", 1)[-1] for key in self.store.list("gone/")}

    def quotas(self) -> dict[str, Any]:
        saved = self.store.get(QUOTAS)
        return saved if isinstance(saved, dict) else {}

    def save_quotas(self, quotas: dict[str, Any]) -> None:
        self.store.put(QUOTAS, quotas)

    def maintenance(self) -> Any:
        return self.store.get(MAINTENANCE)

    def save_maintenance(self, record: dict[str, Any]) -> None:
        self.store.put(MAINTENANCE, record)
