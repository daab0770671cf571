"""The v1 scheduler events the master sends down a framework's stream, encoded as Mesos' JSON (ids wrapped).

The state machine decides what to tell a framework; this module is the one place that knows how it looks on the
wire (``scheduler.proto``'s ``Event``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mesolite.core import protocol as proto
from mesolite.master.model import Agent, Framework, Offer


def subscribed(framework_id: str, heartbeat_interval: float, master_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": proto.wrap(framework_id),
            "heartbeat_interval_seconds": heartbeat_interval,
            "master_info": master_info,
        },
    }


def error(message: str) -> dict[str, Any]:
    return {"type": "ERROR", "error": {"message": message}}


def offers(offers: Iterable[tuple[Offer, Agent]]) -> dict[str, Any]:
    return {"type": "OFFERS", "offers": {"offers": [offer_json(offer, agent) for offer, agent in offers]}}


def offer_json(offer: Offer, agent: Agent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": proto.wrap(offer.id),
        "framework_id": proto.wrap(offer.framework_id),
        "agent_id": proto.wrap(agent.id),
        "hostname": agent.hostname,
        "url": {
            "scheme": "http",
            "address": {"hostname": agent.hostname, "ip": agent.ip, "port": agent.port},
            "path": "/slave(1)",
        },
        "resources": offer.resources.to_v1(allocation_role=offer.role),
        "attributes": agent.attributes.to_v1(),
        "executor_ids": [
            proto.wrap(executor_id) for (fid, executor_id) in agent.executors if fid == offer.framework_id
        ],
        "allocation_info": {"role": offer.role},
    }
    if agent.unavailability is not None:
        out["unavailability"] = agent.unavailability
    return out


def rescind(offer_id: str) -> dict[str, Any]:
    return {"type": "RESCIND", "rescind": {"offer_id": proto.wrap(offer_id)}}


def update(framework: Framework, status: dict[str, Any]) -> dict[str, Any]:
    """A status update as this framework may see it (TASK_LOST in place of the partition-aware states)."""
    return {"type": "UPDATE", "update": {"status": proto.for_framework(status, framework.partition_aware)}}


def failure(agent_id: str, executor_id: str | None = None, status: int | None = None) -> dict[str, Any]:
    """An agent lost, or (with ``executor_id``) an executor that exited: schedulers' ``executorLost``."""
    body: dict[str, Any] = {"agent_id": proto.wrap(agent_id)}
    if executor_id is not None:
        body["executor_id"] = proto.wrap(executor_id)
    if status is not None:
        body["status"] = status
    return {"type": "FAILURE", "failure": body}


def message(agent_id: str | None, executor_id: str | None, data: Any) -> dict[str, Any]:
    return {
        "type": "MESSAGE",
        "message": {
            "agent_id": proto.wrap(agent_id) if agent_id else None,
            "executor_id": proto.wrap(executor_id) if executor_id else None,
            "data": data,
        },
    }
