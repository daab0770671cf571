"""The master's v1 operator API: ``POST /api/v1`` (also ``/master/api/v1``, and ``/api/v1/operator`` which
libprocess routes to the same handler by longest prefix).

Mesos' order of checks (``Master::Http::api``): the method, the Content-Type (exactly ``application/json``; this
master does not speak protobuf and answers it 415), the body, the conversion to a ``master::Call`` and its
validation (``operator_calls.py``), the Accept header, then the call. GET_* calls answer 200 with
``{"type": <CALL>, "<call>": {...}}``; every other call answers 200 with an empty body. SUBSCRIBE answers a RecordIO
stream of operator events (``operator_events.py``). Domain errors become Mesos' status codes here.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, request

from mesolite.core import protocol as proto
from mesolite.core.http import json_response, text_response
from mesolite.master import operator_calls as oc
from mesolite.master import operator_views as ov
from mesolite.master import quota as quota_module
from mesolite.master.errors import AgentRefused, InvalidCall, MasterError, NotFound, UnknownFramework
from mesolite.master.operator_events import OperatorSubscriber
from mesolite.master.operator_v0 import error_response, v0_blueprint

if TYPE_CHECKING:
    from mesolite.master.state import Master

log = logging.getLogger(__name__)

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def register_operator(app: Flask, master: Master) -> None:
    """The operator API and the v0 maintenance and quota endpoints, each under ``/X`` and ``/master/X``; and the
    answer to agents the master refuses (Mesos' ShutdownMessage)."""
    for blueprint in (operator_blueprint(master), v0_blueprint(master)):
        app.register_blueprint(blueprint)
        app.register_blueprint(blueprint, url_prefix="/master", name=f"master_{blueprint.name}")

    # libprocess routes by path prefix, so Mesos answers ``/master/frameworks/`` as ``/master/frameworks`` (the Mesos
    # CLI asks for it): a trailing slash is tolerated on every route.
    app.url_map.strict_slashes = False
    for rule in app.url_map.iter_rules():
        rule.strict_slashes = False

    @app.errorhandler(AgentRefused)
    def refused(exc: AgentRefused) -> Response:
        return json_response({"shutdown": {"message": exc.message}}, 403)


class LoggingLevel:
    """GET/SET_LOGGING_LEVEL: glog's verbosity, as this master's Python log level (0 is INFO, more is DEBUG),
    set for a while and then restored, as Mesos does."""

    def __init__(self) -> None:
        self.level = 0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def set(self, level: int, seconds: float) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._apply(level)
            self._timer = threading.Timer(seconds, self._apply, args=(0,))
            self._timer.daemon = True
            self._timer.start()

    def _apply(self, level: int) -> None:
        self.level = level
        logging.getLogger("mesolite").setLevel(logging.DEBUG if level > 0 else logging.NOTSET)


def _accepts_json() -> bool | None:
    """True for JSON, False when only protobuf is acceptable, None when neither is."""
    accept = request.headers.get("Accept")
    if not accept:
        return True
    allowed = set()
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        allowed.add(media.lower())
    if allowed & {JSON, "application/*", "*/*"}:
        return True
    return False if PROTOBUF in allowed else None


def _reply(call_type: str, body: dict[str, Any]) -> Response:
    data = json.dumps({"type": call_type, call_type.lower(): body}, separators=(",", ":")).encode()
    headers = {}
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return Response(data, status=200, mimetype=JSON, headers=headers)


def operator_blueprint(master: Master) -> Blueprint:
    bp = Blueprint("operator_api", __name__)
    logging_level = LoggingLevel()
    handlers = _handlers(master, logging_level)

    @bp.errorhandler(MasterError)
    def master_error(exc: MasterError) -> Response:
        return error_response(exc)

    @bp.route("/api/v1", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    @bp.route("/api/v1/operator", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    def api() -> Response:
        if request.method != "POST":
            return text_response(
                f"405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{request.method}'.",
                405,
                headers={"Allow": "POST"},
            )
        content_type = request.headers.get("Content-Type")
        if content_type is None:
            return text_response("Expecting 'Content-Type' to be present", 400)
        if content_type == PROTOBUF:
            return text_response(
                "Expecting 'Content-Type' of application/json: this master does not serve protobuf", 415
            )
        if content_type != JSON:
            return text_response("Expecting 'Content-Type' of application/json or application/x-protobuf", 415)
        try:
            raw = json.loads(request.get_data() or b"")
        except ValueError as exc:
            return text_response(f"Failed to parse body into JSON: {exc}", 400)
        try:
            call = oc.parse(raw)
        except oc.CallError as exc:
            return text_response(exc.message, exc.status)
        accepts = _accepts_json()
        if accepts is None:
            return text_response("Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'", 406)
        if accepts is False:
            return text_response(
                "Expecting 'Accept' to allow 'application/json': this master does not serve protobuf", 406
            )
        if call.type == "UNKNOWN":
            return text_response("501 Not Implemented.", 501)
        if call.type in oc.UNSUPPORTED:
            return text_response(f"{call.type} is not supported by this master", 501)
        if call.type == "SUBSCRIBE":
            return _event_stream(master, master.subscribe_operator())
        try:
            result = handlers[call.type](call)
        except oc.CallError as exc:
            return text_response(exc.message, exc.status)
        except quota_module.QuotaError as exc:
            return text_response(exc.message, exc.status)
        if result is None:
            return Response(status=200)
        return _reply(call.type, result)

    return bp


def _event_stream(master: Master, subscriber: OperatorSubscriber) -> Response:
    interval = master.config.heartbeat_interval

    def records() -> Iterator[bytes]:
        try:
            while True:
                event = subscriber.next(interval)
                if event is None:
                    return
                yield proto.recordio(event)
        finally:
            master.unsubscribe_operator(subscriber)

    return Response(records(), status=200, mimetype=JSON, headers={"Cache-Control": "no-cache"})


def _handlers(master: Master, logging_level: LoggingLevel) -> dict[str, Callable[[oc.Call], dict[str, Any] | None]]:
    """Each call: its response body, or None for an empty 200."""

    files = MasterFiles({})

    def flags(_: oc.Call) -> dict[str, Any]:
        return {"flags": [{"name": n, "value": v} for n, v in sorted(master.flags_json().items())]}

    def metrics(_: oc.Call) -> dict[str, Any]:
        return {"metrics": [{"name": n, "value": v} for n, v in sorted(master.metrics_json().items())]}

    def set_logging_level(call: oc.Call) -> None:
        logging_level.set(int(call.body["level"]), int(call.body["duration"]["nanoseconds"]) / 1e9)

    def roles(_: oc.Call) -> dict[str, Any]:
        document = master.roles_json()
        return {
            "roles": [
                {
                    "name": r["name"],
                    "weight": r["weight"],
                    **({"frameworks": [proto.wrap(f) for f in r["frameworks"]]} if r["frameworks"] else {}),
                }
                for r in document["roles"]
            ]
        }

    def weights(_: oc.Call) -> dict[str, Any]:
        return {"weight_infos": master.weights_json()}

    def update_weights(call: oc.Call) -> None:
        master.update_weights(oc.weights(call))

    def get_master(_: oc.Call) -> dict[str, Any]:
        return {"master_info": master.info_json(), "start_time": master.start_time, "elected_time": master.elected_time}

    def teardown(call: oc.Call) -> None:
        try:
            master.teardown(oc.framework_id(call))
        except UnknownFramework:
            raise InvalidCall("No framework found with specified ID") from None

    def update_schedule(call: oc.Call) -> None:
        master.update_maintenance_schedule(oc.schedule_windows(call.body["schedule"]))

    def update_quota(call: oc.Call) -> None:
        configs, force = oc.quota_configs(call)
        master.update_quota(configs, force)

    def set_quota(call: oc.Call) -> None:
        config, force = quota_module.from_request(call.raw.get("quota_request") or {})
        master.set_quota(config, force)

    def remove_quota(call: oc.Call) -> None:
        role = str(call.body["role"])
        if not master.remove_quota(role):
            raise InvalidCall(f"Failed to remove quota: Role '{role}' has no quota set")

    return {
        "GET_HEALTH": lambda _: {"healthy": True},
        "GET_FLAGS": flags,
        "GET_VERSION": lambda _: {"version_info": ov.version_info()},
        "GET_METRICS": metrics,
        "GET_LOGGING_LEVEL": lambda _: {"level": logging_level.level},
        "SET_LOGGING_LEVEL": set_logging_level,
        "LIST_FILES": lambda call: {"file_infos": files.list(call.body["path"])},
        "READ_FILE": lambda call: files.read(call.body["path"], call.body["offset"], call.body.get("length")),
        "GET_STATE": lambda _: master.read(lambda m: ov.get_state(m.cluster, m.inverse_offers_by_framework())),
        "GET_AGENTS": lambda _: master.read(lambda m: ov.get_agents(m.cluster)),
        "GET_FRAMEWORKS": lambda _: master.read(
            lambda m: ov.get_frameworks(m.cluster, m.inverse_offers_by_framework())
        ),
        "GET_EXECUTORS": lambda _: master.read(lambda m: ov.get_executors(m.cluster)),
        "GET_OPERATIONS": lambda _: {},
        "GET_TASKS": lambda _: master.read(lambda m: ov.get_tasks(m.cluster)),
        "GET_ROLES": roles,
        "GET_WEIGHTS": weights,
        "UPDATE_WEIGHTS": update_weights,
        "GET_MASTER": get_master,
        "GET_MAINTENANCE_STATUS": lambda _: {"status": master.read(lambda m: m.maintenance.status_json())},
        "GET_MAINTENANCE_SCHEDULE": lambda _: {"schedule": master.read(lambda m: m.maintenance.schedule_json())},
        "UPDATE_MAINTENANCE_SCHEDULE": update_schedule,
        "START_MAINTENANCE": lambda call: master.start_maintenance(oc.machines(call)),
        "STOP_MAINTENANCE": lambda call: master.stop_maintenance(oc.machines(call)),
        "DRAIN_AGENT": lambda call: master.drain_agent(oc.drain_agent(call)),
        "DEACTIVATE_AGENT": lambda call: master.deactivate_agent(oc.agent_id(call)),
        "REACTIVATE_AGENT": lambda call: master.reactivate_agent(oc.agent_id(call)),
        "MARK_AGENT_GONE": lambda call: master.mark_agent_gone(oc.agent_id(call)),
        "GET_QUOTA": lambda _: {"status": master.read(lambda m: quota_module.status_json(m.quotas))},
        "UPDATE_QUOTA": update_quota,
        "SET_QUOTA": set_quota,
        "REMOVE_QUOTA": remove_quota,
        "TEARDOWN": teardown,
    }


class MasterFiles:
    """The master's files layer (LIST_FILES, READ_FILE): virtual paths attached to real files. Mesos attaches
    ``/master/log`` when logging to ``--log_dir``; this master logs to its service manager's journal, so nothing
    is attached and every path is answered 404, as Mesos answers a path it does not serve."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = dict(paths)

    def _real(self, path: str) -> str:
        real = self._paths.get(path.rstrip("/") or "/")
        if real is None or not os.path.exists(real):
            raise NotFound(f"No such file or directory: '{path}'")
        return real

    def list(self, path: str) -> list[dict[str, Any]]:
        real = self._real(path)
        st = os.stat(real)
        return [
            {
                "path": path,
                "nlink": st.st_nlink,
                "size": st.st_size,
                "mtime": {"nanoseconds": int(st.st_mtime * 1e9)},
                "mode": st.st_mode,
                "uid": str(st.st_uid),
                "gid": str(st.st_gid),
            }
        ]

    def read(self, path: str, offset: int, length: int | None) -> dict[str, Any]:
        real = self._real(path)
        if offset < 0:
            raise InvalidCall("Negative offset provided")
        size = os.path.getsize(real)
        with open(real, "rb") as handle:
            handle.seek(min(offset, size))
            data = handle.read(length if length is not None and length >= 0 else -1)
        return {"size": size, "data": base64.b64encode(data).decode()}
