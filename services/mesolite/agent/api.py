"""The agent's HTTP API: the master → agent half of the agent protocol, the v1 executor API (executor_api.py), and
the endpoints operators and the web UI read (``/state`` also as ``/slave(1)/state``, ``/files/*``,
``/monitor/statistics``, ``/health``)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from flask import Flask, Response, request

from mesolite import MESOS_VERSION
from mesolite.agent.containerizer import Container
from mesolite.agent.executor_api import executor_blueprint
from mesolite.agent.files import SandboxFiles, files_blueprint
from mesolite.agent.launcher import TaskRun
from mesolite.agent.state import Agent, AgentConfig
from mesolite.core import protocol as proto
from mesolite.core.http import json_response, text_response
from mesolite.core.resources import ResourceError, Resources
from mesolite.core.server import SERVICE_KEY


def create_app(config: AgentConfig, agent: Agent | None = None) -> Flask:
    app = Flask("mesolite.agent")
    agent = agent or Agent(config)
    app.extensions[SERVICE_KEY] = agent
    app.register_blueprint(files_blueprint(lambda: SandboxFiles(config.work_dir, agent.sandbox_paths)))
    app.register_blueprint(executor_blueprint(agent.executors))

    def body() -> dict[str, Any]:
        try:
            data = json.loads(request.get_data() or b"")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _BadRequest("Expecting a JSON object")
        return data

    @app.errorhandler(ValueError)
    def bad_request(exc: ValueError) -> Response:
        return text_response(str(exc), 400)

    @app.post("/internal/launch")
    def launch() -> Response:
        agent.launch(body())
        return Response(status=202)

    @app.post("/internal/kill")
    def kill() -> Response:
        data = body()
        framework_id = proto.unwrap(data.get("framework_id")) or ""
        task_id = proto.unwrap(data.get("task_id")) or ""
        if not agent.kill(framework_id, task_id, data.get("kill_policy")):
            # The master believes the task is here but it is not: say so with TASK_LOST, as the Mesos agent does.
            agent.updates.enqueue(
                framework_id,
                proto.task_status(
                    task_id,
                    "TASK_LOST",
                    agent_id=agent.id,
                    source="SOURCE_AGENT",
                    reason="REASON_TASK_UNKNOWN",
                    message="Cannot find task to kill",
                ),
            )
        return Response(status=202)

    @app.post("/internal/acknowledge")
    def acknowledge() -> Response:
        data = body()
        agent.acknowledge(
            proto.unwrap(data.get("framework_id")) or "",
            proto.unwrap(data.get("task_id")) or "",
            str(data.get("uuid")),
        )
        return Response(status=202)

    @app.post("/internal/shutdown_framework")
    def shutdown_framework() -> Response:
        agent.shutdown_framework(proto.unwrap(body().get("framework_id")) or "")
        return Response(status=202)

    @app.post("/internal/shutdown_executor")
    def shutdown_executor() -> Response:
        data = body()
        agent.shutdown_executor(
            proto.unwrap(data.get("framework_id")) or "", proto.unwrap(data.get("executor_id")) or ""
        )
        return Response(status=202)

    @app.post("/internal/framework_message")
    def framework_message() -> Response:
        data = body()
        message = data.get("data")
        if not isinstance(message, str):
            raise _BadRequest("Expecting 'data'")
        agent.framework_message(
            proto.unwrap(data.get("framework_id")) or "", proto.unwrap(data.get("executor_id")) or "", message
        )
        return Response(status=202)

    @app.get("/state")
    @app.get("/state.json")
    @app.get("/slave(1)/state")
    @app.get("/slave(1)/state.json")
    def state() -> Response:
        return json_response(state_json(agent))

    @app.get("/health")
    @app.get("/slave(1)/health")
    def health() -> Response:
        return Response(status=200)

    @app.get("/monitor/statistics")
    @app.get("/monitor/statistics.json")
    @app.get("/slave(1)/monitor/statistics")
    def statistics() -> Response:
        return json_response(statistics_json(agent))

    @app.get("/metrics/snapshot")
    def metrics() -> Response:
        active, completed = agent.runs()
        counts: dict[str, float] = {
            "slave/registered": 1.0 if agent.registered else 0.0,
            "slave/uptime_secs": _uptime(agent),
        }
        for state_name in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"):
            counts[f"slave/tasks_{state_name[5:].lower()}"] = float(sum(r.state == state_name for r in active))
        for state_name in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST"):
            counts[f"slave/tasks_{state_name[5:].lower()}"] = float(sum(r.state == state_name for r in completed))
        return json_response(counts)

    return app


class _BadRequest(ValueError):
    pass


def _uptime(agent: Agent) -> float:
    return time.time() - agent.start_time


def _resources_of(run: TaskRun) -> Resources:
    try:
        return Resources.from_v1(run.info.get("resources") or [])
    except ResourceError:
        return Resources()


def statistics_json(agent: Agent) -> list[dict[str, Any]]:
    """One entry per executor (a command task is its own executor), from its cgroups, or /proc under posix."""
    active, _ = agent.runs()
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
    active, completed = agent.runs()
    frameworks: dict[str, dict[str, Any]] = {}
    completed_frameworks: dict[str, dict[str, Any]] = {}
    live_executors = [e for e in agent.executors.all() if e.state != "TERMINATED"]
    live_frameworks = {r.framework_id for r in active} | {e.framework_id for e in live_executors}
    for run in completed + active:
        info = agent.frameworks.get(run.framework_id, {})
        target = frameworks if run.framework_id in live_frameworks else completed_frameworks
        framework = target.setdefault(
            run.framework_id,
            {
                "id": run.framework_id,
                "name": info.get("name", ""),
                "user": info.get("user", ""),
                "failover_timeout": float(info.get("failover_timeout") or 0.0),
                "checkpoint": bool(info.get("checkpoint", False)),
                "hostname": info.get("hostname", ""),
                "role": info.get("role", "*"),
                "executors": {},
                "completed_executors": {},
            },
        )
        custom = run.executor
        executor_live = (not run.terminal) if custom is None else custom.state != "TERMINATED"
        executors = framework["executors"] if executor_live else framework["completed_executors"]
        executor = executors.setdefault(
            (run.executor_id, run.container_id),
            {
                "id": run.executor_id,
                "name": f"Command Executor (Task: {run.task_id})"
                if custom is None
                else str(custom.info.get("name") or run.executor_id),
                "source": run.task_id if custom is None else str(custom.info.get("source") or ""),
                "container": run.container_id,
                "directory": run.executor_directory,
                "resources": Resources().flatten() if custom is None else _flat(custom.info),
                "role": run.role,
                "tasks": [],
                "queued_tasks": [],
                "completed_tasks": [],
                "type": "COMMAND"
                if run.group is None and custom is None
                else "DEFAULT"
                if custom is None
                else "CUSTOM",
            },
        )
        if not run.terminal:
            executor["resources"] = _merge_flat(executor["resources"], _resources_of(run).flatten())
        (executor["completed_tasks"] if run.terminal else executor["tasks"]).append(_task_json(agent, run))
    for framework in list(frameworks.values()) + list(completed_frameworks.values()):
        framework["executors"] = list(framework["executors"].values())
        framework["completed_executors"] = list(framework["completed_executors"].values())
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
        "flags": {
            "master": config.master,
            "ip": config.ip,
            "port": str(config.port),
            "hostname": config.advertised_hostname,
            "work_dir": os.path.abspath(config.work_dir),
            "resources": str(config.resources),
            "attributes": str(config.attributes),
            "isolation": "cgroups/cpu,cgroups/mem" if agent.isolator.name == "cgroups" else "posix/cpu,posix/mem",
            "containerizers": ",".join(config.containerizers),
            "docker_socket": config.docker_socket,
            "recover": config.recover,
            "gc_delay": f"{config.gc_delay:g}secs",
            "executor_registration_timeout": f"{config.executor_registration_timeout:g}secs",
        },
        "frameworks": list(frameworks.values()),
        "completed_frameworks": list(completed_frameworks.values()),
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
