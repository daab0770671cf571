"""The agent's v0 read endpoints rendered in Mesos' shapes (src/slave/http.cpp, src/common/http.cpp), as the
master's views.py renders its own: ``/state`` (also ``/slave(1)/state``), ``/monitor/statistics`` and
``/metrics/snapshot``.

Tools depend on these fields: the web UI and Mesos-DNS-style tools read ``frameworks[].executors[]`` with their
``directory`` (for ``/files``) and ``tasks[].statuses[].container_status``; resources are flattened
(``{"cpus": 1.0, "ports": "[31000-31005]"}``) and ids are bare strings.
"""

from __future__ import annotations

import os
import time
from typing import Any

from mesolite import MESOS_VERSION
from mesolite.agent.config import isolators
from mesolite.agent.containerizer import Container
from mesolite.agent.runs import TaskRun
from mesolite.agent.state import Agent
from mesolite.core.resources import ResourceError, Resources


def metrics_json(agent: Agent) -> dict[str, float]:
    active, completed = agent.runs.snapshot()
    counts: dict[str, float] = {
        "slave/registered": 1.0 if agent.registered else 0.0,
        "slave/uptime_secs": _uptime(agent),
    }
    for state_name in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"):
        counts[f"slave/tasks_{state_name[5:].lower()}"] = float(sum(r.state == state_name for r in active))
    for state_name in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST"):
        counts[f"slave/tasks_{state_name[5:].lower()}"] = float(sum(r.state == state_name for r in completed))
    return counts


def _uptime(agent: Agent) -> float:
    return time.time() - agent.start_time


def _resources_of(run: TaskRun) -> Resources:
    try:
        return Resources.from_v1(run.info.get("resources") or [])
    except ResourceError:
        return Resources()


def statistics_json(agent: Agent) -> list[dict[str, Any]]:
    """One entry per executor (a command task is its own executor), from its cgroups, or /proc under posix."""
    active = agent.runs.active()
    out = []
    for run in active:
        if run.container is None:
            continue
        out.append(
            _usage(
                agent,
                run.container,
                _resources_of(run),
                run.framework_id,
                run.executor_id,
                f"Command Executor (Task: {run.task_id}) (Command: {_command_text(run)})",
                run.task_id,
            )
        )
    for executor in agent.executors.all():
        if executor.container is None or executor.state == "TERMINATED":
            continue
        out.append(
            _usage(
                agent,
                executor.container,
                executor.resources(),
                executor.framework_id,
                executor.executor_id,
                str(executor.info.get("name") or executor.executor_id),
                str(executor.info.get("source") or executor.executor_id),
            )
        )
    return out


def _usage(
    agent: Agent,
    container: Container,
    resources: Resources,
    framework_id: str,
    executor_id: str,
    name: str,
    source: str,
) -> dict[str, Any]:
    stats = agent.containerizer.statistics(container)
    stats["cpus_limit"] = resources.scalar("cpus")
    if not stats.get("mem_limit_bytes"):
        stats["mem_limit_bytes"] = int(resources.scalar("mem") * 1024 * 1024)
    stats["disk_limit_bytes"] = int(resources.scalar("disk") * 1024 * 1024)
    stats.setdefault("cpus_user_time_secs", 0.0)
    stats.setdefault("cpus_system_time_secs", 0.0)
    stats.setdefault("mem_rss_bytes", 0)
    return {
        "framework_id": framework_id,
        "executor_id": executor_id,
        "executor_name": name,
        "source": source,
        "statistics": stats,
    }


def _command_text(run: TaskRun) -> str:
    command = run.info.get("command") or {}
    return str(command.get("value") or " ".join(command.get("arguments") or []))


def _task_json(agent: Agent, run: TaskRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.task_id,
        "name": run.info.get("name", ""),
        "framework_id": run.framework_id,
        "executor_id": "" if run.executor_id == run.task_id else run.executor_id,
        "slave_id": agent.id,
        "state": run.state,
        "resources": _resources_of(run).flatten(),
        "role": run.role,
        "statuses": run.statuses,
    }
    for key in ("labels", "discovery", "container", "health_check"):
        if key in run.info:
            out[key] = run.info[key]
    return out


def state_json(agent: Agent) -> dict[str, Any]:
    config = agent.config
    frameworks, completed_frameworks = _frameworks_json(agent)
    master_info = agent.master_info or {}
    return {
        "version": MESOS_VERSION,
        "build_date": "2026-11-21 00:00:00",
        "build_user": "mesolite",
        "start_time": agent.start_time,
        "id": agent.id or "",
        "pid": agent.pid,
        "hostname": config.advertised_hostname,
        "resources": config.resources.flatten(),
        "reserved_resources": {r: config.resources.reserved(r).flatten() for r in config.resources.roles() - {"*"}},
        "unreserved_resources": config.resources.unreserved().flatten(),
        "attributes": config.attributes.flatten(),
        "master_hostname": master_info.get("hostname", ""),
        "flags": flags_json(agent),
        "frameworks": frameworks,
        "completed_frameworks": completed_frameworks,
    }


