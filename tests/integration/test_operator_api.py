"""The master's v1 operator API (``POST /api/v1``) on a real master and agents: Mesos' envelopes, status codes and
400 texts, the SUBSCRIBE event stream, drain / deactivate / gone, and what survives a master restart."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests

from mesolite.core.protocol import RecordIODecoder
from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, ServiceProcess, wait_until
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for

JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def call(master: ServiceProcess, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return requests.post(f"{master.url}/api/v1", data=data, headers=headers or JSON, timeout=10)


def get(master: ServiceProcess, kind: str, **sub: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, **sub}
    response = call(master, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == kind
    return dict(answer[kind.lower()])


class EventStream:
    """An operator SUBSCRIBE stream read on a thread, events kept with the time they arrived."""

    def __init__(self, master: ServiceProcess) -> None:
        self.response = requests.post(
            f"{master.url}/api/v1", data=json.dumps({"type": "SUBSCRIBE"}), headers=JSON, stream=True, timeout=30
        )
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"] == "application/json"
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder = RecordIODecoder()
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                for event in decoder.feed(chunk):
                    self.events.append((time.monotonic(), event))
        except (requests.RequestException, ValueError, AttributeError):
            return

    def find(self, predicate: Any, timeout: float = 15.0) -> tuple[float, dict[str, Any]]:
        return wait_until(
            lambda: next(((t, e) for t, e in list(self.events) if predicate(e)), None),
            timeout=timeout,
            what="an operator event",
        )

    def close(self) -> None:
        self.response.close()


def test_calls_and_mesos_errors(running: Cluster) -> None:
    master = running.master
    assert master is not None
    assert get(master, "GET_HEALTH") == {"healthy": True}
    assert get(master, "GET_VERSION")["version_info"]["version"] == "1.11.0"
    assert {"name": "allocation_interval", "value": "0.2secs"} in get(master, "GET_FLAGS")["flags"]
    metrics = {m["name"]: m["value"] for m in get(master, "GET_METRICS", get_metrics={})["metrics"]}
    assert metrics["master/slaves_active"] == 1.0
    assert get(master, "GET_MASTER")["master_info"]["address"]["port"] == master.port
    [agent] = get(master, "GET_AGENTS")["agents"]
    assert agent["active"] is True and agent["deactivated"] is False
    assert agent["pid"].startswith("slave(1)@127.0.0.1:") and "nanoseconds" in agent["registered_time"]
    assert {"type": "AGENT_DRAINING"} in agent["capabilities"]
    state = get(master, "GET_STATE")
    assert set(state) == {"get_tasks", "get_executors", "get_frameworks", "get_agents"}
    assert get(master, "GET_LOGGING_LEVEL") == {"level": 0}
    assert (
        call(
            master, {"type": "SET_LOGGING_LEVEL", "set_logging_level": {"level": 1, "duration": {"nanoseconds": 10**9}}}
        ).status_code
        == 200
    )
    assert get(master, "GET_LOGGING_LEVEL") == {"level": 1}
    assert (
        call(
            master, {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "ads", "weight": 2.5}]}}
        ).status_code
        == 200
    )
    assert get(master, "GET_WEIGHTS")["weight_infos"] == [{"role": "ads", "weight": 2.5}]
    assert call(master, {"type": "LIST_FILES", "list_files": {"path": "/master/log"}}).status_code == 404
    also = requests.post(
        f"{master.url}/master/api/v1", data=json.dumps({"type": "GET_HEALTH"}), headers=JSON, timeout=5
    )
    assert also.json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}

    # Mesos' order of checks and its texts.
    wrong_method = requests.get(f"{master.url}/api/v1", timeout=5)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert wrong_method.text == "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."
    no_type = requests.post(f"{master.url}/api/v1", data="{}", timeout=5)
    assert (no_type.status_code, no_type.text) == (400, "Expecting 'Content-Type' to be present")
    charset = call(master, {"type": "GET_HEALTH"}, {"Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 415
    assert call(master, {"type": "GET_HEALTH"}, {"Content-Type": "application/x-protobuf"}).status_code == 415
    bad_json = call(master, "{not json")
    assert bad_json.status_code == 400 and bad_json.text.startswith("Failed to parse body into JSON: ")
    assert call(master, "[1]").text == "Failed to convert JSON into Call protobuf: Expecting a JSON object"
    unknown = call(master, {"type": "MAKE_COFFEE"})
    assert (unknown.status_code, unknown.text) == (
        400,
        "Failed to validate master::Call: Expecting 'type' to be present",
    )
    assert call(master, {"type": "UNKNOWN"}).status_code == 501
    missing = call(master, {"type": "GET_METRICS"})
    assert missing.text == "Failed to validate master::Call: Expecting 'get_metrics' to be present"
    required = call(master, {"type": "DRAIN_AGENT", "drain_agent": {}})
    assert required.text == "Failed to convert JSON into Call protobuf: Missing required fields: drain_agent.agent_id"
    grace = call(
        master, {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "x"}, "max_grace_period": "10mins"}}
    )
    assert (
        grace.text
        == "Failed to convert JSON into Call protobuf: Not expecting a JSON string for field 'max_grace_period'"
    )
    not_acceptable = call(master, {"type": "GET_HEALTH"}, {"Content-Type": "application/json", "Accept": "text/html"})
    assert not_acceptable.status_code == 406
    assert (
        call(master, {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "nope"}}}).text
        == "Unknown agent"
    )
    gone = call(master, {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "nope"}}})
    assert (gone.status_code, gone.text) == (404, "Agent 'nope' not found")
    teardown = call(master, {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "nope"}}})
    assert (teardown.status_code, teardown.text) == (400, "No framework found with specified ID")
    weights = call(master, {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "a", "weight": 0}]}})
    assert weights.status_code == 400


def test_subscribe_reports_a_task_launched_after_it_opened(running: Cluster) -> None:
    master = running.master
    assert master is not None
    stream = EventStream(master)
    try:
        _, subscribed = stream.find(lambda e: e["type"] == "SUBSCRIBED")
        assert subscribed["subscribed"]["heartbeat_interval_seconds"] > 0
        assert len(subscribed["subscribed"]["get_state"]["get_agents"]["agents"]) == 1
        stream.find(lambda e: e["type"] == "HEARTBEAT")

        client = SchedulerClient(master.url, FRAMEWORK)
        framework_id = client.subscribe()
        _, added = stream.find(lambda e: e["type"] == "FRAMEWORK_ADDED")
        assert added["framework_added"]["framework"]["framework_info"]["id"] == {"value": framework_id}
        offer = next_offer(client)
        client.launch(offer, [task("late", offer, "sleep 1000")])
        _, task_added = stream.find(lambda e: e["type"] == "TASK_ADDED")
        assert task_added["task_added"]["task"]["task_id"] == {"value": "late"}
        assert task_added["task_added"]["task"]["state"] == "TASK_STAGING"
        update_for(client, "late", "TASK_RUNNING")
        seen = time.monotonic()
        arrived, running_event = stream.find(
            lambda e: e["type"] == "TASK_UPDATED" and e["task_updated"]["state"] == "TASK_RUNNING"
        )
        assert arrived - seen < 1.0  # pushed as it happens: no polling interval in between
        update = running_event["task_updated"]
        assert update["framework_id"] == {"value": framework_id}
        assert update["status"]["task_id"] == {"value": "late"}

        running.start_agent("--hostname", "second.local")
        _, agent_added = stream.find(lambda e: e["type"] == "AGENT_ADDED")
        assert agent_added["agent_added"]["agent"]["agent_info"]["hostname"] == "second.local"

        client.call("TEARDOWN")
        stream.find(lambda e: e["type"] == "FRAMEWORK_REMOVED")
        stream.find(lambda e: e["type"] == "TASK_UPDATED" and e["task_updated"]["state"] == "TASK_KILLED")
        client.close()
    finally:
        stream.close()


def _offers_for(client: SchedulerClient, agent_id: str, seconds: float) -> list[dict[str, Any]]:
    """Offers for ``agent_id`` that arrive within ``seconds`` (declining the others at once)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            event = client.next_event(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if event.get("type") == "OFFERS":
            for offer in event["offers"]["offers"]:
                if offer["agent_id"]["value"] == agent_id:
                    seen.append(offer)
                client.decline([offer["id"]["value"]], refuse_seconds=0.1)
    return seen


def test_drain_deactivate_reactivate_and_registry(cluster: Cluster) -> None:
    master = cluster.start_master()
    first = cluster.start_agent("--hostname", "first.local")
    first_id = cluster.agent_id(first)
    assert first_id is not None
    client = SchedulerClient(master.url, {**FRAMEWORK, "capabilities": [{"type": "PARTITION_AWARE"}]})
    client.subscribe()
    try:
        offer = next_offer(client)
        victim = task("victim", offer, "trap 'exit 0' TERM; sleep 1000 & wait")
        victim["kill_policy"] = {"grace_period": {"nanoseconds": 60 * 10**9}}
        client.launch(offer, [victim])
        update_for(client, "victim", "TASK_RUNNING")

        drain = {"agent_id": {"value": first_id}, "max_grace_period": {"seconds": 2}, "mark_gone": False}
        response = call(master, {"type": "DRAIN_AGENT", "drain_agent": drain})
        assert (response.status_code, response.text) == (200, "")
        [agent] = get(master, "GET_AGENTS")["agents"]
        assert agent["deactivated"] is True and agent["active"] is False
        assert agent["drain_info"]["state"] == "DRAINING"
        assert agent["drain_info"]["config"] == {"mark_gone": False, "max_grace_period": {"nanoseconds": 2 * 10**9}}
        killed = update_for(client, "victim", "TASK_KILLED", timeout=20)
        assert killed["reason"] == "REASON_AGENT_DRAINING"
        wait_until(
            lambda: get(master, "GET_AGENTS")["agents"][0]["drain_info"]["state"] == "DRAINED",
            what="the agent to be drained",
        )
        [slave] = master.get("/master/slaves").json()["slaves"]
        assert slave["drain_info"]["state"] == "DRAINED" and slave["deactivated"] is True and slave["active"] is False
        assert _offers_for(client, first_id, 1.5) == []
        still = call(master, {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": "nope"}}})
        assert still.text == "Unknown agent"

        # Drain, deactivation and the agents' registry entries survive a master restart.
        master.stop()
        master = cluster.start_master(port=master.port)
        wait_until(lambda: cluster.agent_id(first), what="the agent to re-register")
        [agent] = get(master, "GET_AGENTS")["agents"]
        assert agent["drain_info"]["state"] == "DRAINED" and agent["deactivated"] is True

        client.close()
        client = SchedulerClient(master.url, FRAMEWORK)
        client.subscribe()
        assert _offers_for(client, first_id, 1.0) == []
        response = call(master, {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": first_id}}})
        assert response.status_code == 200, response.text
        assert "drain_info" not in get(master, "GET_AGENTS")["agents"][0]
        offer = next_offer(client)
        assert offer["agent_id"]["value"] == first_id
        again = call(master, {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": first_id}}})
        assert (again.status_code, again.text) == (400, "Agent is not deactivated")

        response = call(master, {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": first_id}}})
        assert response.status_code == 200
        assert get(master, "GET_AGENTS")["agents"][0]["deactivated"] is True
    finally:
        client.close()


def test_mark_agent_gone(cluster: Cluster) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent("--hostname", "doomed.local")
    agent_id = cluster.agent_id(agent)
    client = SchedulerClient(master.url, {**FRAMEWORK, "capabilities": [{"type": "PARTITION_AWARE"}]})
    client.subscribe()
    try:
        offer = next_offer(client)
        client.launch(offer, [task("doomed", offer, "sleep 1000")])
        update_for(client, "doomed", "TASK_RUNNING")
        response = call(master, {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}})
        assert (response.status_code, response.text) == (200, "")
        gone = update_for(client, "doomed", "TASK_GONE_BY_OPERATOR")
        assert gone["reason"] == "REASON_AGENT_REMOVED_BY_OPERATOR"
        assert get(master, "GET_AGENTS") == {}
        again = call(master, {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}})
        assert again.status_code == 200  # idempotent
        # The agent is told to shut down: its task's process is killed, and it is never admitted again.
        wait_until(lambda: not agent.get("/state").json()["frameworks"], what="the agent to kill its tasks")
        time.sleep(1.5)
        assert get(master, "GET_AGENTS") == {}
        master.stop()
        master = cluster.start_master(port=master.port)
        time.sleep(2.0)
        assert get(master, "GET_AGENTS") == {}
    finally:
        client.close()
