"""The edge of the master: v1 scheduler calls and agent-protocol messages parsed into typed records.

Everything that arrives as JSON is checked and unwrapped here, with the messages Mesos answers a malformed call
with (``InvalidCall`` becomes a 400 in ``api.py``), so the state machine takes bare ids and typed values and never
sees a raw body. Payloads the master only stores or forwards (FrameworkInfo, TaskInfo, TaskStatus, kill policies)
stay JSON objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesolite.core import protocol as proto
from mesolite.core.attributes import Attributes
from mesolite.core.resources import ResourceError, Resources
from mesolite.master.errors import InvalidCall, UnsupportedCall

DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 31_536_000.0

CALL_TYPES = frozenset(
    {
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
)
# Calls whose body (the field named after the type) protobuf declares required.
BODY_REQUIRED = frozenset(
    {
        "ACCEPT",
        "DECLINE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "MESSAGE",
        "UPDATE_FRAMEWORK",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
    }
)
# Offer operations Mesos knows but the master does not execute: an ACCEPT carrying them is well-formed.
OTHER_OPERATIONS = frozenset(
    {"RESERVE", "UNRESERVE", "CREATE", "DESTROY", "GROW_VOLUME", "SHRINK_VOLUME", "CREATE_DISK", "DESTROY_DISK"}
)

PARSE = "Failed to convert JSON into Call protobuf"
VALIDATE = "Failed to validate scheduler::Call"


# ---------------------------------------------------------------------------------------------------- scheduler calls


@dataclass(frozen=True)
class Subscribe:
    framework_id: str | None  # set when the framework re-subscribes (fails over)
    framework_info: dict[str, Any]  # without its "id": the master assigns or keeps it
    failover_timeout: float
    suppressed_roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Teardown:
    pass


@dataclass(frozen=True)
class TaskSpec:
    """A TaskInfo to launch: the ids the master needs read out, the whole TaskInfo kept to forward to the agent."""

    task_id: str
    agent_id: str
    name: str
    info: dict[str, Any]
    # The ExecutorInfo it runs under (its own for a custom executor, the group's for a task group), if any, and
    # that executor's id (None when the ExecutorInfo lacks one: the task is then refused with TASK_ERROR).
    executor: dict[str, Any] | None = None
    executor_id: str | None = None


@dataclass(frozen=True)
class Launch:
    """A LAUNCH operation (``group_executor`` None) or a LAUNCH_GROUP (its tasks share ``group_executor``)."""

    tasks: tuple[TaskSpec, ...]
    group_executor: dict[str, Any] | None = None


@dataclass(frozen=True)
class Accept:
    # None stands for an id that could not be read: the whole ACCEPT is then refused as invalid offers.
    offer_ids: tuple[str | None, ...]
    launches: tuple[Launch, ...] = ()
    refuse_seconds: float = DEFAULT_REFUSE_SECONDS

    @property
    def tasks(self) -> list[TaskSpec]:
        return [task for launch in self.launches for task in launch.tasks]


@dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float = DEFAULT_REFUSE_SECONDS


@dataclass(frozen=True)
class Revive:
    roles: frozenset[str] = frozenset()  # empty: every role of the framework


@dataclass(frozen=True)
class Suppress:
    roles: frozenset[str] = frozenset()  # empty: every role of the framework


@dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str | None = None
    kill_policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class Shutdown:
    agent_id: str | None
    executor_id: str | None


@dataclass(frozen=True)
class Acknowledge:
    agent_id: str
    task_id: str
    uuid: str


@dataclass(frozen=True)
class ReconcileTask:
    task_id: str
    agent_id: str | None = None


@dataclass(frozen=True)
class Reconcile:
    tasks: tuple[ReconcileTask, ...] | None = None  # None: implicit reconciliation (every task the master knows)


@dataclass(frozen=True)
class Message:
    agent_id: str | None
    executor_id: str
    data: str


@dataclass(frozen=True)
class UpdateFramework:
    framework_info: dict[str, Any]  # without its "id", which cannot change
    suppressed_roles: frozenset[str] | None = None  # None: left as they are


@dataclass(frozen=True)
class AnswerInverseOffers:
    """ACCEPT_INVERSE_OFFERS (``accept``) or DECLINE_INVERSE_OFFERS: a hint recorded for the maintenance status."""

    accept: bool
    inverse_offer_ids: tuple[str, ...]
    refuse_seconds: float = DEFAULT_REFUSE_SECONDS


@dataclass(frozen=True)
class Ignored:
    """REQUEST (the hierarchical allocator ignores it) and the operation-feedback calls, which need offer operation
    ids the master does not have: Mesos accepts them all the same."""

    type: str


SchedulerCall = (
    Teardown
    | Accept
    | Decline
    | Revive
    | Suppress
    | Kill
    | Shutdown
    | Acknowledge
    | Reconcile
    | Message
    | UpdateFramework
    | AnswerInverseOffers
    | Ignored
)


def call_type(call: dict[str, Any]) -> str:
    kind = call.get("type")
    if kind is None:
        raise InvalidCall(f"{VALIDATE}: Expecting 'type' to be present")
    if not isinstance(kind, str) or kind not in CALL_TYPES:
        raise InvalidCall(f"{PARSE}: Failed to find enum for '{kind}'")
    if kind == "UNKNOWN":
        raise UnsupportedCall("Received an unexpected UNKNOWN call")
    return kind


def framework_id(call: dict[str, Any]) -> str:
    """The framework every call but SUBSCRIBE must name."""
    value = proto.unwrap(call.get("framework_id"))
    if not value:
        raise InvalidCall(f"{VALIDATE}: Expecting 'framework_id' to be present")
    return value


def parse_subscribe(call: dict[str, Any]) -> Subscribe:
    subscribe = call.get("subscribe")
    if not isinstance(subscribe, dict) or not isinstance(subscribe.get("framework_info"), dict):
        raise InvalidCall(f"{VALIDATE}: Expecting 'subscribe' to be present")
    info = dict(subscribe["framework_info"])
    if not isinstance(info.get("user"), str) or not isinstance(info.get("name"), str):
        raise InvalidCall(f"{PARSE}: Missing required fields")
    info_id = proto.unwrap(info.pop("id", None))
    call_id = proto.unwrap(call.get("framework_id"))
    if info_id and call_id and info_id != call_id:
        raise InvalidCall(f"{VALIDATE}: 'framework_id' differs from 'subscribe.framework_info.id'")
    try:
        failover = float(info.get("failover_timeout") or 0.0)
    except (TypeError, ValueError):
        raise InvalidCall(f"{PARSE}: bad 'failover_timeout'") from None
    return Subscribe(
        framework_id=info_id or call_id,
        framework_info=info,
        failover_timeout=failover,
        suppressed_roles=_strings(subscribe.get("suppressed_roles")),
    )


def parse_call(kind: str, call: dict[str, Any], framework_id: str) -> SchedulerCall:
    """Any call but SUBSCRIBE and UNKNOWN, once its framework has been found subscribed on this stream."""
    key = kind.lower()
    body = call.get(key)
    if body is not None and not isinstance(body, dict):
        raise InvalidCall(f"{PARSE}: '{key}' must be an object")
    if kind in BODY_REQUIRED and body is None:
        raise InvalidCall(f"{VALIDATE}: Expecting '{key}' to be present")
    body = body or {}
    match kind:
        case "TEARDOWN":
            return Teardown()
        case "ACCEPT":
            return _accept(body)
        case "DECLINE":
            return Decline(
                offer_ids=tuple(i for i in (proto.unwrap(o) for o in _list(body.get("offer_ids"))) if i),
                refuse_seconds=refuse_seconds(body.get("filters")),
            )
        case "REVIVE":
            return Revive(_roles(body))
        case "SUPPRESS":
            return Suppress(_roles(body))
        case "KILL":
            return _kill(body)
        case "SHUTDOWN":
            return Shutdown(proto.unwrap(body.get("agent_id")), proto.unwrap(body.get("executor_id")))
        case "ACKNOWLEDGE":
            return _acknowledge(body)
        case "RECONCILE":
            return _reconcile(body)
        case "MESSAGE":
            return _message(body)
        case "UPDATE_FRAMEWORK":
            return _update_framework(body, framework_id)
        case "ACCEPT_INVERSE_OFFERS" | "DECLINE_INVERSE_OFFERS":
            return AnswerInverseOffers(
                accept=kind == "ACCEPT_INVERSE_OFFERS",
                inverse_offer_ids=tuple(
                    i for i in (proto.unwrap(o) for o in _list(body.get("inverse_offer_ids"))) if i
                ),
                refuse_seconds=refuse_seconds(body.get("filters")),
            )
    return Ignored(kind)


def refuse_seconds(filters: Any) -> float:
    """``Filters.refuse_seconds``, clamped as Mesos clamps it; a value that is not a number gets the default."""
    if isinstance(filters, dict) and "refuse_seconds" in filters:
        try:
            value = float(filters["refuse_seconds"])
        except (TypeError, ValueError):
            return DEFAULT_REFUSE_SECONDS
        return max(0.0, min(value, MAX_REFUSE_SECONDS))
    return DEFAULT_REFUSE_SECONDS


def _accept(body: dict[str, Any]) -> Accept:
    launches: list[Launch] = []
    for operation in _list(body.get("operations")):
        error = operation_shape_error(operation)
        if error:
            raise InvalidCall(f"{PARSE}: {error}")
        if operation["type"] == "LAUNCH":
            launches.append(Launch(tuple(_task_spec(info, None) for info in operation["launch"]["task_infos"])))
        elif operation["type"] == "LAUNCH_GROUP":
            group = operation["launch_group"]
            executor = group["executor"]
            launches.append(
                Launch(tuple(_task_spec(info, executor) for info in group["task_group"]["tasks"]), executor)
            )
    return Accept(
        offer_ids=tuple(proto.unwrap(o) for o in _list(body.get("offer_ids"))),
        launches=tuple(launches),
        refuse_seconds=refuse_seconds(body.get("filters")),
    )


def operation_shape_error(operation: Any) -> str | None:
    """Required protobuf fields of the operations the master executes: a missing one fails the whole call."""
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
        return None if kind in OTHER_OPERATIONS else f"Failed to find enum for '{kind}'"
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


def _task_spec(info: dict[str, Any], group_executor: dict[str, Any] | None) -> TaskSpec:
    """A TaskInfo that ``operation_shape_error`` passed: it has a name, a task id and an agent id."""
    own = info.get("executor")
    executor = group_executor if group_executor is not None else own if isinstance(own, dict) else None
    return TaskSpec(
        task_id=proto.unwrap(info["task_id"]) or "",
        agent_id=proto.unwrap(info["agent_id"]) or "",
        name=str(info.get("name", "")),
        info=info,
        executor=executor,
        executor_id=proto.unwrap(executor.get("executor_id")) if executor is not None else None,
    )


def _kill(body: dict[str, Any]) -> Kill:
    task_id = proto.unwrap(body.get("task_id"))
    if not task_id:
        raise InvalidCall(f"{VALIDATE}: Expecting 'kill.task_id' to be present")
    policy = body.get("kill_policy")
    return Kill(task_id, proto.unwrap(body.get("agent_id")), policy if isinstance(policy, dict) else None)


def _acknowledge(body: dict[str, Any]) -> Acknowledge:
    agent_id = proto.unwrap(body.get("agent_id"))
    task_id = proto.unwrap(body.get("task_id"))
    status_uuid = body.get("uuid")
    if not agent_id or not task_id or not isinstance(status_uuid, str):
        raise InvalidCall(f"{PARSE}: Missing required fields (agent_id, task_id, uuid)")
    return Acknowledge(agent_id, task_id, status_uuid)


def _reconcile(body: dict[str, Any]) -> Reconcile:
    entries = body.get("tasks")
    if not entries:
        return Reconcile(None)
    tasks = []
    for entry in _list(entries):
        task_id = proto.unwrap(entry.get("task_id")) if isinstance(entry, dict) else None
        if task_id:
            tasks.append(ReconcileTask(task_id, proto.unwrap(entry.get("agent_id"))))
    return Reconcile(tuple(tasks))


def _message(body: dict[str, Any]) -> Message:
    executor_id = proto.unwrap(body.get("executor_id"))
    data = body.get("data")
    if not executor_id or not isinstance(data, str):
        raise InvalidCall(f"{PARSE}: Missing required fields")
    return Message(proto.unwrap(body.get("agent_id")), executor_id, data)


def _update_framework(body: dict[str, Any], framework_id: str) -> UpdateFramework:
    info = body.get("framework_info")
    if not isinstance(info, dict):
        raise InvalidCall(f"{VALIDATE}: Expecting 'update_framework.framework_info'")
    info = dict(info)
    if proto.unwrap(info.pop("id", None)) not in (None, framework_id):
        raise InvalidCall(f"{VALIDATE}: framework id cannot be changed")
    suppressed = _strings(body.get("suppressed_roles")) if "suppressed_roles" in body else None
    return UpdateFramework(info, suppressed)


def _roles(body: dict[str, Any]) -> frozenset[str]:
    """REVIVE and SUPPRESS name ``roles`` (or the older single ``role``); none means all the framework's roles."""
    if isinstance(body.get("role"), str):
        return frozenset({body["role"]})
    return _strings(body.get("roles"))


