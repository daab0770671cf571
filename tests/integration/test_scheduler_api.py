"""The v1 scheduler API over HTTP, as any Mesos scheduler drives it: stream framing, calls, and bad input."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mesolite.core.protocol import RecordIODecoder
from mesolite.core.scheduler_client import SchedulerClient, SchedulerError
from tests.cluster import Cluster, wait_until

FRAMEWORK = {"user": "root", "name": "api-test", "failover_timeout": 60.0}


def scalar(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def task(task_id: str, offer: dict[str, Any], command: str = "sleep 1000", cpus: float = 0.1, **extra: Any) -> dict:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "command": {"value": command},
        "resources": [scalar("cpus", cpus), scalar("mem", 32)],
        **extra,
    }


@pytest.fixture
def client(running: Cluster) -> Iterator[SchedulerClient]:
    assert running.master is not None
    scheduler = SchedulerClient(running.master.url, FRAMEWORK)
    scheduler.subscribe()
    try:
        yield scheduler
    finally:
        scheduler.close()


def next_offer(client: SchedulerClient, timeout: float = 20.0) -> dict[str, Any]:
    return client.next_event("OFFERS", timeout)["offers"]["offers"][0]


def update_for(client: SchedulerClient, task_id: str, state: str | None = None, timeout: float = 15.0) -> dict:
    """The first update of ``task_id`` (in ``state``), acknowledging every update seen on the way, as a scheduler
    must: an unacknowledged update holds back the rest of its task's stream."""
    seen: list[dict[str, Any]] = client.__dict__.setdefault("seen_updates", [])

    def matches(status: dict[str, Any]) -> bool:
        return status["task_id"]["value"] == task_id and (state is None or status["state"] == state)

    for status in seen:
        if matches(status):
            seen.remove(status)
            return status
    deadline = time.monotonic() + timeout
    while True:
        event = client.next_event("UPDATE", max(0.01, deadline - time.monotonic()))
        status = event["update"]["status"]
        client.acknowledge(status)
        if matches(status):
            return status
        seen.append(status)


def post(master_url: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None):
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(f"{master_url}/api/v1/scheduler", data=data, headers=hdrs, timeout=10, stream=True)


def test_subscribe_stream_is_chunked_recordio_with_nested_offers(running: Cluster) -> None:
    assert running.master is not None
    response = post(
        running.master.url,
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": FRAMEWORK}},
        {"Accept": "application/json"},
    )
    try:
        assert response.status_code == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["Content-Type"].startswith("application/json")
        stream_id = response.headers["Mesos-Stream-Id"]
        assert 0 < len(stream_id) <= 128
        decoder = RecordIODecoder()
        events: list[dict[str, Any]] = []
        for chunk in response.raw.stream(1024, decode_content=False):
            events.extend(decoder.feed(chunk))
            if any(e["type"] == "OFFERS" for e in events):
                break
        assert events[0]["type"] == "SUBSCRIBED"
        subscribed = events[0]["subscribed"]
        assert subscribed["heartbeat_interval_seconds"] == 1.0
        assert subscribed["master_info"]["address"]["port"] == running.master.port
        assert events[1]["type"] == "HEARTBEAT"
        offers = next(e for e in events if e["type"] == "OFFERS")["offers"]["offers"]
        offer = offers[0]
        assert offer["framework_id"] == subscribed["framework_id"]
        assert offer["hostname"] == "127.0.0.1"
        assert offer["allocation_info"] == {"role": "*"}
        names = {r["name"]: r for r in offer["resources"]}
        assert names["cpus"] == {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": 4.0},
            "role": "*",
            "allocation_info": {"role": "*"},
        }
        assert names["ports"]["ranges"] == {"range": [{"begin": 31000, "end": 31100}]}
    finally:
        response.close()


