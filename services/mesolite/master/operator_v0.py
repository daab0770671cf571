"""The v0 maintenance and quota endpoints (``src/master/http.cpp``, ``maintenance.cpp``, ``quota_handler.cpp``):
``/maintenance/schedule``, ``/maintenance/status``, ``/machine/down``, ``/machine/up``, ``/quota``.

Raw JSON bodies (the Content-Type is not looked at), Mesos' status codes and messages: the converter's and the
validation's words without the v1 prefixes, and 405 naming the methods an endpoint takes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from mesolite.core.http import json_response, text_response
from mesolite.master import operator_calls as oc
from mesolite.master import quota as quota_module
from mesolite.master.errors import Conflict, InvalidCall, MasterError, NotFound, Unavailable
from mesolite.master.maintenance import MachineID

if TYPE_CHECKING:
    from mesolite.master.state import Master

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
# The domain errors of the operator's calls as Mesos answers them.
CODES: dict[type[MasterError], int] = {NotFound: 404, Conflict: 409, Unavailable: 503, InvalidCall: 400}


def error_response(exc: MasterError) -> Response:
    for kind, code in CODES.items():
        if isinstance(exc, kind):
            return text_response(exc.message, code)
    return text_response(exc.message, 400)


def _not_allowed(*allowed: str) -> Response:
    names = ", ".join(f"'{m}'" for m in allowed)
    return text_response(
        f"405 Method Not Allowed. Expecting one of {{ {names} }}, but received '{request.method}'.",
        405,
        headers={"Allow": ", ".join(allowed)},
    )


def _body(kind: type) -> Any:
    """The request body as JSON of ``kind`` (object or array), or raise CallError with stout's words."""
    try:
        value = json.loads(request.get_data() or b"")
    except ValueError as exc:
        raise oc.CallError(f"Failed to parse JSON: {exc}") from None
    if not isinstance(value, kind):
        raise oc.CallError(f"Expecting a JSON {'object' if kind is dict else 'array'}")
    return value


def _machines(value: list[Any]) -> list[MachineID]:
    machines = []
    for entry in value:
        converted = oc.convert(oc.MACHINE_ID, entry, prefix="")
        machines.append(MachineID(converted.get("hostname", ""), converted.get("ip", "")))
    return machines


def v0_blueprint(master: Master) -> Blueprint:
    bp = Blueprint("operator_v0", __name__)

    @bp.errorhandler(MasterError)
    def master_error(exc: MasterError) -> Response:
        return error_response(exc)

    @bp.errorhandler(oc.CallError)
    def call_error(exc: oc.CallError) -> Response:
        return text_response(exc.message, exc.status)

    @bp.errorhandler(quota_module.QuotaError)
    def quota_error(exc: quota_module.QuotaError) -> Response:
        return text_response(exc.message, exc.status)

    @bp.route("/maintenance/schedule", methods=METHODS)
    def schedule() -> Response:
        if request.method == "GET":
            return json_response(master.read(lambda m: m.maintenance.schedule_json()))
        if request.method != "POST":
            return _not_allowed("GET", "POST")
        converted = oc.convert(oc.SCHEDULE, _body(dict), prefix="")
        master.update_maintenance_schedule(oc.schedule_windows(converted))
        return Response(status=200)

    @bp.route("/maintenance/status", methods=METHODS)
    def status() -> Response:
        if request.method != "GET":
            return _not_allowed("GET")
        return json_response(master.read(lambda m: m.maintenance.status_json()))

    @bp.route("/machine/down", methods=METHODS)
    def machine_down() -> Response:
        if request.method != "POST":
            return _not_allowed("POST")
        master.start_maintenance(_machines(_body(list)))
        return Response(status=200)

    @bp.route("/machine/up", methods=METHODS)
    def machine_up() -> Response:
        if request.method != "POST":
            return _not_allowed("POST")
        master.stop_maintenance(_machines(_body(list)))
        return Response(status=200)

    @bp.route("/quota", methods=METHODS)
    def quota() -> Response:
        if request.method == "GET":
            return json_response(master.read(lambda m: quota_module.status_json(m.quotas)))
        if request.method != "POST":
            return _not_allowed("GET", "POST", "DELETE")
        text = request.get_data(as_text=True)
        try:
            body = json.loads(text or "")
        except ValueError as exc:
            return text_response(f"Failed to parse set quota request JSON '{text}': {exc}", 400)
        if not isinstance(body, dict):
            return text_response(f"Failed to parse set quota request JSON '{text}': Expecting a JSON object", 400)
        config, force = quota_module.from_request(body)
        master.set_quota(config, force)
        return Response(status=200)

    @bp.route("/quota/<path:role>", methods=METHODS)
    def remove_quota(role: str) -> Response:
        if request.method != "DELETE":
            return _not_allowed("GET", "POST", "DELETE")
        if not master.remove_quota(role):
            return text_response(
                f"Failed to remove quota for path '{request.path}': Role '{role}' has no quota set", 400
            )
        return Response(status=200)

    return bp
