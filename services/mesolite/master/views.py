"""The master's v0 read endpoints rendered in Mesos' shapes (src/master/readonly_handler.cpp, src/common/http.cpp).

Tools depend on these exact fields: Mesos-DNS reads ``leader``, ``slaves[].pid``, tasks' ``resources.ports`` and
``statuses[].container_status``; the web UI reads ``leader_info`` and ``slaves[].pid``. Resources are flattened
(``{"cpus": 1.0, "ports": "[31000-31005]"}``) and ids are bare strings (``slave_id``, not ``agent_id``).

These are the master's read model: each function is called through one of ``Master``'s read methods, which hold
the master's lock while it runs, and returns a fresh document the caller owns (lists are copied; the payloads it
shares, such as a task's labels, are replaced by the master, never edited), so neither the API nor the UI ever
touches the lock or the records themselves.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.resources import Resources
from mesolite.master.model import Agent, Framework, Task

if TYPE_CHECKING:
    from mesolite.master.state import Master

BUILD = {"build_date": "2026-11-21 00:00:00", "build_time": 1795305600, "build_user": "mesolite"}


def task_json(task: Task) -> dict[str, Any]:
    info = task.info
    out: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "framework_id": task.framework_id,
        "executor_id": "" if task.executor_id == task.id else task.executor_id,
        "slave_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.flatten(),
        "role": task.role,
        "statuses": list(task.statuses),
    }
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if key in info:
            out[key] = info[key]
    user = (info.get("command") or {}).get("user")
    if user:
        out["user"] = user
    if task.unreachable_time is not None:
        out["unreachable_time"] = {"nanoseconds": int(task.unreachable_time * 1e9)}
    return out


def agent_json(master: Master, agent: Agent) -> dict[str, Any]:
    used = agent.used()
    reserved: dict[str, dict[str, Any]] = {}
    for role in sorted(agent.resources.roles() - {"*"}):
        reserved[role] = agent.resources.reserved(role).flatten()
    out: dict[str, Any] = {
        "id": agent.id,
        "pid": agent.pid,
        "hostname": agent.hostname,
        "port": agent.port,
        "registered_time": agent.registered_time,
        "resources": agent.resources.flatten(),
        "used_resources": used.flatten(),
        "offered_resources": master.cluster.offered(agent).flatten(),
        "reserved_resources": reserved,
        "unreserved_resources": agent.resources.unreserved().flatten(),
        "attributes": agent.attributes.flatten(),
        "active": agent.offerable,
        "deactivated": agent.deactivated,
        "version": agent.version,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT", "AGENT_DRAINING"],
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = agent.reregistered_time
    if agent.drain_info is not None:
        out["drain_info"] = agent.drain_info
        if agent.drain_start_time is not None:
            out["estimated_drain_start_time_seconds"] = int(agent.drain_start_time)
    return out


def framework_json(master: Master, framework: Framework, summary: bool = False) -> dict[str, Any]:
    info = framework.info
    used = Resources()
    for task in framework.tasks.values():
        if not proto.is_terminal(task.state):
            used = used + task.resources
    offered = Resources()
    for offer_id in framework.offers:
        offer = master.offers.get(offer_id)
        if offer is not None:
            offered = offered + offer.resources
    out: dict[str, Any] = {
        "id": framework.id,
        "name": framework.name,
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "user": info.get("user", ""),
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "capabilities": [c.get("type") for c in info.get("capabilities") or [] if isinstance(c, dict)],
        "failover_timeout": float(info.get("failover_timeout") or 0.0),
        "checkpoint": bool(info.get("checkpoint", False)),
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time or 0,
        "used_resources": used.flatten(),
        "offered_resources": offered.flatten(),
        "resources": (used + offered).flatten(),
    }
    if framework.has_capability("MULTI_ROLE"):
        out["roles"] = list(framework.roles)
    else:
        out["role"] = framework.roles[0]
    if info.get("principal"):
        out["principal"] = info["principal"]
    if info.get("labels"):
        out["labels"] = info["labels"].get("labels", []) if isinstance(info["labels"], dict) else info["labels"]
    if framework.reregistered_time is not None:
        out["reregistered_time"] = framework.reregistered_time
    if summary:
        return out
    out["tasks"] = [task_json(t) for t in framework.tasks.values()]
    out["unreachable_tasks"] = [task_json(t) for t in framework.unreachable_tasks.values()]
    out["completed_tasks"] = [task_json(t) for t in framework.completed_tasks]
    out["offers"] = [
        {
            "id": offer.id,
            "framework_id": offer.framework_id,
            "slave_id": offer.agent_id,
            "resources": offer.resources.flatten(),
            "allocation_info": {"role": offer.role},
        }
        for offer in (master.offers.get(o) for o in framework.offers)
        if offer is not None
    ]
    out["executors"] = []
    return out


def leader_json(master: Master) -> dict[str, Any]:
    return {
        "id": master.id,
        "pid": master.pid,
        "port": master.config.port,
        "hostname": master.config.advertised_hostname,
    }


def flags_json(master: Master) -> dict[str, str]:
    config = master.config
    return {
        "ip": config.ip,
        "port": str(config.port),
        "hostname": config.advertised_hostname,
        "work_dir": config.work_dir,
        "allocation_interval": f"{config.allocation_interval}secs",
        "offer_timeout": f"{config.offer_timeout}secs" if config.offer_timeout else "",
        "agent_ping_timeout": f"{config.agent_ping_timeout}secs",
        "max_agent_ping_timeouts": str(config.max_agent_ping_timeouts),
        "agent_reregister_timeout": f"{config.agent_reregister_timeout}secs",
        "registry": "replicated_log",
    }


def state_json(master: Master) -> dict[str, Any]:
    agents = list(master.agents.values())
    return {
        "version": MESOS_VERSION,
        **BUILD,
        "start_time": master.start_time,
        "elected_time": master.elected_time,
        "id": master.id,
        "pid": master.pid,
        "hostname": master.config.advertised_hostname,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": sum(1 for a in agents if a.offerable),
        "deactivated_slaves": sum(1 for a in agents if a.active and a.deactivated),
        "unreachable_slaves": sum(1 for a in agents if a.state == "UNREACHABLE"),
        "leader": master.pid,
        "leader_info": leader_json(master),
        **({"cluster": master.config.cluster} if master.config.cluster else {}),
        "flags": flags_json(master),
        "slaves": [agent_json(master, a) for a in agents if a.state == "ACTIVE"],
        "recovered_slaves": [recovered_agent_json(a) for a in agents if a.state == "RECOVERED"],
        "frameworks": [framework_json(master, f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_json(master, f) for f in master.completed_frameworks],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }


def slaves_json(master: Master, wanted: str | None) -> dict[str, Any]:
    """``/master/slaves``, optionally for one ``slave_id``."""
    agents = [a for a in master.agents.values() if not wanted or a.id == wanted]
    return {
        "slaves": [agent_json(master, a) for a in agents if a.state == "ACTIVE"],
        "recovered_slaves": [recovered_agent_json(a) for a in agents if a.state == "RECOVERED"],
    }


def frameworks_json(master: Master, wanted: str | None) -> dict[str, Any]:
    """``/master/frameworks``, optionally for one ``framework_id``."""
    return {
        "frameworks": [framework_json(master, f) for f in master.frameworks.values() if not wanted or f.id == wanted],
        "completed_frameworks": [
            framework_json(master, f) for f in master.completed_frameworks if not wanted or f.id == wanted
        ],
        "unregistered_frameworks": [],
    }


@dataclass(frozen=True)
class TaskQuery:
    """``/master/tasks`` parameters: a page of tasks, ordered by when they were first staged."""

    limit: int = 100
    offset: int = 0
    descending: bool = True
    framework_id: str | None = None
    task_id: str | None = None


def tasks_json(master: Master, query: TaskQuery) -> dict[str, Any]:
    found: list[Task] = []
    for framework in master.frameworks.values():
        if query.framework_id and framework.id != query.framework_id:
            continue
        found.extend(list(framework.tasks.values()) + list(framework.completed_tasks))
    if query.task_id:
        found = [t for t in found if t.id == query.task_id]
    found.sort(key=lambda t: t.statuses[0]["timestamp"] if t.statuses else 0.0, reverse=query.descending)
    # A negative limit is no limit: Mesos reads it as an unsigned number (the Mesos CLI asks for limit=-1).
    end = query.offset + query.limit if query.limit >= 0 else len(found)
    return {"tasks": [task_json(t) for t in found[query.offset : end]]}


def roles_json(master: Master) -> dict[str, Any]:
    """``/master/roles``: roles with a weight or a framework, and what their frameworks' live tasks use."""
    roles: dict[str, dict[str, Any]] = {}
    for role, weight in master.weights.items():
        roles[role] = {"name": role, "weight": weight, "frameworks": [], "resources": {}}
    for framework in master.frameworks.values():
        for role in framework.roles:
            entry = roles.setdefault(
                role,
                {"name": role, "weight": master.weights.get(role, 1.0), "frameworks": [], "resources": {}},
            )
            entry["frameworks"].append(framework.id)
    for entry in roles.values():
        used = None
        for framework_id in entry["frameworks"]:
            for task in master.frameworks[framework_id].tasks.values():
                if task.role == entry["name"] and not proto.is_terminal(task.state):
                    used = task.resources if used is None else used + task.resources
        entry["resources"] = used.flatten() if used is not None else {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
    return {"roles": sorted(roles.values(), key=lambda r: r["name"])}


def recovered_agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "pid": agent.pid,
        "hostname": agent.hostname,
        "port": agent.port,
        "resources": agent.resources.flatten(),
        "attributes": agent.attributes.flatten(),
    }