def test_status_codes_for_bad_requests(client: SchedulerClient, running: Cluster) -> None:
    assert running.master is not None
    url = running.master.url
    fid = {"value": client.framework_id}
    stream = {"Mesos-Stream-Id": client.stream_id or ""}
    revive = {"type": "REVIVE", "framework_id": fid}

    no_type = requests.post(f"{url}/api/v1/scheduler", data=b"{}", timeout=5)
    assert no_type.status_code == 400 and no_type.text == "Expecting 'Content-Type' to be present"
    assert post(url, revive, {**stream, "Content-Type": "text/plain"}).status_code == 415
    assert post(url, None, stream, raw=b"{not json").status_code == 400
    assert "Failed to parse body into JSON" in post(url, None, stream, raw=b"{not json").text
    assert post(url, [1, 2], stream).status_code == 400
    unknown = post(url, {"type": "FROBNICATE", "framework_id": fid}, stream)
    assert unknown.status_code == 400 and "FROBNICATE" in unknown.text
    assert post(url, {"type": "UNKNOWN", "framework_id": fid}, stream).status_code == 501
    assert requests.get(f"{url}/api/v1/scheduler", timeout=5).status_code == 405
    missing_stream = post(url, revive)
    assert missing_stream.status_code == 400
    assert missing_stream.text == "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
    assert post(url, revive, {"Mesos-Stream-Id": "not-the-stream"}).status_code == 400
    assert post(url, {"type": "REVIVE", "framework_id": {"value": "nope"}}, stream).text == "Framework cannot be found"
    assert post(url, {"type": "REVIVE"}, stream).status_code == 400
    subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": FRAMEWORK}}
    assert post(url, subscribe, {"Accept": "application/x-protobuf"}).status_code == 406
    assert post(url, subscribe, {"Accept": "application/json", **stream}).status_code == 400
    missing_fields = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "no user"}}}
    assert post(url, missing_fields, {"Accept": "application/json"}).status_code == 400
    assert post(url, revive, stream).status_code == 202
    accept_without_name = {
        "type": "ACCEPT",
        "framework_id": fid,
        "accept": {
            "offer_ids": [{"value": "x"}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{"task_id": {"value": "t"}}]}}],
        },
    }
    bad_accept = post(url, accept_without_name, stream)
    assert bad_accept.status_code == 400 and "Missing required fields" in bad_accept.text
    # After all of that the master still serves, and the subscription still works.
    assert running.master.get("/master/health").status_code == 200
    assert post(url, revive, stream).status_code == 202


def test_a_closed_subscription_gets_403_until_it_resubscribes(running: Cluster) -> None:
    assert running.master is not None
    client = SchedulerClient(running.master.url, FRAMEWORK)
    framework_id = client.subscribe()
    old_stream = client.stream_id
    client.disconnect()
    wait_until(
        lambda: not running.master.get("/master/frameworks").json()["frameworks"][0]["connected"],
        what="the master to notice the closed stream",
    )
    with pytest.raises(SchedulerError) as denied:
        client.call("REVIVE")
    assert denied.value.status == 403
    # Re-subscribing with the same id within failover_timeout keeps the framework, under a new stream.
    assert client.subscribe() == framework_id
    assert client.stream_id != old_stream
    assert client.call("REVIVE").status_code == 202
    frameworks = running.master.get("/master/frameworks").json()["frameworks"]
    assert [(f["id"], f["connected"], f["active"]) for f in frameworks] == [(framework_id, True, True)]
    client.close()


