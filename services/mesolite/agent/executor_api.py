"""``POST /api/v1/executor``: the v1 executor HTTP API (docs/executor-http-api.md), served by the agent.

Same framing as the scheduler API: SUBSCRIBE is answered ``200`` with a chunked RecordIO stream of events (that the
executor keeps open for its life); every other call is answered ``202``. Errors use Mesos' status codes and
messages (400 malformed, 403 terminating executor, 406 unacceptable Accept, 415 wrong Content-Type).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request

from mesolite.agent.executors import ExecutorCallError, ExecutorManager
from mesolite.core import protocol as proto
from mesolite.core.http import text_response

HEARTBEAT_INTERVAL = 15.0


def executor_blueprint(executors: ExecutorManager) -> Blueprint:
    api = Blueprint("executor_api", __name__)

    @api.post("/api/v1/executor")
    @api.post("/slave(1)/api/v1/executor")
    def executor_call() -> Response:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        if not content_type:
            return text_response("Expecting 'Content-Type' to be present", 400)
        if content_type != "application/json":
            return text_response(
                f"Expecting 'Content-Type' of application/json or application/x-protobuf; got {content_type}"
                if content_type != "application/x-protobuf"
                else "Only the JSON encoding is served here",
                415,
            )
        try:
            call = json.loads(request.get_data() or b"")
        except ValueError as exc:
            return text_response(f"Failed to parse body into JSON: {exc}", 400)
        if not isinstance(call, dict):
            return text_response("Failed to convert JSON into Call protobuf: expected an object", 400)
        try:
            if call.get("type") == "SUBSCRIBE":
                accept = request.headers.get("Accept", "application/json")
                if not any(a.strip().split(";")[0] in ("application/json", "*/*", "") for a in accept.split(",")):
                    return text_response("Expecting 'Accept' to allow application/json", 406)
                executor, stream = executors.subscribe(call)
                return Response(
                    _events(executors, executor, stream),
                    status=200,
                    mimetype="application/json",
                    headers={"Cache-Control": "no-cache"},
                )
            executors.call(call)
        except ExecutorCallError as exc:
            return text_response(exc.message, exc.status)
        return Response(status=202)

    return api


def _events(executors: ExecutorManager, executor: Any, stream: queue.Queue[dict[str, Any] | None]) -> Iterator[bytes]:
    try:
        while True:
            try:
                event = stream.get(timeout=HEARTBEAT_INTERVAL)
            except queue.Empty:
                event = {"type": "HEARTBEAT"}
            if event is None:
                return
            yield proto.recordio(event)
    finally:
        executors.disconnected(executor, stream)
