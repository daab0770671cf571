"""The master's records in the v1 operator API's shapes (``include/mesos/v1/master/master.proto``).

Unlike the v0 endpoints (``views.py``: ``slave_id``, flattened resources), v1 wraps ids (``{"value": ...}``), gives
resources as ``Resource`` objects and times as ``TimeInfo`` (``{"nanoseconds": ...}``). These documents answer the
GET_* calls and make up the operator event stream's payloads (``operator_events.py``); like the v0 views they are
rendered with the master's lock held and returned fresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.resources import Resources
from mesolite.master import events
from mesolite.master.model import Agent, Cluster, Framework, Task
from mesolite.master.views import BUILD

AGENT_CAPABILITIES = ("MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT", "AGENT_DRAINING")


def time_info(seconds: float) -> dict[str, int]:
    return {"nanoseconds": int(seconds * 1e9)}


def task_v1(task: Task) -> dict[str, Any]:
    """``Task``: what TASK_ADDED carries and GET_TASKS lists."""
    info = task.info
    out: dict[str, Any] = {
        "name": task.name,
        "task_id": proto.wrap(task.id),
        "framework_id": proto.wrap(task.framework_id),
        "agent_id": proto.wrap(task.agent_id),
        "state": task.state,
        "resources": task.resources.to_v1(allocation_role=task.role),
        "statuses": [_status_v1(task, entry) for entry in task.statuses],
        "role": task.role,
    }
    if task.executor_id != task.id:
        out["executor_id"] = proto.wrap(task.executor_id)
    if task.last_status is not None:
        out["status_update_state"] = task.state
        if task.last_status.get("uuid"):
            out["status_update_uuid"] = task.last_status["uuid"]
    for key in ("labels", "discovery", "container", "health_check", "kill_policy", "limits"):
        if key in info:
            out[key] = info[key]
    user = (info.get("command") or {}).get("user")
    if user:
        out["user"] = user
    return out


def _status_v1(task: Task, entry: dict[str, Any]) -> dict[str, Any]:
    return {"task_id": proto.wrap(task.id), "agent_id": proto.wrap(task.agent_id), **entry}


def agent_v1(cluster: Cluster, agent: Agent) -> dict[str, Any]:
    """``GetAgents.Agent``, as GET_AGENTS lists it and AGENT_ADDED carries it."""
    out: dict[str, Any] = {
        "agent_info": agent_info(agent),
        "active": agent.offerable,
        "deactivated": agent.deactivated,
        "version": agent.version,
        "pid": agent.pid,
        "registered_time": time_info(agent.registered_time),
        "total_resources": agent.resources.to_v1(),
        "allocated_resources": agent.used().to_v1(),
        "offered_resources": cluster.offered(agent).to_v1(),
        "capabilities": [{"type": c} for c in AGENT_CAPABILITIES],
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = time_info(agent.reregistered_time)
    if agent.drain_info is not None:
        out["drain_info"] = agent.drain_info
        if agent.drain_start_time is not None:
            out["estimated_drain_start_time"] = time_info(int(agent.drain_start_time))
    for key in ("allocated_resources", "offered_resources"):
        if not out[key]:
            del out[key]
    return out


def agent_info(agent: Agent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": proto.wrap(agent.id),
        "hostname": agent.hostname,
        "port": agent.port,
        "resources": agent.resources.to_v1(),
    }
    attributes = agent.attributes.to_v1()
    if attributes:
        out["attributes"] = attributes
    return out


def get_agents(cluster: Cluster) -> dict[str, Any]:
    agents = [a for a in cluster.agents.values() if a.active]
    recovered = [agent_info(a) for a in cluster.agents.values() if a.state == "RECOVERED"]
    out: dict[str, Any] = {"agents": [agent_v1(cluster, a) for a in agents]}
    if recovered:
        out["recovered_agents"] = recovered
    return _compact(out)


def framework_v1(
    cluster: Cluster, framework: Framework, inverse_offers: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    """``GetFrameworks.Framework``, as GET_FRAMEWORKS lists it and FRAMEWORK_ADDED/UPDATED carry it."""
    allocated = Resources()
    for task in framework.tasks.values():
        if not proto.is_terminal(task.state):
            allocated = allocated + task.resources
    offers = []
    offered = Resources()
    for offer_id in framework.offers:
        offer = cluster.offers.get(offer_id)
        agent = cluster.agents.get(offer.agent_id) if offer is not None else None
        if offer is not None and agent is not None:
            offers.append(events.offer_json(offer, agent))
            offered = offered + offer.resources
    out: dict[str, Any] = {
        "framework_info": framework.framework_info(),
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": time_info(framework.registered_time),
        "offers": offers,
        "inverse_offers": list(inverse_offers),
        "allocated_resources": allocated.to_v1(),
        "offered_resources": offered.to_v1(),
    }
    if framework.reregistered_time is not None:
        out["reregistered_time"] = time_info(framework.reregistered_time)
    if framework.unregistered_time is not None:
        out["unregistered_time"] = time_info(framework.unregistered_time)
    return _compact(out)


def get_frameworks(cluster: Cluster, inverse_offers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return _compact(
        {
            "frameworks": [framework_v1(cluster, f, inverse_offers.get(f.id, ())) for f in cluster.frameworks.values()],
            "completed_frameworks": [framework_v1(cluster, f) for f in cluster.completed_frameworks],
        }
    )


def get_tasks(cluster: Cluster) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    unreachable: list[dict[str, Any]] = []
    completed: list[dict[str, Any]] = []
    for framework in list(cluster.frameworks.values()) + list(cluster.completed_frameworks):
        tasks.extend(task_v1(t) for t in framework.tasks.values())
        unreachable.extend(task_v1(t) for t in framework.unreachable_tasks.values())
        completed.extend(task_v1(t) for t in framework.completed_tasks)
    return _compact({"tasks": tasks, "unreachable_tasks": unreachable, "completed_tasks": completed})


def get_executors(cluster: Cluster) -> dict[str, Any]:
    """The executors running on agents: custom executors and task-group executors (command tasks' own
    executors are not listed, as in Mesos, where they are not visible to the master either)."""
    infos: dict[tuple[str, str], dict[str, Any]] = {}
    for framework in cluster.frameworks.values():
        for task in framework.tasks.values():
            if task.executor_info is not None:
                infos.setdefault((task.framework_id, task.executor_id), task.executor_info)
    executors = []
    for agent in cluster.agents.values():
        for (framework_id, executor_id), resources in agent.executors.items():
            info = infos.get((framework_id, executor_id)) or {
                "executor_id": proto.wrap(executor_id),
                "framework_id": proto.wrap(framework_id),
                "resources": resources.to_v1(),
            }
            executors.append({"executor_info": info, "agent_id": proto.wrap(agent.id)})
    return _compact({"executors": executors})


def get_state(cluster: Cluster, inverse_offers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """GET_STATE, and the ``get_state`` of SUBSCRIBED."""
    return {
        "get_tasks": get_tasks(cluster),
        "get_executors": get_executors(cluster),
        "get_frameworks": get_frameworks(cluster, inverse_offers),
        "get_agents": get_agents(cluster),
    }


def version_info() -> dict[str, Any]:
    return {"version": MESOS_VERSION, **BUILD, "build_time": float(str(BUILD["build_time"]))}


def _compact(document: dict[str, Any]) -> dict[str, Any]:
    """protobuf's JSON leaves empty repeated fields out."""
    return {key: value for key, value in document.items() if value != []}
