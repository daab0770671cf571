"""The master's transitions driven directly, without HTTP: offers, validation, timeouts, reconciliation."""

from __future__ import annotations

from typing import Any

import pytest

from mesolite.core.resources import Resources
from mesolite.core.store import MemoryStore
from mesolite.master import calls
from mesolite.master.api import status_code
from mesolite.master.errors import InvalidCall, MasterError, UnknownFramework
from mesolite.master.state import Master, MasterConfig, Subscription


class FakeLink:
    """Records what the master would send to agents."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def send(self, endpoint: str, path: str, body: dict[str, Any], on_failure: Any = None) -> None:
        self.sent.append((endpoint, path, body))

    def close(self) -> None:
        pass


def make_master(**config: Any) -> tuple[Master, FakeLink, MemoryStore]:
    link = FakeLink()
    store = MemoryStore()
    master = Master(MasterConfig(**config), store, link)  # type: ignore[arg-type]
    return master, link, store


def add_agent(master: Master, port: int = 5051, resources: str = "cpus:4;mem:4096") -> str:
    return master.register_agent(
        calls.parse_registration(
            {
                "agent_info": {
                    "hostname": "h",
                    "ip": "127.0.0.1",
                    "port": port,
                    "resources": Resources.parse(resources).to_v1(),
                    "attributes": [],
                }
            }
        )
    )


def subscribe(master: Master, **info: Any) -> Subscription:
    call = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "f", **info}}}
    return master.subscribe(calls.parse_subscribe(call))


def drain(subscription: Subscription) -> list[dict[str, Any]]:
    events = []
    while not subscription.events.empty():
        event = subscription.events.get_nowait()
        if event is not None:
            events.append(event)
    return events


def offers_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for e in events if e["type"] == "OFFERS" for o in e["offers"]["offers"]]


def updates_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["update"]["status"] for e in events if e["type"] == "UPDATE"]


def accept(master: Master, framework_id: str, body: dict[str, Any]) -> None:
    master.accept(framework_id, calls.parse_call("ACCEPT", {"type": "ACCEPT", "accept": body}, framework_id))


def status_update(master: Master, body: dict[str, Any]) -> bool:
    return master.agent_status_update(calls.parse_status_update(body))


def launch_body(offer: dict[str, Any], task_id: str, cpus: float = 1.0) -> dict[str, Any]:
    return {
        "offer_ids": [offer["id"]],
        "operations": [
            {
                "type": "LAUNCH",
                "launch": {
                    "task_infos": [
                        {
                            "name": task_id,
                            "task_id": {"value": task_id},
                            "agent_id": offer["agent_id"],
                            "command": {"value": "true"},
                            "resources": Resources.parse(f"cpus:{cpus};mem:32").to_v1(),
                        }
                    ]
                },
            }
        ],
    }


def test_subscribe_assigns_ids_and_offers_whole_agents() -> None:
    master, _, store = make_master()
    agent_id = add_agent(master)
    assert agent_id == f"{master.id}-S0"
    assert store.get(f"agents/{agent_id}")["resources"] == "cpus:4;mem:4096"
    sub = subscribe(master)
    assert master.allocate_once() == 1
    events = drain(sub)
    assert events[0]["type"] == "SUBSCRIBED"
    framework_id = events[0]["subscribed"]["framework_id"]["value"]
    assert framework_id == f"{master.id}-0000"
    [offer] = offers_of(events)
    assert offer["agent_id"]["value"] == agent_id
    assert Resources.from_v1(offer["resources"]) == Resources.parse("cpus:4;mem:4096")
    # Offered resources are not offered twice.
    assert master.allocate_once() == 0


def test_accept_launches_and_returns_the_rest_with_a_filter() -> None:
    master, link, _ = make_master()
    add_agent(master)
    sub = subscribe(master)
    master.allocate_once()
    [offer] = offers_of(drain(sub))
    framework = master.frameworks[sub.framework_id]
    accept(master, framework.id, {**launch_body(offer, "t1"), "filters": {"refuse_seconds": 100}})
    [(endpoint, path, message)] = link.sent
    assert (endpoint, path) == ("127.0.0.1:5051", "/internal/launch")
    assert message["task"]["task_id"] == {"value": "t1"}
    # The unused cpus:3;mem:4064 are filtered for 100 s: nothing is offered back to this framework.
    assert master.allocate_once() == 0
    master.revive(framework.id, calls.Revive())
    assert master.allocate_once() == 1
    [again] = offers_of(drain(sub))
    assert Resources.from_v1(again["resources"]) == Resources.parse("cpus:3;mem:4064")


def test_offer_timeout_rescinds_and_lets_another_framework_in() -> None:
    master, _, _ = make_master(offer_timeout=10.0)
    add_agent(master)
    hoarder = subscribe(master, name="hoarder")
    master.allocate_once()
    [offer] = offers_of(drain(hoarder))
    other = subscribe(master, name="other")
    master.allocate_once()
    assert offers_of(drain(other)) == []
    master.check_timeouts(now=master.offers[offer["id"]["value"]].created + 11)
    assert [e["type"] for e in drain(hoarder)] == ["RESCIND"]
    master.allocate_once()
    assert len(offers_of(drain(other))) == 1
    assert offers_of(drain(hoarder)) == []


def test_status_updates_release_resources_and_complete_on_ack() -> None:
    master, link, _ = make_master()
    agent_id = add_agent(master)
    sub = subscribe(master)
    master.allocate_once()
    [offer] = offers_of(drain(sub))
    framework = master.frameworks[sub.framework_id]
    accept(master, framework.id, launch_body(offer, "t1", cpus=2))
    agent = master.agents[agent_id]
    assert agent.used().scalar("cpus") == 2
    status = {"task_id": {"value": "t1"}, "state": "TASK_FINISHED", "uuid": "dXVpZA==", "agent_id": {"value": agent_id}}
    assert (
        status_update(
            master, {"framework_id": {"value": framework.id}, "agent_id": {"value": agent_id}, "status": status}
        )
        is False
    )
    assert agent.used().scalar("cpus") == 0
    assert [u["state"] for u in updates_of(drain(sub))] == ["TASK_FINISHED"]
    assert "t1" in framework.tasks  # until acknowledged
    master.acknowledge(framework.id, calls.Acknowledge(agent_id=agent_id, task_id="t1", uuid="dXVpZA=="))
    assert "t1" not in framework.tasks and [t.id for t in framework.completed_tasks] == ["t1"]
    assert link.sent[-1][1] == "/internal/acknowledge"


def test_updates_for_removed_frameworks_are_settled_by_the_master() -> None:
    master, _, _ = make_master()
    agent_id = add_agent(master)
    status = {"task_id": {"value": "t"}, "state": "TASK_KILLED", "uuid": "eA=="}
    assert (
        status_update(master, {"framework_id": {"value": "gone"}, "agent_id": {"value": agent_id}, "status": status})
        is True
    )
    with pytest.raises(MasterError) as error:
        status_update(master, {"framework_id": {"value": "gone"}, "status": {}})
    assert status_code(error.value) == 400


def test_reconciliation_waits_for_recovered_agents() -> None:
    master, _, store = make_master()
    agent_id = add_agent(master)
    restarted = Master(MasterConfig(), store, FakeLink())  # type: ignore[arg-type]
    assert restarted.agents[agent_id].state == "RECOVERED"
    sub = subscribe(restarted)
    framework = restarted.frameworks[sub.framework_id]
    drain(sub)
    restarted.reconcile(framework.id, calls.Reconcile((calls.ReconcileTask("x"),)))
    assert updates_of(drain(sub)) == []  # the task may be on the agent that has not come back yet
    restarted.register_agent(
        calls.parse_registration(
            {
                "agent_info": {
                    "id": {"value": agent_id},
                    "hostname": "h",
                    "ip": "127.0.0.1",
                    "port": 5051,
                    "resources": Resources.parse("cpus:1;mem:64").to_v1(),
                }
            }
        )
    )
    assert restarted.agents[agent_id].state == "ACTIVE"
    restarted.reconcile(framework.id, calls.Reconcile((calls.ReconcileTask("x", agent_id),)))
    [status] = updates_of(drain(sub))
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_RECONCILIATION")


def test_stream_checks_use_mesos_status_codes() -> None:
    master, _, _ = make_master()
    sub = subscribe(master)
    with pytest.raises(MasterError) as missing:
        master.authorize(sub.framework_id, None)
    assert status_code(missing.value) == 400
    with pytest.raises(MasterError) as wrong:
        master.authorize(sub.framework_id, "other")
    assert status_code(wrong.value) == 400
    master.disconnected(sub)
    with pytest.raises(MasterError) as gone:
        master.authorize(sub.framework_id, sub.stream_id)
    assert status_code(gone.value) == 403
    with pytest.raises(MasterError) as unknown:
        master.authorize("nope", sub.stream_id)
    assert status_code(unknown.value) == 400
    with pytest.raises(MasterError):
        calls.parse_subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "no user"}}})


def test_resubscribing_replaces_the_old_stream() -> None:
    master, _, _ = make_master()
    first = subscribe(master)
    second = master.subscribe(
        calls.parse_subscribe(
            {
                "type": "SUBSCRIBE",
                "framework_id": {"value": first.framework_id},
                "subscribe": {"framework_info": {"user": "u", "name": "f", "id": {"value": first.framework_id}}},
            }
        )
    )
    assert first.closed and not second.closed
    assert any(e["type"] == "ERROR" for e in drain(first))
    assert master.frameworks[first.framework_id].subscription is second


def test_weights_survive_a_restart() -> None:
    master, _, store = make_master(weights={"prod": 2.0})
    master.update_weights({"dev": 0.5})
    restarted = Master(MasterConfig(), store, FakeLink())  # type: ignore[arg-type]
    assert restarted.weights == {"prod": 2.0, "dev": 0.5}
    assert restarted.snapshot().weights == {"prod": 2.0, "dev": 0.5}


def test_update_framework_keeps_who_runs_it_and_gone_frameworks_are_unknown() -> None:
    master, _, store = make_master()
    sub = subscribe(master, principal="p")
    with pytest.raises(InvalidCall) as changed:
        master.update_framework(sub.framework_id, calls.UpdateFramework({"user": "u", "name": "f", "principal": "q"}))
    assert changed.value.message == "Failed to validate scheduler::Call: 'principal' cannot be changed"
    master.update_framework(sub.framework_id, calls.UpdateFramework({"user": "u", "name": "g", "principal": "p"}))
    assert store.get(f"frameworks/{sub.framework_id}")["framework_info"] == {
        "user": "u",
        "name": "g",
        "principal": "p",
        "id": {"value": sub.framework_id},
    }
    master.teardown(sub.framework_id)
    with pytest.raises(UnknownFramework):
        master.revive(sub.framework_id, calls.Revive())
    with pytest.raises(UnknownFramework):
        master.teardown(sub.framework_id)


def test_the_read_model_is_a_fresh_document() -> None:
    master, _, _ = make_master()
    agent_id = add_agent(master)
    state = master.state_json()
    assert [a["id"] for a in state["slaves"]] == [agent_id]
    state["slaves"].clear()
    assert [a["id"] for a in master.state_json()["slaves"]] == [agent_id]
    assert master.agent_endpoint(agent_id) == "127.0.0.1:5051"
    assert master.agent_endpoint("nope") is None
    assert master.metrics_json()["master/elected"] == 1.0