def test_launch_command_task_to_finished_with_exit_code(client: SchedulerClient, running: Cluster) -> None:
    offer = next_offer(client)
    client.launch(offer, [task("ok", offer, "echo out; echo err >&2"), task("bad", offer, "exit 3")])
    assert update_for(client, "ok", "TASK_FINISHED")["message"] == "Command exited with status 0"
    failed = update_for(client, "bad", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    assert failed["source"] == "SOURCE_EXECUTOR" and failed["agent_id"] == offer["agent_id"]
    agent = running.agents[0]
    stdout = agent.get(
        "/files/read",
        params={"path": f"/frameworks/{client.framework_id}/executors/ok/runs/latest/stdout", "offset": 0},
    )
    assert stdout.json()["data"] == "out\n"
    stderr = agent.get(
        "/files/read",
        params={"path": f"/frameworks/{client.framework_id}/executors/ok/runs/latest/stderr", "offset": 0},
    )
    assert stderr.json()["data"] == "err\n"


def test_task_environment_shell_false_and_uris(client: SchedulerClient, running: Cluster, tmp_path) -> None:
    payload = tmp_path / "payload.txt"
    payload.write_text("fetched!\n")
    offer = next_offer(client)
    env_task = task(
        "env",
        offer,
        'echo $MESOS_TASK_ID $MESOS_FRAMEWORK_ID $GREETING; cat payload.txt; test "$MESOS_SANDBOX" = "$PWD"',
    )
    env_task["command"]["environment"] = {"variables": [{"name": "GREETING", "value": "hi"}]}
    env_task["command"]["uris"] = [{"value": str(payload), "extract": False}]
    argv_task = task("argv", offer)
    argv_task["command"] = {"shell": False, "value": "/bin/echo", "arguments": ["echo", "a b", "$HOME"]}
    client.launch(offer, [env_task, argv_task])
    update_for(client, "env", "TASK_FINISHED")
    update_for(client, "argv", "TASK_FINISHED")
    agent = running.agents[0]
    base = f"/frameworks/{client.framework_id}/executors"
    env_out = agent.get("/files/read", params={"path": f"{base}/env/runs/latest/stdout", "offset": 0}).json()["data"]
    assert env_out == f"env {client.framework_id} hi\nfetched!\n"
    argv_out = agent.get("/files/read", params={"path": f"{base}/argv/runs/latest/stdout", "offset": 0}).json()["data"]
    assert argv_out == "a b $HOME\n"


def test_invalid_tasks_get_task_error_and_invalid_offers_task_lost(client: SchedulerClient, running: Cluster) -> None:
    offer = next_offer(client)
    too_big = task("too-big", offer, cpus=64.0)
    no_resources = {**task("empty", offer), "resources": []}
    both = {**task("both", offer), "executor": {"executor_id": {"value": "e"}, "command": {"value": "true"}}}
    wrong_agent = {**task("wrong-agent", offer), "agent_id": {"value": "no-such-agent"}}
    slash = task("a/b", offer)
    garbled = {**task("garbled", offer), "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": "lots"}}]}
    client.launch(offer, [too_big, no_resources, both, wrong_agent, slash, garbled, task("fine", offer)])
    names = ("too-big", "empty", "both", "wrong-agent", "a/b", "garbled")
    errors = {name: update_for(client, name) for name in names}
    assert {s["state"] for s in errors.values()} == {"TASK_ERROR"}
    assert all(s["reason"] == "REASON_TASK_INVALID" and s["source"] == "SOURCE_MASTER" for s in errors.values())
    assert "more than available" in errors["too-big"]["message"]
    assert errors["empty"]["message"] == "Task uses no resources"
    assert "(but not both)" in errors["both"]["message"]
    assert "invalid agent" in errors["wrong-agent"]["message"]
    assert "invalid resources" in errors["garbled"]["message"] and "lots" in errors["garbled"]["message"]
    update_for(client, "fine", "TASK_RUNNING")

    # The offer was used: accepting it again is an invalid offer, answered TASK_LOST.
    client.launch(offer, [task("late", offer)])
    lost = update_for(client, "late")
    assert lost["state"] == "TASK_LOST" and lost["reason"] == "REASON_INVALID_OFFERS"
    assert running.master is not None
    assert running.master.get("/master/health").status_code == 200


def test_partition_aware_frameworks_see_dropped_and_gone(running: Cluster) -> None:
    assert running.master is not None
    aware = SchedulerClient(
        running.master.url, {**FRAMEWORK, "name": "aware", "capabilities": [{"type": "PARTITION_AWARE"}]}
    )
    aware.subscribe()
    try:
        offer = next_offer(aware)
        aware.launch(offer, [task("one", offer)])
        update_for(aware, "one", "TASK_RUNNING")
        aware.launch(offer, [task("stale", offer)])
        assert update_for(aware, "stale")["state"] == "TASK_DROPPED"
        aware.reconcile([("ghost", offer["agent_id"]["value"]), ("one", None)])
        ghost = update_for(aware, "ghost")
        assert (ghost["state"], ghost["reason"]) == ("TASK_GONE", "REASON_RECONCILIATION")
        assert update_for(aware, "one", "TASK_RUNNING")["reason"] == "REASON_RECONCILIATION"
        aware.reconcile([("phantom", "no-such-agent")])
        assert update_for(aware, "phantom")["state"] == "TASK_UNKNOWN"
    finally:
        aware.close()


def test_kill_without_agent_id_and_kill_of_unknown_task(client: SchedulerClient) -> None:
    offer = next_offer(client)
    client.launch(offer, [task("victim", offer, "trap '' TERM; sleep 1000")])
    update_for(client, "victim", "TASK_RUNNING")
    client.call("KILL", {"task_id": {"value": "victim"}, "kill_policy": {"grace_period": {"nanoseconds": 300_000_000}}})
    killed = update_for(client, "victim", "TASK_KILLED", timeout=10)
    assert killed["message"] == "Command terminated with signal Killed"
    client.kill("never-launched")
    unknown = update_for(client, "never-launched")
    assert (unknown["state"], unknown["reason"]) == ("TASK_LOST", "REASON_RECONCILIATION")


def test_decline_filter_revive_and_suppress(client: SchedulerClient) -> None:
    offer = next_offer(client)
    client.decline([offer["id"]["value"]], refuse_seconds=3600)
    with pytest.raises(TimeoutError):
        client.next_event("OFFERS", timeout=1.5)
    client.call("REVIVE", {"roles": ["*"]})
    offer = next_offer(client, timeout=5)
    client.call("SUPPRESS", {"roles": ["*"]})
    client.decline([offer["id"]["value"]], refuse_seconds=0)
    with pytest.raises(TimeoutError):
        client.next_event("OFFERS", timeout=1.5)
    client.call("REVIVE")
    next_offer(client, timeout=5)


