"""The agent's v1 operator API, ``POST /api/v1`` (Mesos' ``Http::api``, ``src/slave/http.cpp``), and the v0
``/flags``, ``/version`` and ``/containers``.

Negotiation as Mesos does it: the body is JSON (``application/json``), or RecordIO (``application/recordio`` with
``Message-Content-Type: application/json``) for ATTACH_CONTAINER_INPUT only; protobuf is not served (415/406). The
reply is JSON, or a RecordIO stream (``Accept: application/recordio``, ``Message-Accept: application/json``) for
LAUNCH_NESTED_CONTAINER_SESSION and ATTACH_CONTAINER_OUTPUT only. The calls the Mesos CLI uses for ``task exec``
and ``task attach`` run debug sessions (``debug.py``); the reads render the agent's records in v1 shapes.
"""

from __future__ import annotations

import base64
import json
import queue
import stat
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from mesolite import MESOS_VERSION
from mesolite.agent import views
from mesolite.agent.debug import DebugError, Session
from mesolite.agent.files import FilesError, SandboxFiles
from mesolite.agent.runs import TaskRun
from mesolite.core import protocol as proto
from mesolite.core.http import json_response, text_response
from mesolite.core.protobuf_json import CallError, F, Schema, convert

if TYPE_CHECKING:
    from mesolite.agent.state import Agent

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
RECORDIO = "application/recordio"
VALIDATE = "Failed to validate agent::Call"
HEARTBEAT_INTERVAL = 15.0  # under the CLI's 30 s read timeout (Mesos: --http_heartbeat_interval, 30 s)
BUILD = {"build_date": "2026-11-21 00:00:00", "build_time": 1795305600.0, "build_user": "mesolite"}

CALL_TYPES = (
    "UNKNOWN GET_HEALTH GET_FLAGS GET_VERSION GET_METRICS GET_LOGGING_LEVEL SET_LOGGING_LEVEL LIST_FILES READ_FILE "
    "GET_STATE GET_CONTAINERS GET_FRAMEWORKS GET_EXECUTORS GET_OPERATIONS GET_TASKS GET_AGENT GET_RESOURCE_PROVIDERS "
    "LAUNCH_NESTED_CONTAINER WAIT_NESTED_CONTAINER KILL_NESTED_CONTAINER REMOVE_NESTED_CONTAINER "
    "LAUNCH_NESTED_CONTAINER_SESSION ATTACH_CONTAINER_INPUT ATTACH_CONTAINER_OUTPUT LAUNCH_CONTAINER WAIT_CONTAINER "
    "KILL_CONTAINER REMOVE_CONTAINER ADD_RESOURCE_PROVIDER_CONFIG UPDATE_RESOURCE_PROVIDER_CONFIG "
    "REMOVE_RESOURCE_PROVIDER_CONFIG MARK_RESOURCE_PROVIDER_GONE PRUNE_IMAGES"
).split()
STREAMING = frozenset({"LAUNCH_NESTED_CONTAINER_SESSION", "ATTACH_CONTAINER_OUTPUT"})

CONTAINER_ID: Schema = {"value": F("string", required=True), "parent": F({"value": F("string", required=True)})}
SUB_MESSAGES: dict[str, Schema] = {
    "get_metrics": {"timeout": F({"nanoseconds": F("int", required=True)})},
    "list_files": {"path": F("string", required=True)},
    "read_file": {"path": F("string", required=True), "offset": F("int", required=True), "length": F("int")},
    "get_containers": {"show_nested": F("bool"), "show_standalone": F("bool")},
    "launch_nested_container_session": {"container_id": F(CONTAINER_ID, required=True)},
    "attach_container_output": {"container_id": F(CONTAINER_ID, required=True)},
    "attach_container_input": {"type": F("enum", names=("UNKNOWN", "CONTAINER_ID", "PROCESS_IO"))},
    "wait_container": {"container_id": F(CONTAINER_ID, required=True)},
    "wait_nested_container": {"container_id": F(CONTAINER_ID, required=True)},
    "kill_container": {"container_id": F(CONTAINER_ID, required=True), "signal": F("int")},
}
CALL: Schema = {"type": F("enum", names=tuple(CALL_TYPES)), **{k: F(v) for k, v in SUB_MESSAGES.items()}}