def state_summary_json(master: Master) -> dict[str, Any]:
    """The light view tools moved to for polling: counts instead of task lists."""
    agent_counts: dict[str, Counter[str]] = {a: Counter() for a in master.agents}
    framework_counts: dict[str, Counter[str]] = {}
    framework_agents: dict[str, set[str]] = {}
    for framework in master.frameworks.values():
        counts = framework_counts.setdefault(framework.id, Counter())
        for task in list(framework.tasks.values()) + list(framework.completed_tasks):
            counts[task.state] += 1
            agent_counts.setdefault(task.agent_id, Counter())[task.state] += 1
            framework_agents.setdefault(framework.id, set()).add(task.agent_id)
    slaves = []
    for agent in master.agents.values():
        if agent.state != "ACTIVE":
            continue
        entry = agent_json(master, agent)
        entry.update(_state_counts(agent_counts.get(agent.id, Counter())))
        entry["framework_ids"] = sorted(fid for fid, agents in framework_agents.items() if agent.id in agents)
        slaves.append(entry)
    frameworks = []
    for framework in master.frameworks.values():
        entry = framework_json(master, framework, summary=True)
        entry.update(_state_counts(framework_counts.get(framework.id, Counter())))
        entry["slave_ids"] = sorted(framework_agents.get(framework.id, set()))
        frameworks.append(entry)
    return {
        "hostname": master.config.advertised_hostname,
        **({"cluster": master.config.cluster} if master.config.cluster else {}),
        "slaves": slaves,
        "frameworks": frameworks,
    }


