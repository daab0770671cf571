"""The master's HTTP API: the v1 scheduler API, the v0 read endpoints, and the agent protocol.

Status codes, messages and paths follow Mesos' handlers (src/master/http.cpp): schedulers and tools written for
Apache Mesos branch on them. Every read endpoint answers under ``/master/X`` and ``/X``, as libprocess delegates
the ``master`` process' routes.

This is the edge: bodies are parsed into typed calls here (``calls.py``) before the ``Master`` sees them, and the
domain errors it raises (``errors.py``) become Mesos' status codes and plain-text messages here.
"""

from __future__ import annotations

import json
import logging
import os
import queue
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, request

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.http import json_response, query_int, text_response, v1_call_body
from mesolite.core.server import SERVICE_KEY
from mesolite.core.store import SQLiteStore
from mesolite.master import calls, views
from mesolite.master.errors import InvalidCall, MasterError, NotSubscribed, UnknownFramework, UnsupportedCall
from mesolite.master.model import Subscription
from mesolite.master.operator import register_operator
from mesolite.master.state import Master, MasterConfig

log = logging.getLogger(__name__)

# Each domain error as Mesos answers it (src/master/http.cpp).
STATUS_CODES: dict[type[MasterError], int] = {
    InvalidCall: 400,
    UnknownFramework: 400,
    NotSubscribed: 403,
    UnsupportedCall: 501,
}


def status_code(error: MasterError) -> int:
    for kind, code in STATUS_CODES.items():
        if isinstance(error, kind):
            return code
    return 400


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

    @app.errorhandler(MasterError)
    def master_error(exc: MasterError) -> Response:
        return text_response(exc.message, status_code(exc))

    @app.get("/version")
    def version() -> Response:
        return json_response({"version": MESOS_VERSION, **views.BUILD})

    @app.get("/metrics/snapshot")
    def metrics() -> Response:
        return json_response(master.metrics_json())

    # The ``master`` process' routes answer under ``/master/X`` and ``/X``, as libprocess delegates them.
    for blueprint in (_scheduler_api(master), _read_endpoints(master), _operator_endpoints(master)):
        app.register_blueprint(blueprint, url_prefix="/master", name=f"master_{blueprint.name}")
        app.register_blueprint(blueprint)
    app.register_blueprint(_agent_protocol(master), url_prefix="/master/internal")
    register_operator(app, master)  # the v1 operator API, maintenance and quota: operator.py
    from mesolite.ui.master import register_master_ui  # the web UI: services/mesolite/ui/

    register_master_ui(app, master)
    return app


def _scheduler_api(master: Master) -> Blueprint:
    bp = Blueprint("scheduler", __name__)

    @bp.post("/api/v1/scheduler")
    def scheduler() -> Response:
        return _scheduler_call(master)

    return bp


def _read_endpoints(master: Master) -> Blueprint:
    """The v0 JSON endpoints tools poll (Mesos-DNS, marathon-lb style bridges, the web UIs, curl)."""
    bp = Blueprint("reads", __name__)

    @bp.get("/state")
    @bp.get("/state.json")
    def state() -> Response:
        return json_response(master.state_json())

    @bp.get("/state-summary")
    def state_summary() -> Response:
        return json_response(master.state_summary_json())

    @bp.get("/slaves")
    def slaves() -> Response:
        return json_response(master.slaves_json(request.args.get("slave_id")))

    @bp.get("/frameworks")
    def frameworks() -> Response:
        return json_response(master.frameworks_json(request.args.get("framework_id")))

    @bp.get("/tasks")
    def tasks() -> Response:
        try:
            limit = query_int("limit", 100) or 0
            offset = query_int("offset", 0) or 0
        except ValueError as exc:
            return text_response(str(exc), 400)
        order = request.args.get("order", "des")
        if order not in ("asc", "des"):
            return text_response("Failed to parse 'order': expected 'asc' or 'des'", 400)
        query = views.TaskQuery(
            limit=limit,
            offset=offset,
            descending=order == "des",
            framework_id=request.args.get("framework_id"),
            task_id=request.args.get("task_id"),
        )
        return json_response(master.tasks_json(query))

    @bp.get("/flags")
    def flags() -> Response:
        return json_response({"flags": master.flags_json()})

    @bp.get("/roles")
    def roles() -> Response:
        return json_response(master.roles_json())

    @bp.get("/health")
    def health() -> Response:
        return Response(status=200)

    @bp.get("/redirect")
    def redirect() -> Response:
        location = _leader_location(master)
        if location is None:
            return text_response("No leader elected", 503)
        return Response(status=307, headers={"Location": location})

    return bp


