"""The master's HTTP API: the v1 scheduler API, the v0 read endpoints, and the agent protocol.

Status codes, messages and paths follow Mesos' handlers (src/master/http.cpp): schedulers and tools written for
Apache Mesos branch on them. Every read endpoint answers under ``/master/X`` and ``/X``, as libprocess delegates
the ``master`` process' routes.
"""

from __future__ import annotations

import json
import logging
import os
import queue
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, request

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.http import json_response, query_int, text_response, v1_call_body
from mesolite.core.server import SERVICE_KEY
from mesolite.core.store import SQLiteStore
from mesolite.master import views
from mesolite.master.state import CallError, Framework, Master, MasterConfig, Subscription

log = logging.getLogger(__name__)

CALL_TYPES = {
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "REVIVE",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "RECONCILE",
    "MESSAGE",
    "REQUEST",
    "SUPPRESS",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
    "ACKNOWLEDGE_OPERATION_STATUS",
    "RECONCILE_OPERATIONS",
    "UPDATE_FRAMEWORK",
    "UNKNOWN",
}


# Served by every master, leading or not; everything else is the leader's to answer.
UNGATED = {"/health", "/master/health", "/version", "/metrics/snapshot", "/redirect", "/master/redirect"}


def create_app(config: MasterConfig, master: Master | None = None) -> Flask:
    app = Flask("mesolite.master")
    if master is None:
        master, service = _build(config)
    else:
        service = master
    app.extensions[SERVICE_KEY] = service

    @app.before_request
    def leader_gate() -> Response | None:
        """Non-leaders send callers to the leader (307, protocol-relative as Mesos does), or 503 if none."""
        if master.leading or request.path in UNGATED:
            return None
        location = _leader_location(master)
        if location is None:
            return text_response("No leader elected", 503)
        query = request.query_string.decode()
        return Response(status=307, headers={"Location": location + request.path + (f"?{query}" if query else "")})

    def route(path: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``/master<path>`` and ``<path>``, like libprocess' delegate process."""

        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            app.add_url_rule(f"/master{path}", f"master{path}", view, methods=list(methods))
            app.add_url_rule(path, path, view, methods=list(methods))
            return view

        return register

    @app.errorhandler(CallError)
    def call_error(exc: CallError) -> Response:
        return text_response(exc.message, exc.status)

    @app.get("/version")
    def version() -> Response:
        return json_response({"version": MESOS_VERSION, **views.BUILD})

    @route("/api/v1/scheduler", methods=("POST",))
    def scheduler() -> Response:
        return _scheduler_call(master)

    @route("/state")
    @route("/state.json")
    def state() -> Response:
        return json_response(views.state_json(master))

    @route("/state-summary")
    def state_summary() -> Response:
        return json_response(views.state_summary_json(master))

    @route("/slaves")
    def slaves() -> Response:
        wanted = request.args.get("slave_id")
        with master.locked():
            agents = [a for a in master.agents.values() if not wanted or a.id == wanted]
            return json_response(
                {
                    "slaves": [views.agent_json(master, a) for a in agents if a.state == "ACTIVE"],
                    "recovered_slaves": [views.recovered_agent_json(a) for a in agents if a.state == "RECOVERED"],
                }
            )

    @route("/frameworks")
    def frameworks() -> Response:
        wanted = request.args.get("framework_id")
        with master.locked():
            return json_response(
                {
                    "frameworks": [
                        views.framework_json(master, f)
                        for f in master.frameworks.values()
                        if not wanted or f.id == wanted
                    ],
                    "completed_frameworks": [
                        views.framework_json(master, f)
                        for f in master.completed_frameworks
                        if not wanted or f.id == wanted
                    ],
                    "unregistered_frameworks": [],
                }
            )

    @route("/tasks")
    def tasks() -> Response:
        try:
            limit = query_int("limit", 100) or 0
            offset = query_int("offset", 0) or 0
        except ValueError as exc:
            return text_response(str(exc), 400)
        order = request.args.get("order", "des")
        if order not in ("asc", "des"):
            return text_response("Failed to parse 'order': expected 'asc' or 'des'", 400)
        framework_id = request.args.get("framework_id")
        task_id = request.args.get("task_id")
        with master.locked():
            found = []
            for framework in master.frameworks.values():
                if framework_id and framework.id != framework_id:
                    continue
                found.extend(list(framework.tasks.values()) + list(framework.completed_tasks))
            if task_id:
                found = [t for t in found if t.id == task_id]
            found.sort(key=lambda t: t.statuses[0]["timestamp"] if t.statuses else 0.0, reverse=order == "des")
            return json_response({"tasks": [views.task_json(t) for t in found[offset : offset + limit]]})

    @route("/health")
    def health() -> Response:
        return Response(status=200)

    @route("/redirect")
    def redirect() -> Response:
        location = _leader_location(master)
        if location is None:
            return text_response("No leader elected", 503)
        return Response(status=307, headers={"Location": location})

    @route("/flags")
    def flags() -> Response:
        return json_response({"flags": views.flags_json(master)})

    @route("/roles")
    def roles() -> Response:
        return json_response(_roles_json(master))

    @route("/weights", methods=("GET", "PUT"))
    def weights() -> Response:
        if request.method == "GET":
            return json_response([{"role": r, "weight": w} for r, w in sorted(master.weights.items())])
        try:
            entries = json.loads(request.get_data() or b"null")
            updates = {str(e["role"]): float(e["weight"]) for e in entries}
        except (ValueError, TypeError, KeyError) as exc:
            return text_response(f"Failed to parse update weights request: {exc}", 400)
        if any(w <= 0 for w in updates.values()):
            return text_response("Weights must be positive", 400)
        with master.locked():
            master.weights.update(updates)
            master.store.put("meta/weights", master.weights)
        return Response(status=200)

    @route("/teardown", methods=("POST",))
    def teardown() -> Response:
        framework_id = request.form.get("frameworkId") or request.args.get("frameworkId")
        if not framework_id:
            return text_response("Missing 'frameworkId' query parameter in the request body", 400)
        with master.locked():
            framework = master.frameworks.get(framework_id)
            if framework is None:
                return text_response(f"No framework found with specified ID: {framework_id}", 400)
            master.teardown(framework)
        return Response(status=200)

    @app.get("/metrics/snapshot")
    def metrics() -> Response:
        return json_response(views.metrics_json(master))

    _agent_protocol(app, master)
    from mesolite.ui.master import register_master_ui  # the web UI: services/mesolite/ui/

    register_master_ui(app, master)
    return app


def _build(config: MasterConfig) -> tuple[Master, Any]:
    """The master and the service object that runs it: alone, or inside a ZooKeeper election."""
    if not config.zk:
        os.makedirs(config.work_dir, exist_ok=True)
        master = Master(config, SQLiteStore(os.path.join(config.work_dir, "registry.db")))
        return master, master
    from mesolite.core import zk
    from mesolite.master.election import MasterElection

    hosts, group = zk.parse_zk_url(config.zk)
    client = zk.connect(hosts, session_timeout=config.zk_session_timeout)
    master = Master(config, zk.ZooKeeperStore(client, f"{group}/registry"), leading=False)
    return master, MasterElection(master, client, group)


def _leader_location(master: Master) -> str | None:
    if master.leading:
        return f"//{master.config.advertised_hostname}:{master.config.port}"
    address = (master.leader or {}).get("address") or {}
    host = address.get("hostname") or address.get("ip")
    if not host or not address.get("port"):
        return None
    return f"//{host}:{address['port']}"


def _scheduler_call(master: Master) -> Response:
    call = v1_call_body()
    if isinstance(call, Response):
        return call
    call_type = call.get("type")
    if call_type not in CALL_TYPES:
        return text_response(
            f"Failed to convert JSON into Call protobuf: Failed to find enum for '{call_type}'"
            if call_type is not None
            else "Failed to validate scheduler::Call: Expecting 'type' to be present",
            400,
        )
    if call_type == "UNKNOWN":
        return text_response("Received an unexpected UNKNOWN call", 501)
    if call_type == "SUBSCRIBE":
        accept = request.headers.get("Accept", "application/json")
        if not any(m in accept for m in ("application/json", "*/*", "application/*")):
            return text_response("Expecting 'Accept' to allow application/json", 406)
        if request.headers.get("Mesos-Stream-Id"):
            return text_response("Subscribe calls should not include the 'Mesos-Stream-Id' header", 400)
        subscription = master.subscribe(call)
        return _event_stream(master, subscription)
    framework_id = proto.unwrap(call.get("framework_id"))
    if not framework_id:
        return text_response("Failed to validate scheduler::Call: Expecting 'framework_id' to be present", 400)
    with master.locked():
        framework = master.subscribed_framework(framework_id, request.headers.get("Mesos-Stream-Id"))
    body_key = call_type.lower()
    body = call.get(body_key)
    if body is not None and not isinstance(body, dict):
        return text_response(f"Failed to convert JSON into Call protobuf: '{body_key}' must be an object", 400)
    return _dispatch(master, framework, call_type, body)


def _dispatch(master: Master, framework: Framework, call_type: str, body: dict[str, Any] | None) -> Response:
    required = {"ACCEPT", "DECLINE", "KILL", "SHUTDOWN", "ACKNOWLEDGE", "MESSAGE", "UPDATE_FRAMEWORK"}
    if call_type in required and body is None:
        return text_response(f"Failed to validate scheduler::Call: Expecting '{call_type.lower()}' to be present", 400)
    if call_type == "ACCEPT":
        for operation in (body or {}).get("operations") or []:
            error = _operation_shape_error(operation)
            if error:
                return text_response(f"Failed to convert JSON into Call protobuf: {error}", 400)
    handlers: dict[str, Callable[[], Any]] = {
        "TEARDOWN": lambda: master.teardown(framework),
        "ACCEPT": lambda: master.accept(framework, body or {}),
        "DECLINE": lambda: master.decline(framework, body or {}),
        "REVIVE": lambda: master.revive(framework, body),
        "SUPPRESS": lambda: master.suppress(framework, body),
        "KILL": lambda: master.kill(framework, body or {}),
        "SHUTDOWN": lambda: master.shutdown_executor(framework, body or {}),
        "ACKNOWLEDGE": lambda: master.acknowledge(framework, body or {}),
        "RECONCILE": lambda: master.reconcile(framework, body or {}),
        "MESSAGE": lambda: master.message(framework, body or {}),
        "UPDATE_FRAMEWORK": lambda: master.update_framework(framework, body or {}),
    }
    handler = handlers.get(call_type)
    if handler is not None:
        handler()
    # REQUEST is ignored by the hierarchical allocator, and there are no inverse offers or operation feedback
    # without maintenance schedules and offer operation ids: Mesos accepts those calls all the same.
    return Response(status=200 if call_type == "UPDATE_FRAMEWORK" else 202)


def _operation_shape_error(operation: Any) -> str | None:
    """Required protobuf fields of the operations we execute: a missing one fails the whole call with 400."""
    if not isinstance(operation, dict) or not isinstance(operation.get("type"), str):
        return "each operation needs a 'type'"
    kind = operation["type"]
    if kind == "LAUNCH":
        tasks = (operation.get("launch") or {}).get("task_infos")
    elif kind == "LAUNCH_GROUP":
        group = operation.get("launch_group") or {}
        if not isinstance(group.get("executor"), dict):
            return "Missing required fields: launch_group.executor"
        tasks = (group.get("task_group") or {}).get("tasks")
    else:
        return None if kind in _OTHER_OPERATIONS else f"Failed to find enum for '{kind}'"
    if not isinstance(tasks, list):
        return f"Missing required fields: the {kind.lower()} operation has no task list"
    for task in tasks:
        if not isinstance(task, dict):
            return "a TaskInfo must be an object"
        missing = [f for f in ("name", "task_id", "agent_id") if f not in task]
        if missing or not proto.unwrap(task.get("task_id")) or not proto.unwrap(task.get("agent_id")):
            return f"Missing required fields: {', '.join(missing) or 'task_id.value, agent_id.value'}"
        if not isinstance(task.get("resources", []), list):
            return "TaskInfo.resources must be a list"
    return None


_OTHER_OPERATIONS = {
    "RESERVE",
    "UNRESERVE",
    "CREATE",
    "DESTROY",
    "GROW_VOLUME",
    "SHRINK_VOLUME",
    "CREATE_DISK",
    "DESTROY_DISK",
}


def _event_stream(master: Master, subscription: Subscription) -> Response:
    heartbeat = master.config.heartbeat_interval

    def events() -> Iterator[bytes]:
        try:
            first = True
            while True:
                try:
                    event = subscription.events.get(timeout=heartbeat)
                except queue.Empty:
                    event = {"type": "HEARTBEAT"}
                if event is None:
                    return
                yield proto.recordio(event)
                if first and event.get("type") == "SUBSCRIBED":
                    # Mesos follows SUBSCRIBED with a heartbeat at once, so schedulers see the cadence start.
                    yield proto.recordio({"type": "HEARTBEAT"})
                first = False
        finally:
            master.disconnected(subscription)

    return Response(
        events(),
        status=200,
        mimetype="application/json",
        headers={"Mesos-Stream-Id": subscription.stream_id, "Cache-Control": "no-cache"},
    )


def _roles_json(master: Master) -> dict[str, Any]:
    with master.locked():
        roles: dict[str, dict[str, Any]] = {}
        for role, weight in master.weights.items():
            roles[role] = {"name": role, "weight": weight, "frameworks": [], "resources": {}}
        for framework in master.frameworks.values():
            for role in framework.roles:
                entry = roles.setdefault(
                    role,
                    {
                        "name": role,
                        "weight": master.weights.get(role, 1.0),
                        "frameworks": [],
                        "resources": {},
                    },
                )
                entry["frameworks"].append(framework.id)
        for entry in roles.values():
            used = None
            for framework_id in entry["frameworks"]:
                for task in master.frameworks[framework_id].tasks.values():
                    if task.role == entry["name"] and not proto.is_terminal(task.state):
                        used = task.resources if used is None else used + task.resources
            entry["resources"] = (
                used.flatten() if used is not None else {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
            )
        return {"roles": sorted(roles.values(), key=lambda r: r["name"])}


def _agent_protocol(app: Flask, master: Master) -> None:
    """The agent → master half of the agent protocol (docs/agent-protocol.md)."""

    def body() -> dict[str, Any]:
        try:
            data = json.loads(request.get_data() or b"")
        except ValueError as exc:
            raise CallError(400, f"Failed to parse body into JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CallError(400, "Expecting a JSON object")
        return data

    @app.post("/master/internal/register")
    def register() -> Response:
        return json_response(master.register_agent(body()))

    @app.post("/master/internal/heartbeat")
    def heartbeat() -> Response:
        known = master.agent_heartbeat(proto.unwrap(body().get("agent_id")))
        if not known:
            return text_response("Unknown agent: re-register", 404)
        return json_response({})

    @app.post("/master/internal/unregister")
    def unregister() -> Response:
        if not master.unregister_agent(proto.unwrap(body().get("agent_id"))):
            return text_response("Unknown agent", 404)
        return Response(status=202)

    @app.post("/master/internal/status")
    def status() -> Response:
        settled = master.agent_status_update(body())
        return json_response({"acknowledged": settled}, 202)

    @app.post("/master/internal/executor_exited")
    def executor_exited() -> Response:
        master.agent_executor_exited(body())
        return Response(status=202)

    @app.post("/master/internal/message")
    def message() -> Response:
        master.agent_executor_message(body())
        return Response(status=202)