def parse_call(raw: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(type, converted sub-message, sub-message as sent), or CallError with Mesos' words."""
    converted = convert(CALL, raw)
    kind = converted.get("type")
    if kind is None:
        raise CallError(f"{VALIDATE}: Expecting 'type' to be present")
    key = kind.lower()
    if key in SUB_MESSAGES and key not in converted and kind != "GET_CONTAINERS":
        raise CallError(f"{VALIDATE}: Expecting '{key}' to be present")
    if kind == "LAUNCH_NESTED_CONTAINER_SESSION" and "parent" not in converted[key]["container_id"]:
        raise CallError(f"{VALIDATE}: Expecting 'launch_nested_container_session.container_id.parent' to be present")
    for field in ("launch_nested_container_session", "attach_container_output", "wait_container", "kill_container"):
        container_id = converted.get(field, {}).get("container_id")
        if container_id is not None:
            for value in (container_id["value"], container_id.get("parent", {}).get("value", "")):
                if "." in value or " " in value:
                    raise CallError(f"{VALIDATE}: 'ContainerID.value' '{value}' contains illegal characters")
    sent = raw.get(key) if isinstance(raw.get(key), dict) else {}
    return kind, converted.get(key, {}), sent


def _media(header: str | None) -> set[str]:
    """The media types an Accept header allows (``q=0`` excludes one)."""
    allowed = set()
    for part in (header or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        excluded = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
        if media and not excluded:
            allowed.add(media.lower())
    return allowed


def _accept() -> str | None:
    """JSON, RECORDIO, or None (406); protobuf is not served."""
    header = request.headers.get("Accept")
    if not header:
        return JSON
    allowed = _media(header)
    if allowed & {JSON, "application/*", "*/*"}:
        return JSON
    if RECORDIO in allowed:
        return RECORDIO
    return None


def operator_blueprint(agent: Agent, files: Callable[[], SandboxFiles]) -> Blueprint:
    bp = Blueprint("agent_operator", __name__)

    @bp.route("/api/v1", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    @bp.route("/slave(1)/api/v1", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
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
        streaming_request = content_type == RECORDIO
        if streaming_request:
            if request.headers.get("Message-Content-Type") != JSON:
                return text_response("Expecting 'Message-Content-Type' to be application/json", 415)
        elif content_type != JSON:
            return text_response(
                "Expecting 'Content-Type' of application/json or application/recordio (protobuf is not served)", 415
            )
        elif "Message-Content-Type" in request.headers:
            return text_response("Expecting 'Message-Content-Type' header only for streaming requests", 415)
        stream = IncrementalBody(request.environ) if streaming_request else None
        try:
            raw = _read_record(stream) if streaming_request else json.loads(request.get_data() or b"")
        except ValueError as exc:
            return text_response(f"Failed to parse body into JSON: {exc}", 400)
        try:
            kind, body, sent = parse_call(raw)
        except CallError as exc:
            return text_response(exc.message, exc.status)
        if streaming_request and kind != "ATTACH_CONTAINER_INPUT":
            return text_response(f"Streaming request is not supported for {kind} call", 415)
        if kind == "ATTACH_CONTAINER_INPUT" and not streaming_request:
            return text_response("Expecting 'Content-Type' of application/recordio for ATTACH_CONTAINER_INPUT", 415)
        accept = _accept()
        if accept is None:
            return text_response("Expecting 'Accept' to allow application/json or application/recordio", 406)
        if accept == RECORDIO:
            if kind not in STREAMING:
                return text_response(f"Streaming response is not supported for {kind} call", 406)
            if request.headers.get("Message-Accept", JSON) not in (JSON, "*/*", "application/*"):
                return text_response("Expecting 'Message-Accept' to allow application/json", 406)
        elif "Message-Accept" in request.headers:
            return text_response("Expecting 'Message-Accept' header only for streaming responses", 406)
        try:
            return _dispatch(agent, files, kind, body, sent, accept, stream)
        except DebugError as exc:
            return text_response(exc.message, exc.status)
        except FilesError as exc:
            return text_response(exc.message, exc.status)

    @bp.get("/flags")
    @bp.get("/slave(1)/flags")
    def flags() -> Response:
        return json_response({"flags": views.flags_json(agent)})

    @bp.get("/version")
    @bp.get("/slave(1)/version")
    def version() -> Response:
        return json_response({"version": MESOS_VERSION, **BUILD})

    @bp.get("/containers")
    @bp.get("/slave(1)/containers")
    def containers() -> Response:
        container_id = request.args.get("container_id")
        framework_id = request.args.get("framework_id")
        executor_id = request.args.get("executor_id")
        if (executor_id and not framework_id) or (container_id and (framework_id or executor_id)):
            return text_response(
                "Query parameter 'container_id' cannot be combined with others, and 'executor_id' needs 'framework_id'",
                400,
            )
        entries = []
        for entry in _containers(agent):
            if container_id and entry["container_id"] != container_id:
                continue
            if framework_id and entry["framework_id"] != framework_id:
                continue
            if executor_id and entry["executor_id"] != executor_id:
                continue
            entries.append(entry)
        return json_response(entries)

    return bp


def _dispatch(
    agent: Agent,
    files: Callable[[], SandboxFiles],
    kind: str,
    body: dict[str, Any],
    sent: dict[str, Any],
    accept: str,
    stream: Any,
) -> Response:
    match kind:
        case "UNKNOWN":
            return text_response("501 Not Implemented.", 501)
        case "GET_HEALTH":
            return _reply(kind, {"healthy": True})
        case "GET_FLAGS":
            return _reply(
                kind, {"flags": [{"name": n, "value": v} for n, v in sorted(views.flags_json(agent).items())]}
            )
        case "GET_VERSION":
            return _reply(kind, {"version_info": {"version": MESOS_VERSION, **BUILD}})
        case "GET_METRICS":
            metrics = views.metrics_json(agent)
            return _reply(kind, {"metrics": [{"name": n, "value": v} for n, v in sorted(metrics.items())]})
        case "LIST_FILES":
            return _reply(kind, {"file_infos": [_file_info(e) for e in files().browse(body["path"])]})
        case "READ_FILE":
            return _reply(kind, _read_file(files(), body["path"], body["offset"], body.get("length")))
        case "GET_STATE":
            return _reply(kind, _get_state(agent))
        case "GET_TASKS" | "GET_EXECUTORS" | "GET_FRAMEWORKS":
            return _reply(kind, _get_state(agent)[kind.lower()])
        case "GET_CONTAINERS":
            return _reply(kind, _get_containers(agent, bool(body.get("show_nested"))))
        case "LAUNCH_NESTED_CONTAINER_SESSION":
            return _launch_session(agent, body, sent, accept)
        case "ATTACH_CONTAINER_OUTPUT":
            return _attach_output(agent, body["container_id"], accept)
        case "ATTACH_CONTAINER_INPUT":
            return _attach_input(agent, body, sent, stream)
        case "WAIT_CONTAINER" | "WAIT_NESTED_CONTAINER":
            return _wait(agent, kind, body["container_id"])
        case "KILL_CONTAINER":
            session = agent.debug.get(body["container_id"]["value"])
            if session is None:
                raise DebugError(404, f"Container {body['container_id']['value']} cannot be found")
            session.destroy()
            return Response(status=200)
    return text_response(f"{kind} is not supported by this agent", 501)


def _reply(kind: str, body: dict[str, Any]) -> Response:
    return json_response({"type": kind, kind.lower(): {k: v for k, v in body.items() if v != []}})


def _file_info(entry: dict[str, Any]) -> dict[str, Any]:
    """v1 ``FileInfo``: the ``ls -l`` mode of the v0 listing back as the number ``st_mode`` holds."""
    return {
        "path": entry["path"],
        "nlink": entry["nlink"],
        "size": entry["size"],
        "mtime": {"nanoseconds": int(float(entry["mtime"]) * 1e9)},
        "mode": _mode_bits(str(entry["mode"])),
        "uid": entry["uid"],
        "gid": entry["gid"],
    }


def _mode_bits(text: str) -> int:
    kinds = {"d": stat.S_IFDIR, "l": stat.S_IFLNK, "c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    kinds["s"] = stat.S_IFSOCK
    bits = kinds.get(text[:1], stat.S_IFREG)
    for index, char in enumerate(text[1:10]):
        if char not in "-ST":
            bits |= 1 << (8 - index)
    return bits


def _read_file(files: SandboxFiles, path: str, offset: int, length: int | None) -> dict[str, Any]:
    """READ_FILE: ``size`` and the bytes at ``offset`` (base64), read as the v0 ``/files/read`` reads them."""
    if offset < 0:
        raise FilesError(400, f"Negative offset provided: {offset}")
    if length is not None and length < 0:
        raise FilesError(400, f"Negative length provided: {length}")
    size = int(files.read(path, None, None)["offset"])
    with open(files.resolve(path), "rb") as handle:
        handle.seek(offset)
        data = handle.read(length if length is not None else max(0, size - offset))
    return {"size": size, "data": base64.b64encode(data).decode()}


# ---------------------------------------------------------------------------------------------------- sessions


def _launch_session(agent: Agent, body: dict[str, Any], sent: dict[str, Any], accept: str) -> Response:
    if accept != RECORDIO:
        return text_response("Expecting 'Accept' to allow application/recordio for a container session", 406)
    container = sent.get("container")
    tty = False
    if isinstance(container, dict):
        if container.get("type", "MESOS") != "MESOS" or container.get("mesos") or container.get("docker"):
            raise DebugError(400, "The provided ContainerInfo is not supported")
        if (container.get("linux_info") or {}).get("share_cgroups") is False:
            raise DebugError(400, "'share_cgroups' cannot be false for a nested container session")
        tty = "tty_info" in container
    container_id = body["container_id"]
    sent_command = sent.get("command")
    command: dict[str, Any] = sent_command if isinstance(sent_command, dict) else {"value": "/bin/sh"}
    session = agent.debug.launch(container_id["value"], container_id["parent"]["value"], command, tty)
    output = session.attach_output()
    agent.debug.start(session)
    return _output_stream(session, output, destroy_on_close=True)


def _attach_output(agent: Agent, container_id: dict[str, Any], accept: str) -> Response:
    if accept != RECORDIO:
        return text_response("Expecting 'Accept' to allow application/recordio for ATTACH_CONTAINER_OUTPUT", 406)
    session = _session_or_error(agent, container_id["value"])
    return _output_stream(session, session.attach_output(), destroy_on_close=False)


def _session_or_error(agent: Agent, value: str) -> Session:
    session = agent.debug.get(value)
    if session is not None:
        return session
    if agent.debug.task_container(value) is not None:
        raise DebugError(500, "I/O switchboard server was disabled for this container")
    raise DebugError(404, f"Container {value} cannot be found")


def _output_stream(session: Session, output: queue.Queue[Any], destroy_on_close: bool) -> Response:
    interval = {"nanoseconds": int(HEARTBEAT_INTERVAL * 1e9)}
    heartbeat = proto.recordio(
        {"type": "CONTROL", "control": {"type": "HEARTBEAT", "heartbeat": {"interval": interval}}}
    )

    def records() -> Iterator[bytes]:
        try:
            # A first record at once: the response (and its headers) goes out now, so a client that waits for the
            # stream before it attaches its input (the Mesos CLI's `task exec -i`) is not stuck behind a silent
            # command.
            yield heartbeat
            while True:
                try:
                    chunk = output.get(timeout=HEARTBEAT_INTERVAL)
                except queue.Empty:
                    yield heartbeat
                    continue
                if chunk is None:
                    return
                kind, data = chunk
                if data:
                    encoded = base64.b64encode(data).decode()
                    yield proto.recordio({"type": "DATA", "data": {"type": kind, "data": encoded}})
        finally:
            session.detach_output(output)
            if destroy_on_close:
                session.destroy()

    return Response(records(), status=200, mimetype=RECORDIO, headers={"Message-Content-Type": JSON})


def _attach_input(agent: Agent, body: dict[str, Any], sent: dict[str, Any], stream: Any) -> Response:
    if body.get("type") != "CONTAINER_ID":
        raise DebugError(400, f"{VALIDATE}: Expecting 'attach_container_input.type' to be CONTAINER_ID")
    container_id = convert(CONTAINER_ID, sent.get("container_id"), prefix=VALIDATE)
    session = _session_or_error(agent, container_id["value"])
    if session.input_attached:
        raise DebugError(409, "Multiple input connections are not allowed")
    session.input_attached = True
    try:
        while True:
            try:
                record = _read_record(stream)
            except EOFError:
                return Response(status=200)
            process_io = (record.get("attach_container_input") or {}).get("process_io") or {}
            if process_io.get("type") == "DATA":
                data = process_io.get("data") or {}
                if data.get("type") != "STDIN" or "data" not in data:
                    raise DebugError(400, f"{VALIDATE}: Expecting 'process_io.data' of type STDIN with 'data'")
                try:
                    session.write_input(base64.b64decode(data["data"]))
                except OSError as exc:
                    raise DebugError(500, f"Failed to write to the container's stdin: {exc}") from None
            elif process_io.get("type") == "CONTROL":
                control = process_io.get("control") or {}
                if control.get("type") == "TTY_INFO":
                    size = (control.get("tty_info") or {}).get("window_size") or {}
                    session.set_window_size(int(size.get("rows", 0)), int(size.get("columns", 0)))
            if session.output_closed.is_set() and session.exited.is_set():
                return Response(status=200)
    finally:
        session.input_attached = False


class IncrementalBody:
    """A request body read as its chunks arrive. gunicorn's ``readline``/``read`` wait for 1 KiB or the end of the
    body, so a typed line would sit there: with gunicorn's chunked reader, chunks are taken from its parser one by
    one; any other server's input is read as it offers it."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._input = environ["wsgi.input"]
        self._buffer = b""
        reader = getattr(self._input, "reader", None)
        self._parser = getattr(reader, "parser", None)
        if self._parser is not None:
            for buffered in (self._input, reader):
                leftover = getattr(buffered, "buf", None)
                if leftover is not None:
                    self._buffer += leftover.getvalue()
                    leftover.seek(0)
                    leftover.truncate()

    def _more(self) -> bytes:
        if self._parser is not None:
            try:
                return bytes(next(self._parser))
            except StopIteration:
                self._parser = None
                return b""
        return bytes(self._input.readline())

    def readline(self) -> bytes:
        while b"\n" not in self._buffer:
            more = self._more()
            if not more:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += more
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            more = self._more() if self._parser is not None else bytes(self._input.read(size - len(self._buffer)))
            if not more:
                break
            self._buffer += more
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _read_record(stream: Any) -> dict[str, Any]:
    """One RecordIO record from a request body; EOFError at its end."""
    header = stream.readline()
    if not header:
        raise EOFError
    text = header.strip()
    if not text.isdigit():
        raise ValueError(f"bad RecordIO length {text[:20]!r}")
    length = int(text)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError("Expecting a JSON object")
    return record


def _wait(agent: Agent, kind: str, container_id: dict[str, Any]) -> Response:
    value = container_id["value"]
    if agent.debug.known(value):
        status = agent.debug.wait(value)
    else:
        run = agent.debug.task_container(value)
        if run is None or run.container is None:
            raise DebugError(404, f"Container {value} cannot be found")
        run.container.exited.wait()
        status = None  # a task's own status reaches its framework; the container's is not kept
    return _reply(kind, {"exit_status": status} if status is not None else {})


# ---------------------------------------------------------------------------------------------------- reads


def _task_v1(agent: Agent, run: TaskRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": run.info.get("name", ""),
        "task_id": proto.wrap(run.task_id),
        "framework_id": proto.wrap(run.framework_id),
        "agent_id": proto.wrap(agent.id or ""),
        "state": run.state,
        "resources": run.info.get("resources") or [],
        "statuses": run.statuses,
    }
    if run.executor_id != run.task_id:
        out["executor_id"] = proto.wrap(run.executor_id)
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if key in run.info:
            out[key] = run.info[key]
    return out


def _executor_info(run: TaskRun) -> dict[str, Any]:
    if run.executor is not None:
        return dict(run.executor.info)
    return {
        "executor_id": proto.wrap(run.executor_id),
        "framework_id": proto.wrap(run.framework_id),
        "name": f"Command Executor (Task: {run.task_id})",
        "source": run.task_id,
        "type": "DEFAULT",
    }


def _get_state(agent: Agent) -> dict[str, Any]:
    active, completed = agent.runs.snapshot()
    launched = [_task_v1(agent, r) for r in active if r.state != "TASK_STAGING"]
    queued = [_task_v1(agent, r) for r in active if r.state == "TASK_STAGING"]
    executors: dict[tuple[str, str], dict[str, Any]] = {}
    for run in active:
        executors.setdefault((run.framework_id, run.executor_id), {"executor_info": _executor_info(run)})
    frameworks = [{"framework_info": info} for info in agent.frameworks.all()]
    tasks = {
        "launched_tasks": launched,
        "queued_tasks": queued,
        "completed_tasks": [_task_v1(agent, r) for r in completed],
    }
    return {
        "get_tasks": {k: v for k, v in tasks.items() if v},
        "get_executors": {"executors": list(executors.values())} if executors else {},
        "get_frameworks": {"frameworks": frameworks} if frameworks else {},
    }


def _containers(agent: Agent) -> list[dict[str, Any]]:
    """``GET /containers``: the executors' containers with their usage."""
    ids: dict[tuple[str, str], str] = {}
    for run in agent.runs.active():
        ids[(run.framework_id, run.executor_id)] = run.container_id
    for executor in agent.executors.all():
        ids[(executor.framework_id, executor.executor_id)] = executor.container_id
    out = []
    for usage in views.statistics_json(agent):
        container_id = ids.get((usage["framework_id"], usage["executor_id"]))
        if container_id is None:
            continue
        out.append(
            {
                "container_id": container_id,
                "framework_id": usage["framework_id"],
                "executor_id": usage["executor_id"],
                "executor_name": usage.get("executor_name", ""),
                "source": usage.get("source", ""),
                "status": {"container_id": {"value": container_id}},
                "statistics": usage.get("statistics", {}),
            }
        )
    return out


def _get_containers(agent: Agent, show_nested: bool) -> dict[str, Any]:
    containers = []
    for entry in _containers(agent):
        containers.append(
            {
                "framework_id": proto.wrap(entry["framework_id"]),
                "executor_id": proto.wrap(entry["executor_id"]),
                "executor_name": entry["executor_name"],
                "container_id": {"value": entry["container_id"]},
                "container_status": entry["status"],
                "resource_statistics": entry["statistics"],
            }
        )
    if show_nested:
        for session in agent.debug.all():
            full = {"value": session.container_id, "parent": {"value": session.parent}}
            containers.append(
                {"container_id": {"value": session.container_id}, "container_status": {"container_id": full}}
            )
    return {"containers": containers}