def test_used_resources_return_when_a_task_ends(client: SchedulerClient, running: Cluster) -> None:
    assert running.master is not None
    offer = next_offer(client)
    client.launch(offer, [task("short", offer, "sleep 0.5", cpus=1.5)])
    update_for(client, "short", "TASK_RUNNING")
    slave = running.master.get("/master/slaves").json()["slaves"][0]
    assert slave["used_resources"]["cpus"] == 1.5
    update_for(client, "short", "TASK_FINISHED")
    wait_until(lambda: running.master.get("/master/slaves").json()["slaves"][0]["used_resources"]["cpus"] == 0.0)
    offers = client.next_event("OFFERS", timeout=10)["offers"]["offers"]
    cpus = next(r for r in offers[0]["resources"] if r["name"] == "cpus")
    assert cpus["scalar"]["value"] == 4.0


def test_teardown_kills_tasks_and_completes_framework(client: SchedulerClient, running: Cluster) -> None:
    assert running.master is not None
    offer = next_offer(client)
    client.launch(offer, [task("t1", offer), task("t2", offer)])
    update_for(client, "t1", "TASK_RUNNING")
    update_for(client, "t2", "TASK_RUNNING")
    client.call("TEARDOWN")
    wait_until(lambda: running.master.get("/master/frameworks").json()["completed_frameworks"])
    agent = running.agents[0]
    wait_until(lambda: not agent.get("/state").json()["frameworks"], what="the agent to kill the tasks")
    completed = agent.get("/state").json()["completed_frameworks"][0]["completed_executors"]
    assert sorted(t["state"] for e in completed for t in e["completed_tasks"]) == ["TASK_KILLED", "TASK_KILLED"]
    # A torn-down framework cannot come back under its id.
    again = SchedulerClient(running.master.url, {**FRAMEWORK, "id": {"value": client.framework_id}})
    with pytest.raises(SchedulerError):
        again.subscribe(timeout=3)
    assert again.next_event("ERROR", timeout=1)["error"]["message"] == "Framework has been removed"


def test_launch_group_shares_an_executor_and_fails_together(client: SchedulerClient, running: Cluster) -> None:
    offer = next_offer(client)
    executor = {
        "type": "DEFAULT",
        "executor_id": {"value": "group-exec"},
        "framework_id": {"value": client.framework_id},
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    }
    members = [task("steady", offer, "sleep 1000"), task("crasher", offer, "sleep 0.5; exit 7")]
    operation = {"type": "LAUNCH_GROUP", "launch_group": {"executor": executor, "task_group": {"tasks": members}}}
    client.accept([offer["id"]["value"]], [operation])
    assert update_for(client, "steady", "TASK_RUNNING")["executor_id"] == {"value": "group-exec"}
    assert update_for(client, "crasher", "TASK_FAILED")["message"] == "Command exited with status 7"
    assert update_for(client, "steady", "TASK_KILLED")["reason"] == "REASON_TASK_GROUP_INVALID"
    executors = running.agents[0].get("/state").json()["completed_frameworks"][0]["completed_executors"]
    [group] = [e for e in executors if e["id"] == "group-exec"]
    assert group["type"] == "DEFAULT" and sorted(t["id"] for t in group["completed_tasks"]) == ["crasher", "steady"]
    assert os.path.isdir(os.path.join(group["directory"], "tasks", "steady"))


def test_a_custom_executor_that_cannot_start_fails_its_tasks(client: SchedulerClient) -> None:
    offer = next_offer(client)
    custom = task("custom", offer)
    del custom["command"]
    custom["executor"] = {"executor_id": {"value": "my-exec"}, "command": {"value": "./executor"}}
    client.launch(offer, [custom])
    failed = update_for(client, "custom", "TASK_FAILED")
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["message"] == "Executor terminated: Command exited with status 127"


def test_tasks_run_as_the_framework_user_in_a_sandbox_they_own(running: Cluster) -> None:
    assert running.master is not None
    nobody = SchedulerClient(running.master.url, {**FRAMEWORK, "user": "nobody", "name": "as-nobody"})
    nobody.subscribe()
    try:
        offer = next_offer(nobody)
        nobody.launch(offer, [task("owned", offer, "id -un; echo written > made-by-task; cat made-by-task")])
        update_for(nobody, "owned", "TASK_FINISHED")
        path = f"/frameworks/{nobody.framework_id}/executors/owned/runs/latest/stdout"
        out = running.agents[0].get("/files/read", params={"path": path, "offset": 0}).json()["data"]
        assert out == "nobody\nwritten\n"
    finally:
        nobody.close()