def flags_json(agent: Agent) -> dict[str, str]:
    config = agent.config
    return {
        "master": config.master,
        "ip": config.ip,
        "port": str(config.port),
        "hostname": config.advertised_hostname,
        "work_dir": os.path.abspath(config.work_dir),
        "resources": str(config.resources),
        "attributes": str(config.attributes),
        "isolation": ",".join(
            ["cgroups/cpu,cgroups/mem" if agent.isolator.name == "cgroups" else "posix/cpu,posix/mem"]
            + sorted(i for i in isolators(config.isolation) if not i.startswith(("cgroups/", "posix/")) and i != "auto")
        ),
        "image_providers": ",".join(config.image_providers),
        "docker_registry": config.docker_registry,
        "sandbox_directory": config.sandbox_directory,
        "containerizers": ",".join(config.containerizers),
        "docker_socket": config.docker_socket,
        "recover": config.recover,
        "gc_delay": f"{config.gc_delay:g}secs",
        "executor_registration_timeout": f"{config.executor_registration_timeout:g}secs",
        # --docker_config is left out: it may hold registry credentials inline.
        **({"secrets_dir": config.secrets_dir} if config.secrets_dir else {}),
    }


def _frameworks_json(agent: Agent) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(frameworks, completed_frameworks): a framework is live while one of its tasks or executors is."""
    active, completed = agent.runs.snapshot()
    frameworks: dict[str, dict[str, Any]] = {}
    completed_frameworks: dict[str, dict[str, Any]] = {}
    live_executors = [e for e in agent.executors.all() if e.state != "TERMINATED"]
    live_frameworks = {r.framework_id for r in active} | {e.framework_id for e in live_executors}
    for run in completed + active:
        target = frameworks if run.framework_id in live_frameworks else completed_frameworks
        framework = target.get(run.framework_id)
        if framework is None:
            framework = target[run.framework_id] = _framework_json(
                run.framework_id, agent.frameworks.get(run.framework_id)
            )
        custom = run.executor
        executor_live = (not run.terminal) if custom is None else custom.state != "TERMINATED"
        executors = framework["executors"] if executor_live else framework["completed_executors"]
        executor = executors.setdefault((run.executor_id, run.container_id), _executor_json(run))
        if not run.terminal:
            executor["resources"] = _merge_flat(executor["resources"], _resources_of(run).flatten())
        (executor["completed_tasks"] if run.terminal else executor["tasks"]).append(_task_json(agent, run))
    for framework in list(frameworks.values()) + list(completed_frameworks.values()):
        framework["executors"] = list(framework["executors"].values())
        framework["completed_executors"] = list(framework["completed_executors"].values())
    return list(frameworks.values()), list(completed_frameworks.values())


def _framework_json(framework_id: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": framework_id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "failover_timeout": float(info.get("failover_timeout") or 0.0),
        "checkpoint": bool(info.get("checkpoint", False)),
        "hostname": info.get("hostname", ""),
        "role": info.get("role", "*"),
        "executors": {},
        "completed_executors": {},
    }


def _executor_json(run: TaskRun) -> dict[str, Any]:
    """The executor of a task: a custom one, or the command (or, for a task group, default) executor Mesos would run."""
    custom = run.executor
    if custom is None:
        name, source, resources = f"Command Executor (Task: {run.task_id})", run.task_id, Resources().flatten()
        kind = "COMMAND" if run.group is None else "DEFAULT"
    else:
        name = str(custom.info.get("name") or run.executor_id)
        source, resources, kind = str(custom.info.get("source") or ""), _flat(custom.info), "CUSTOM"
    return {
        "id": run.executor_id,
        "name": name,
        "source": source,
        "container": run.container_id,
        "directory": run.executor_directory,
        "resources": resources,
        "role": run.role,
        "tasks": [],
        "queued_tasks": [],
        "completed_tasks": [],
        "type": kind,
    }


def _flat(info: dict[str, Any]) -> dict[str, Any]:
    try:
        return Resources.from_v1(info.get("resources") or []).flatten()
    except ResourceError:
        return Resources().flatten()


def _merge_flat(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, float | int) and isinstance(out.get(key, 0.0), float | int):
            out[key] = out.get(key, 0.0) + value
        else:
            out[key] = value
    return out