def _operator_endpoints(master: Master) -> Blueprint:
    """The v0 endpoints that change something: role weights and framework teardown."""
    bp = Blueprint("operator", __name__)

    @bp.route("/weights", methods=["GET", "PUT"])
    def weights() -> Response:
        if request.method == "GET":
            return json_response(master.weights_json())
        try:
            entries = json.loads(request.get_data() or b"null")
            updates = {str(e["role"]): float(e["weight"]) for e in entries}
        except (ValueError, TypeError, KeyError) as exc:
            return text_response(f"Failed to parse update weights request: {exc}", 400)
        if any(w <= 0 for w in updates.values()):
            return text_response("Weights must be positive", 400)
        master.update_weights(updates)
        return Response(status=200)

    @bp.post("/teardown")
    def teardown() -> Response:
        framework_id = request.form.get("frameworkId") or request.args.get("frameworkId")
        if not framework_id:
            return text_response("Missing 'frameworkId' query parameter in the request body", 400)
        try:
            master.teardown(framework_id)
        except UnknownFramework:
            return text_response(f"No framework found with specified ID: {framework_id}", 400)
        return Response(status=200)

    return bp


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
    """Mesos' order of checks: the body, the call type, SUBSCRIBE's headers, then for any other call its framework
    and stream, then the call's own fields."""
    raw = v1_call_body()
    if isinstance(raw, Response):
        return raw
    kind = calls.call_type(raw)
    if kind == "SUBSCRIBE":
        accept = request.headers.get("Accept", "application/json")
        if not any(m in accept for m in ("application/json", "*/*", "application/*")):
            return text_response("Expecting 'Accept' to allow application/json", 406)
        if request.headers.get("Mesos-Stream-Id"):
            return text_response("Subscribe calls should not include the 'Mesos-Stream-Id' header", 400)
        return _event_stream(master, master.subscribe(calls.parse_subscribe(raw)))
    framework_id = calls.framework_id(raw)
    master.authorize(framework_id, request.headers.get("Mesos-Stream-Id"))
    call = calls.parse_call(kind, raw, framework_id)
    _dispatch(master, framework_id, call)
    return Response(status=200 if isinstance(call, calls.UpdateFramework) else 202)


def _dispatch(master: Master, framework_id: str, call: calls.SchedulerCall) -> None:
    match call:
        case calls.Teardown():
            master.teardown(framework_id)
        case calls.Accept():
            master.accept(framework_id, call)
        case calls.Decline():
            master.decline(framework_id, call)
        case calls.Revive():
            master.revive(framework_id, call)
        case calls.Suppress():
            master.suppress(framework_id, call)
        case calls.Kill():
            master.kill(framework_id, call)
        case calls.Shutdown():
            master.shutdown_executor(framework_id, call)
        case calls.Acknowledge():
            master.acknowledge(framework_id, call)
        case calls.Reconcile():
            master.reconcile(framework_id, call)
        case calls.Message():
            master.message(framework_id, call)
        case calls.UpdateFramework():
            master.update_framework(framework_id, call)
        case calls.AnswerInverseOffers():
            master.answer_inverse_offers(framework_id, call)
        case calls.Ignored():
            pass


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


def _agent_protocol(master: Master) -> Blueprint:
    """The agent → master half of the agent protocol (docs/agent-protocol.md), under ``/master/internal``."""
    bp = Blueprint("agent_protocol", __name__)

    def body() -> dict[str, Any]:
        return calls.agent_message(request.get_data())

    @bp.post("/register")
    def register() -> Response:
        agent_id = master.register_agent(calls.parse_registration(body()))
        return json_response(
            {
                "agent_id": proto.wrap(agent_id),
                "master_info": master.info_json(),
                "heartbeat_interval_seconds": master.config.agent_ping_timeout,
            }
        )

    @bp.post("/heartbeat")
    def heartbeat() -> Response:
        if not master.agent_heartbeat(calls.parse_heartbeat(body())):
            return text_response("Unknown agent: re-register", 404)
        return json_response({})

    @bp.post("/unregister")
    def unregister() -> Response:
        if not master.unregister_agent(calls.parse_heartbeat(body())):
            return text_response("Unknown agent", 404)
        return Response(status=202)

    @bp.post("/status")
    def status() -> Response:
        settled = master.agent_status_update(calls.parse_status_update(body()))
        return json_response({"acknowledged": settled}, 202)

    @bp.post("/executor_exited")
    def executor_exited() -> Response:
        master.agent_executor_exited(calls.parse_executor_exited(body()))
        return Response(status=202)

    @bp.post("/message")
    def message() -> Response:
        master.agent_executor_message(calls.parse_executor_message(body()))
        return Response(status=202)

    return bp
