"""The agent's HTTP API: the master → agent half of the agent protocol, the v1 executor API (executor_api.py), and
the endpoints operators and the web UI read (``/state`` also as ``/slave(1)/state``, ``/files/*``,
``/monitor/statistics``, ``/health``), rendered by views.py."""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Blueprint, Flask, Response, request

from mesolite.agent import views
from mesolite.agent.executor_api import executor_blueprint
from mesolite.agent.files import SandboxFiles, files_blueprint
from mesolite.agent.operator import operator_blueprint
from mesolite.agent.state import Agent, AgentConfig
from mesolite.core import protocol as proto
from mesolite.core.http import json_response, text_response
from mesolite.core.server import SERVICE_KEY


def create_app(config: AgentConfig, agent: Agent | None = None) -> Flask:
    app = Flask("mesolite.agent")
    agent = agent or Agent(config)
    app.extensions[SERVICE_KEY] = agent
    app.register_blueprint(_agent_protocol(agent))
    app.register_blueprint(_read_endpoints(agent))
    app.register_blueprint(files_blueprint(lambda: SandboxFiles(config.work_dir, agent.sandbox_paths)))
    app.register_blueprint(executor_blueprint(agent.executors))
    app.register_blueprint(operator_blueprint(agent, lambda: SandboxFiles(config.work_dir, agent.sandbox_paths)))

    @app.errorhandler(ValueError)
    def bad_request(exc: ValueError) -> Response:
        return text_response(str(exc), 400)

    return app


def _body() -> dict[str, Any]:
    try:
        data = json.loads(request.get_data() or b"")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _BadRequest("Expecting a JSON object")
    return data


def _agent_protocol(agent: Agent) -> Blueprint:
    """The master → agent half of the agent protocol (docs/agent-protocol.md)."""
    internal = Blueprint("agent_protocol", __name__)

    @internal.post("/internal/launch")
    def launch() -> Response:
        agent.launch(_body())
        return Response(status=202)

    @internal.post("/internal/kill")
    def kill() -> Response:
        data = _body()
        framework_id = proto.unwrap(data.get("framework_id")) or ""
        task_id = proto.unwrap(data.get("task_id")) or ""
        agent.kill(framework_id, task_id, data.get("kill_policy"))
        return Response(status=202)

    @internal.post("/internal/acknowledge")
    def acknowledge() -> Response:
        data = _body()
        agent.acknowledge(
            proto.unwrap(data.get("framework_id")) or "",
            proto.unwrap(data.get("task_id")) or "",
            str(data.get("uuid")),
        )
        return Response(status=202)

    @internal.post("/internal/shutdown_framework")
    def shutdown_framework() -> Response:
        agent.shutdown_framework(proto.unwrap(_body().get("framework_id")) or "")
        return Response(status=202)

    @internal.post("/internal/shutdown_executor")
    def shutdown_executor() -> Response:
        data = _body()
        agent.shutdown_executor(
            proto.unwrap(data.get("framework_id")) or "", proto.unwrap(data.get("executor_id")) or ""
        )
        return Response(status=202)

    @internal.post("/internal/drain")
    def drain() -> Response:
        config = _body().get("config")
        agent.drain(config if isinstance(config, dict) else {})
        return Response(status=202)

    @internal.post("/internal/shutdown")
    def shutdown() -> Response:
        message = str(_body().get("message", ""))
        threading.Thread(target=agent.master_shutdown, args=(message,), name="agent-removed", daemon=True).start()
        return Response(status=202)

    @internal.post("/internal/framework_message")
    def framework_message() -> Response:
        data = _body()
        message = data.get("data")
        if not isinstance(message, str):
            raise _BadRequest("Expecting 'data'")
        agent.framework_message(
            proto.unwrap(data.get("framework_id")) or "", proto.unwrap(data.get("executor_id")) or "", message
        )
        return Response(status=202)

    return internal


def _read_endpoints(agent: Agent) -> Blueprint:
    """What operators, the web UI and tools read, rendered by views.py."""
    reads = Blueprint("agent_reads", __name__)

    @reads.get("/state")
    @reads.get("/state.json")
    @reads.get("/slave(1)/state")
    @reads.get("/slave(1)/state.json")
    def state() -> Response:
        return json_response(views.state_json(agent))

    @reads.get("/health")
    @reads.get("/slave(1)/health")
    def health() -> Response:
        return Response(status=200)

    @reads.get("/monitor/statistics")
    @reads.get("/monitor/statistics.json")
    @reads.get("/slave(1)/monitor/statistics")
    def statistics() -> Response:
        return json_response(views.statistics_json(agent))

    @reads.get("/metrics/snapshot")
    def metrics() -> Response:
        return json_response(views.metrics_json(agent))

    return reads


class _BadRequest(ValueError):
    pass