def _state_counts(counts: Counter[str]) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in proto.ALL_STATES}


def metrics_json(master: Master) -> dict[str, float]:
    agents = list(master.agents.values())
    frameworks = list(master.frameworks.values())
    task_counts: Counter[str] = Counter()
    for framework in frameworks:
        for task in framework.tasks.values():
            task_counts[task.state] += 1
        for task in framework.completed_tasks:
            task_counts[task.state] += 1
    totals = Resources()
    used = Resources()
    for agent in agents:
        if agent.state == "ACTIVE":
            totals = totals + agent.resources
            used = used + agent.used()
    metrics: dict[str, float] = {
        "master/elected": 1.0 if master.leading else 0.0,
        "master/uptime_secs": time.time() - master.start_time,
        "master/slaves_active": float(sum(a.state == "ACTIVE" for a in agents)),
        "master/slaves_connected": float(sum(a.state == "ACTIVE" for a in agents)),
        "master/slaves_disconnected": float(sum(a.state != "ACTIVE" for a in agents)),
        "master/slaves_inactive": 0.0,
        "master/slaves_unreachable": float(sum(a.state == "UNREACHABLE" for a in agents)),
        "master/frameworks_active": float(sum(f.active for f in frameworks)),
        "master/frameworks_inactive": float(sum(not f.active for f in frameworks)),
        "master/frameworks_connected": float(sum(f.connected for f in frameworks)),
        "master/frameworks_disconnected": float(sum(not f.connected for f in frameworks)),
        "master/outstanding_offers": float(len(master.offers)),
    }
    for state in proto.ALL_STATES:
        metrics[f"master/tasks_{state[5:].lower()}"] = float(task_counts.get(state, 0))
    for name in ("cpus", "mem", "disk", "gpus"):
        total, in_use = totals.scalar(name), used.scalar(name)
        metrics[f"master/{name}_total"] = total
        metrics[f"master/{name}_used"] = in_use
        metrics[f"master/{name}_percent"] = in_use / total if total else 0.0
    metrics.update({k: float(v) for k, v in master.metrics.items()})
    return metrics
