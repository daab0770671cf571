"""``POST /api/v1/executor``: the v1 executor HTTP API (docs/executor-http-api.md), served by the agent.

Same framing as the scheduler API: SUBSCRIBE is answered ``200`` with a chunked RecordIO stream of events (that the
executor keeps open for its life); every other call is answered ``202``. Errors use Mesos' status codes and
messages (400 malformed, 403 terminating executor, 406 unacceptable Accept, 415 wrong Content-Type).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request

from mesolite.agent.executors import ExecutorCallError, ExecutorManager
from mesolite.core import protocol as proto
from mesolite.core.http import text_response, v1_call_body

HEARTBEAT_INTERVAL = 15.0


def executor_blueprint(executors: ExecutorManager) -> Blueprint:
    api = Blueprint("executor_api", __name__)

    @api.post("/api/v1/executor")
    @api.post("/slave(1)/api/v1/executor")
    def executor_call() -> Response:
        call = v1_call_body()
        if isinstance(call, Response):
            return call
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