def _strings(value: Any) -> frozenset[str]:
    return frozenset(v for v in _list(value) if isinstance(v, str))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------------------------------------------- agent messages


@dataclass(frozen=True)
class ReportedTask:
    """A task a (re-)registering agent says it runs: what it reports is the truth (master state is soft)."""

    framework_id: str
    task_id: str
    executor_id: str
    name: str
    resources: Resources
    info: dict[str, Any]
    role: str | None = None
    state: str | None = None
    statuses: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class Registration:
    agent_id: str | None  # set when the agent re-registers
    hostname: str
    ip: str
    port: int
    resources: Resources
    attributes: Attributes
    frameworks: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # FrameworkInfo (no "id") by id
    tasks: tuple[ReportedTask, ...] = ()


@dataclass(frozen=True)
class StatusUpdate:
    framework_id: str
    agent_id: str | None
    task_id: str
    status: dict[str, Any]  # the TaskStatus, forwarded to the scheduler as it came

    @property
    def uuid(self) -> str | None:
        value = self.status.get("uuid")
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ExecutorMessage:
    framework_id: str | None
    agent_id: str | None
    executor_id: str | None
    data: Any


@dataclass(frozen=True)
class ExecutorExited:
    framework_id: str
    agent_id: str
    executor_id: str
    status: int | None = None


