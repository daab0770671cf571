"""The master's edge: v1 scheduler calls and agent messages parsed into typed records, and the 400s (with Mesos'
messages) that malformed ones get, both from the parser and through the HTTP API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mesolite.core.resources import Resources
from mesolite.core.store import MemoryStore
from mesolite.master import calls
from mesolite.master.api import create_app, status_code
from mesolite.master.errors import InvalidCall, MasterError, NotSubscribed, UnknownFramework, UnsupportedCall
from mesolite.master.state import Master, MasterConfig

FID = "f-1"


class NoLink:
    def send(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def task_info(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "task_id": {"value": "t"},
        "agent_id": {"value": "a"},
        "command": {"value": "true"},
        "resources": Resources.parse("cpus:1").to_v1(),
        **overrides,
    }


def parse(kind: str, body: Any = None, **call: Any) -> calls.SchedulerCall:
    raw = {"type": kind, "framework_id": {"value": FID}, **call}
    if body is not None:
        raw[kind.lower()] = body
    return calls.parse_call(calls.call_type(raw), raw, calls.framework_id(raw))


# ---------------------------------------------------------------------------------------------------- envelope


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        ({}, InvalidCall, "Failed to validate scheduler::Call: Expecting 'type' to be present"),
        (
            {"type": "FROBNICATE"},
            InvalidCall,
            "Failed to convert JSON into Call protobuf: Failed to find enum for 'FROBNICATE'",
        ),
        (
            {"type": ["KILL"]},
            InvalidCall,
            "Failed to convert JSON into Call protobuf: Failed to find enum for '['KILL']'",
        ),
        ({"type": "UNKNOWN"}, UnsupportedCall, "Received an unexpected UNKNOWN call"),
    ],
)
def test_call_type_errors(raw: dict[str, Any], error: type[MasterError], message: str) -> None:
    with pytest.raises(error) as raised:
        calls.call_type(raw)
    assert raised.value.message == message


def test_every_call_but_subscribe_names_its_framework() -> None:
    assert calls.framework_id({"framework_id": {"value": "x"}}) == "x"
    with pytest.raises(InvalidCall, match="Expecting 'framework_id' to be present"):
        calls.framework_id({"framework_id": {"value": ""}})


def test_error_kinds_map_to_mesos_status_codes() -> None:
    assert status_code(InvalidCall("x")) == 400
    assert status_code(UnknownFramework()) == 400
    assert status_code(NotSubscribed()) == 403
    assert status_code(UnsupportedCall("x")) == 501
    assert UnknownFramework().message == "Framework cannot be found"
    assert NotSubscribed().message == "Framework is not subscribed"


# ---------------------------------------------------------------------------------------------------- SUBSCRIBE


def test_subscribe_unwraps_ids_and_strips_the_info_id() -> None:
    call = calls.parse_subscribe(
        {
            "type": "SUBSCRIBE",
            "framework_id": {"value": FID},
            "subscribe": {
                "framework_info": {"user": "u", "name": "n", "id": {"value": FID}, "failover_timeout": "7"},
                "suppressed_roles": ["a", 3],
            },
        }
    )
    assert call == calls.Subscribe(
        framework_id=FID,
        framework_info={"user": "u", "name": "n", "failover_timeout": "7"},
        failover_timeout=7.0,
        suppressed_roles=frozenset({"a"}),
    )
    new = calls.parse_subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}})
    assert new.framework_id is None and new.failover_timeout == 0.0


@pytest.mark.parametrize(
    ("subscribe", "message"),
    [
        (None, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present"),
        ({"framework_info": "x"}, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present"),
        ({"framework_info": {"name": "no user"}}, "Failed to convert JSON into Call protobuf: Missing required fields"),
        (
            {"framework_info": {"user": "u", "name": "n", "id": {"value": "other"}}},
            "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        (
            {"framework_info": {"user": "u", "name": "n", "failover_timeout": "soon"}},
            "Failed to convert JSON into Call protobuf: bad 'failover_timeout'",
        ),
    ],
)
def test_bad_subscribe_calls(subscribe: Any, message: str) -> None:
    with pytest.raises(InvalidCall) as raised:
        calls.parse_subscribe({"type": "SUBSCRIBE", "framework_id": {"value": FID}, "subscribe": subscribe})
    assert raised.value.message == message


# ---------------------------------------------------------------------------------------------------- other calls


def test_accept_is_typed() -> None:
    group = {"executor_id": {"value": "e"}, "type": "DEFAULT"}
    custom = {"executor_id": {"value": "c"}, "command": {"value": "run-executor"}}
    call = parse(
        "ACCEPT",
        {
            "offer_ids": [{"value": "o1"}, "o2", 5],
            "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task_info(), task_info(executor=custom)]}},
                {"type": "RESERVE", "reserve": {}},
                {"type": "LAUNCH_GROUP", "launch_group": {"executor": group, "task_group": {"tasks": [task_info()]}}},
            ],
            "filters": {"refuse_seconds": 1e12},
        },
    )
    assert isinstance(call, calls.Accept)
    assert call.offer_ids == ("o1", "o2", None)
    assert [launch.group_executor for launch in call.launches] == [None, group]
    assert call.tasks == [
        calls.TaskSpec("t", "a", "t", task_info()),
        calls.TaskSpec("t", "a", "t", task_info(executor=custom), custom, "c"),
        calls.TaskSpec("t", "a", "t", task_info(), group, "e"),
    ]
    assert call.refuse_seconds == calls.MAX_REFUSE_SECONDS


def test_refuse_seconds_default_and_clamp() -> None:
    assert calls.refuse_seconds(None) == calls.DEFAULT_REFUSE_SECONDS
    assert calls.refuse_seconds({"refuse_seconds": "x"}) == calls.DEFAULT_REFUSE_SECONDS
    assert calls.refuse_seconds({"refuse_seconds": -3}) == 0.0
    assert calls.refuse_seconds({"refuse_seconds": 30}) == 30.0


def test_the_other_calls_are_typed() -> None:
    assert parse("TEARDOWN") == calls.Teardown()
    assert parse("DECLINE", {"offer_ids": [{"value": "o"}, {}]}) == calls.Decline(("o",))
    assert parse("REVIVE") == calls.Revive(frozenset())
    assert parse("REVIVE", {"roles": ["a", "b"]}) == calls.Revive(frozenset({"a", "b"}))
    assert parse("SUPPRESS", {"role": "c", "roles": ["a"]}) == calls.Suppress(frozenset({"c"}))
    assert parse("KILL", {"task_id": {"value": "t"}, "kill_policy": {"grace_period": {}}}) == calls.Kill(
        "t", None, {"grace_period": {}}
    )
    assert parse("SHUTDOWN", {"agent_id": {"value": "a"}}) == calls.Shutdown("a", None)
    assert parse(
        "ACKNOWLEDGE", {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "dQ=="}
    ) == calls.Acknowledge("a", "t", "dQ==")
    assert parse("RECONCILE") == calls.Reconcile(None)
    assert parse("RECONCILE", {"tasks": []}) == calls.Reconcile(None)
    assert parse(
        "RECONCILE", {"tasks": [{"task_id": {"value": "t"}, "agent_id": {"value": "a"}}, {"agent_id": {}}, 3]}
    ) == calls.Reconcile((calls.ReconcileTask("t", "a"),))
    assert parse("MESSAGE", {"executor_id": {"value": "e"}, "data": "ZA=="}) == calls.Message(None, "e", "ZA==")
    assert parse(
        "UPDATE_FRAMEWORK", {"framework_info": {"user": "u", "name": "n", "id": {"value": FID}}}
    ) == calls.UpdateFramework({"user": "u", "name": "n"}, None)
    assert parse("UPDATE_FRAMEWORK", {"framework_info": {}, "suppressed_roles": ["r"]}) == calls.UpdateFramework(
        {}, frozenset({"r"})
    )
    assert parse("REQUEST", {"requests": []}) == calls.Ignored("REQUEST")


PARSE = "Failed to convert JSON into Call protobuf"
VALIDATE = "Failed to validate scheduler::Call"


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("KILL", [1], f"{PARSE}: 'kill' must be an object"),
        ("REVIVE", "all", f"{PARSE}: 'revive' must be an object"),
        ("ACCEPT", None, f"{VALIDATE}: Expecting 'accept' to be present"),
        ("DECLINE", None, f"{VALIDATE}: Expecting 'decline' to be present"),
        ("UPDATE_FRAMEWORK", None, f"{VALIDATE}: Expecting 'update_framework' to be present"),
        ("ACCEPT", {"operations": [{"launch": {}}]}, f"{PARSE}: each operation needs a 'type'"),
        ("ACCEPT", {"operations": [{"type": "FOO"}]}, f"{PARSE}: Failed to find enum for 'FOO'"),
        (
            "ACCEPT",
            {"operations": [{"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": []}}}]},
            f"{PARSE}: Missing required fields: launch_group.executor",
        ),
        (
            "ACCEPT",
            {"operations": [{"type": "LAUNCH", "launch": {}}]},
            f"{PARSE}: Missing required fields: the launch operation has no task list",
        ),
        (
            "ACCEPT",
            {"operations": [{"type": "LAUNCH", "launch": {"task_infos": ["t"]}}]},
            f"{PARSE}: a TaskInfo must be an object",
        ),
        (
            "ACCEPT",
            {"operations": [{"type": "LAUNCH", "launch": {"task_infos": [{"task_id": {"value": "t"}}]}}]},
            f"{PARSE}: Missing required fields: name, agent_id",
        ),
        (
            "ACCEPT",
            {"operations": [{"type": "LAUNCH", "launch": {"task_infos": [task_info(task_id={"value": ""})]}}]},
            f"{PARSE}: Missing required fields: task_id.value, agent_id.value",
        ),
        (
            "ACCEPT",
            {"operations": [{"type": "LAUNCH", "launch": {"task_infos": [task_info(resources={})]}}]},
            f"{PARSE}: TaskInfo.resources must be a list",
        ),
        ("KILL", {"agent_id": {"value": "a"}}, f"{VALIDATE}: Expecting 'kill.task_id' to be present"),
        (
            "ACKNOWLEDGE",
            {"agent_id": {"value": "a"}, "task_id": {"value": "t"}},
            f"{PARSE}: Missing required fields (agent_id, task_id, uuid)",
        ),
        ("MESSAGE", {"executor_id": {"value": "e"}}, f"{PARSE}: Missing required fields"),
        ("MESSAGE", {"data": "ZA=="}, f"{PARSE}: Missing required fields"),
        ("UPDATE_FRAMEWORK", {"suppressed_roles": []}, f"{VALIDATE}: Expecting 'update_framework.framework_info'"),
        (
            "UPDATE_FRAMEWORK",
            {"framework_info": {"id": {"value": "another"}}},
            f"{VALIDATE}: framework id cannot be changed",
        ),
    ],
)
def test_bad_calls(kind: str, body: Any, message: str) -> None:
    with pytest.raises(InvalidCall) as raised:
        parse(kind, body)
    assert raised.value.message == message


# ---------------------------------------------------------------------------------------------------- agent messages


def test_agent_message_bodies_are_json_objects() -> None:
    assert calls.agent_message(b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidCall, match="^Failed to parse body into JSON: "):
        calls.agent_message(b"{nope")
    with pytest.raises(InvalidCall, match="^Failed to parse body into JSON: "):
        calls.agent_message(b"")
    with pytest.raises(InvalidCall, match="^Expecting a JSON object$"):
        calls.agent_message(b"[1]")


def test_registration_is_typed() -> None:
    registration = calls.parse_registration(
        {
            "agent_info": {
                "id": {"value": "S1"},
                "hostname": "h",
                "ip": "10.0.0.1",
                "port": "5051",
                "resources": Resources.parse("cpus:2;mem:64").to_v1(),
            },
            "frameworks": [{"id": {"value": "f"}, "name": "n", "user": "u"}, {"name": "no id"}, 1],
            "tasks": [
                {
                    "framework_id": {"value": "f"},
                    "task_id": {"value": "t"},
                    "state": "TASK_RUNNING",
                    "resources": [{"name": "cpus", "type": "SCALAR"}],  # unreadable: counted as nothing
                    "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}],
                },
                {"framework_id": {"value": "f"}},
                "junk",
            ],
        }
    )
    assert (registration.agent_id, registration.hostname, registration.ip, registration.port) == (
        "S1",
        "h",
        "10.0.0.1",
        5051,
    )
    assert registration.resources == Resources.parse("cpus:2;mem:64")
    assert registration.frameworks == {"f": {"name": "n", "user": "u"}}
    [task] = registration.tasks
    assert (task.framework_id, task.task_id, task.executor_id, task.name) == ("f", "t", "t", "t")
    assert (task.state, task.role, task.resources) == ("TASK_RUNNING", None, Resources())
    assert task.statuses == ({"state": "TASK_RUNNING", "timestamp": 1.0},)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Expecting 'agent_info' in the registration"),
        ({"agent_info": {"hostname": "h", "ip": "i"}}, "Invalid agent registration: 'port'"),
        ({"agent_info": {"hostname": "h", "ip": "i", "port": "x"}}, "Invalid agent registration: invalid literal"),
    ],
)
def test_bad_registrations(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCall) as raised:
        calls.parse_registration(body)
    assert raised.value.message.startswith(message)


def test_status_updates_and_executor_reports() -> None:
    status = {"task_id": {"value": "t"}, "state": "TASK_RUNNING", "uuid": "dQ=="}
    update = calls.parse_status_update({"framework_id": {"value": "f"}, "agent_id": {"value": "a"}, "status": status})
    assert (update.framework_id, update.agent_id, update.task_id, update.uuid) == ("f", "a", "t", "dQ==")
    assert update.status is status
    with pytest.raises(InvalidCall, match="^Expecting 'framework_id' and 'status' in the status update$"):
        calls.parse_status_update({"status": status})
    with pytest.raises(InvalidCall, match="^Expecting 'framework_id' and 'status' in the status update$"):
        calls.parse_status_update({"framework_id": {"value": "f"}, "status": "running"})
    with pytest.raises(InvalidCall, match=r"^Expecting 'status.task_id' in the status update$"):
        calls.parse_status_update({"framework_id": {"value": "f"}, "status": {"state": "TASK_RUNNING"}})

    ids = {"framework_id": {"value": "f"}, "agent_id": {"value": "a"}, "executor_id": {"value": "e"}}
    assert calls.parse_executor_exited({**ids, "status": 9}) == calls.ExecutorExited("f", "a", "e", 9)
    assert calls.parse_executor_exited({**ids, "status": "9"}) == calls.ExecutorExited("f", "a", "e", None)
    with pytest.raises(InvalidCall, match="^Expecting 'framework_id', 'agent_id' and 'executor_id'$"):
        calls.parse_executor_exited({"framework_id": {"value": "f"}, "agent_id": {"value": "a"}})
    assert calls.parse_executor_message({**ids, "data": "ZA=="}) == calls.ExecutorMessage("f", "a", "e", "ZA==")
    assert calls.parse_heartbeat({"agent_id": {"value": "a"}}) == "a"


# ---------------------------------------------------------------------------------------------------- through HTTP


@pytest.fixture()
def client() -> Any:
    master = Master(MasterConfig(), MemoryStore(), NoLink())
    return create_app(master.config, master).test_client()


def post(client: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    return response.status_code, response.get_data(as_text=True)


def test_scheduler_endpoint_answers_bad_calls_as_mesos(client: Any) -> None:
    url = "/api/v1/scheduler"
    subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}
    response = client.post(url, json=subscribe, buffered=False)
    stream_id = response.headers["Mesos-Stream-Id"]
    first = next(response.response)
    framework_id = json.loads(first.split(b"\n", 1)[1])["subscribed"]["framework_id"]
    response.close()  # the stream ends: the framework is no longer subscribed
    stream = {"Mesos-Stream-Id": stream_id}
    assert post(client, url, {"type": "REVIVE", "framework_id": framework_id}, stream) == (
        403,
        "Framework is not subscribed",
    )
    assert post(client, url, {"type": "REVIVE", "framework_id": {"value": "nope"}}, stream) == (
        400,
        "Framework cannot be found",
    )
    assert post(client, url, {"type": "UNKNOWN"}) == (501, "Received an unexpected UNKNOWN call")
    assert post(client, url, {"type": "REVIVE"}) == (
        400,
        "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
    )
    assert post(client, url, {"type": "SUBSCRIBE"}) == (
        400,
        "Failed to validate scheduler::Call: Expecting 'subscribe' to be present",
    )


def test_agent_endpoints_answer_bad_bodies_with_400(client: Any) -> None:
    assert post(client, "/master/internal/register", b"{nope")[0] == 400
    assert post(client, "/master/internal/register", [1]) == (400, "Expecting a JSON object")
    assert post(client, "/master/internal/register", {}) == (400, "Expecting 'agent_info' in the registration")
    assert post(client, "/master/internal/status", {"status": {}}) == (
        400,
        "Expecting 'framework_id' and 'status' in the status update",
    )
    assert post(client, "/master/internal/executor_exited", {}) == (
        400,
        "Expecting 'framework_id', 'agent_id' and 'executor_id'",
    )
    assert post(client, "/master/internal/heartbeat", {"agent_id": {"value": "who"}}) == (
        404,
        "Unknown agent: re-register",
    )
    assert post(client, "/master/teardown?frameworkId=nope", b"") == (400, "No framework found with specified ID: nope")