def agent_message(data: bytes) -> dict[str, Any]:
    """The body of any agent → master message: a JSON object."""
    try:
        body = json.loads(data or b"")
    except ValueError as exc:
        raise InvalidCall(f"Failed to parse body into JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidCall("Expecting a JSON object")
    return body


def parse_registration(body: dict[str, Any]) -> Registration:
    info = body.get("agent_info")
    if not isinstance(info, dict):
        raise InvalidCall("Expecting 'agent_info' in the registration")
    try:
        hostname = str(info["hostname"])
        ip = str(info["ip"])
        port = int(info["port"])
        resources = Resources.from_v1(info.get("resources") or [])
        attributes = Attributes.from_v1(info.get("attributes") or [])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCall(f"Invalid agent registration: {exc}") from None
    frameworks: dict[str, dict[str, Any]] = {}
    for framework_info in _list(body.get("frameworks")):
        if isinstance(framework_info, dict) and (reported_id := proto.unwrap(framework_info.get("id"))):
            frameworks[reported_id] = {k: v for k, v in framework_info.items() if k != "id"}
    tasks = tuple(t for t in (_reported_task(e) for e in _list(body.get("tasks"))) if t is not None)
    return Registration(proto.unwrap(info.get("id")), hostname, ip, port, resources, attributes, frameworks, tasks)


def _reported_task(entry: Any) -> ReportedTask | None:
    if not isinstance(entry, dict):
        return None
    framework_id = proto.unwrap(entry.get("framework_id"))
    task_id = proto.unwrap(entry.get("task_id"))
    if not framework_id or not task_id:
        return None
    try:
        resources = Resources.from_v1(entry.get("resources") or [])
    except ResourceError:
        resources = Resources()
    statuses = entry.get("statuses")
    return ReportedTask(
        framework_id=framework_id,
        task_id=task_id,
        executor_id=proto.unwrap(entry.get("executor_id")) or task_id,
        name=str(entry.get("name", task_id)),
        resources=resources,
        info=entry.get("info") or {},
        role=str(entry["role"]) if entry.get("role") else None,
        state=str(entry["state"]) if entry.get("state") else None,
        statuses=tuple(statuses) if statuses and isinstance(statuses, list) else None,
    )


def parse_heartbeat(body: dict[str, Any]) -> str | None:
    return proto.unwrap(body.get("agent_id"))


def parse_status_update(body: dict[str, Any]) -> StatusUpdate:
    status = body.get("status")
    framework = proto.unwrap(body.get("framework_id"))
    if not isinstance(status, dict) or not framework:
        raise InvalidCall("Expecting 'framework_id' and 'status' in the status update")
    task_id = proto.unwrap(status.get("task_id"))
    if not task_id:
        raise InvalidCall("Expecting 'status.task_id' in the status update")
    return StatusUpdate(framework, proto.unwrap(body.get("agent_id")), task_id, status)


def parse_executor_message(body: dict[str, Any]) -> ExecutorMessage:
    return ExecutorMessage(
        proto.unwrap(body.get("framework_id")),
        proto.unwrap(body.get("agent_id")),
        proto.unwrap(body.get("executor_id")),
        body.get("data", ""),
    )


def parse_executor_exited(body: dict[str, Any]) -> ExecutorExited:
    framework = proto.unwrap(body.get("framework_id"))
    agent_id = proto.unwrap(body.get("agent_id"))
    executor_id = proto.unwrap(body.get("executor_id"))
    if not framework or not agent_id or not executor_id:
        raise InvalidCall("Expecting 'framework_id', 'agent_id' and 'executor_id'")
    status = body.get("status")
    return ExecutorExited(framework, agent_id, executor_id, status if isinstance(status, int) else None)
