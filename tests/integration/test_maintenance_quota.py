"""Maintenance primitives and quota on a real master and agents: schedules and their validation, unavailability in
offers, inverse offers and their answers, a machine brought DOWN (its tasks lost, its agent refused until it comes
UP), what the registry keeps over a restart, and quota limits enforced by the allocator."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, ServiceProcess, wait_until
from tests.integration.test_operator_api import EventStream, call, get
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for

MACHINE = {"hostname": "maint.local", "ip": "127.0.0.1"}


def schedule(master: ServiceProcess, body: Any) -> requests.Response:
    return requests.post(f"{master.url}/maintenance/schedule", data=json.dumps(body), timeout=10)


def window(*machines: dict[str, str], start: float | None = None) -> dict[str, Any]:
    start_ns = int((start or time.time()) * 1e9)
    return {
        "machine_ids": list(machines),
        "unavailability": {"start": {"nanoseconds": start_ns}, "duration": {"nanoseconds": 3600 * 10**9}},
    }


def slave_hosts(master: ServiceProcess) -> set[str]:
    return {s["hostname"] for s in master.get("/master/slaves").json()["slaves"]}


def test_schedule_validation(running: Cluster) -> None:
    master = running.master
    assert master is not None
    assert master.get("/maintenance/schedule").json() == {}
    cases = [
        ({"windows": [window()]}, "List of machines in the maintenance window is empty"),
        ({"windows": [window({})]}, "Both 'hostname' and 'ip' for a machine are empty"),
        ({"windows": [window({"hostname": "a", "ip": "999.1.1.1"})]}, "Failed to parse IPv4: 999.1.1.1"),
        (
            {"windows": [window({"hostname": "a"}), window({"hostname": "A"})]},
            "Machine 'hostname: \"A\"\n' appears more than once in the schedule",
        ),
        (
            {"windows": [{"machine_ids": [{"hostname": "a"}], "unavailability": {}}]},
            "Missing required fields: windows[0].unavailability.start",
        ),
    ]
    for body, message in cases:
        response = schedule(master, body)
        assert (response.status_code, response.text) == (400, message)
    negative = window({"hostname": "a"})
    negative["unavailability"]["duration"]["nanoseconds"] = -1
    assert schedule(master, {"windows": [negative]}).text == "Unavailability 'duration' is negative"
    assert requests.put(f"{master.url}/maintenance/schedule", data="{}", timeout=5).status_code == 405
    down = requests.post(f"{master.url}/machine/down", data=json.dumps([{"hostname": "x"}]), timeout=5)
    assert (down.status_code, down.text) == (400, "Machine 'hostname: \"x\"\n' is not part of a maintenance schedule")
    empty = requests.post(f"{master.url}/machine/down", data="[]", timeout=5)
    assert empty.text == "List of machines is empty"
    assert schedule(master, {"windows": [window({"hostname": "x"})]}).status_code == 200
    up = requests.post(f"{master.url}/machine/up", data=json.dumps([{"hostname": "x"}]), timeout=5)
    assert up.text == "Machine 'hostname: \"x\"\n' is not in DOWN mode and cannot be brought up"
    # The v1 calls share the validation, with the operator API's prefixes for what does not convert.
    v1 = call(
        master,
        {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [window()]}}},
    )
    assert (v1.status_code, v1.text) == (400, "List of machines in the maintenance window is empty")
    status = get(master, "GET_MAINTENANCE_STATUS")["status"]
    assert status == {"draining_machines": [{"id": {"hostname": "x"}}]}
    assert get(master, "GET_MAINTENANCE_SCHEDULE")["schedule"]["windows"][0]["machine_ids"] == [{"hostname": "x"}]


def test_maintenance_drains_downs_and_refuses_a_machine(cluster: Cluster) -> None:
    master = cluster.start_master()
    target = cluster.start_agent("--hostname", MACHINE["hostname"])
    cluster.start_agent("--hostname", "other.local")
    target_id = cluster.agent_id(target)
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    stream = EventStream(master)
    try:
        offer = client.next_event("OFFERS", 20, where=lambda e: _has_agent(e, target_id))
        mine = next(o for o in offer["offers"]["offers"] if o["agent_id"]["value"] == target_id)
        assert "unavailability" not in mine
        client.launch(mine, [task("busy", mine, "sleep 1000")])
        update_for(client, "busy", "TASK_RUNNING")

        start = time.time() + 60
        assert schedule(master, {"windows": [window(MACHINE, start=start)]}).status_code == 200
        # Frameworks using the machine are asked to give it back; offers from it carry the unavailability.
        inverse = client.next_event("INVERSE_OFFERS", 20)["inverse_offers"]["inverse_offers"][0]
        assert inverse["agent_id"]["value"] == target_id
        assert inverse["unavailability"]["start"]["nanoseconds"] == int(start * 1e9)
        client.call("ACCEPT_INVERSE_OFFERS", {"inverse_offer_ids": [inverse["id"]]})
        status = master.get("/maintenance/status").json()
        [draining] = status["draining_machines"]
        assert draining["id"] == MACHINE and draining["statuses"][0]["status"] == "ACCEPT"
        offered = client.next_event("OFFERS", 20, where=lambda e: _has_agent(e, target_id))
        unavailable = next(o for o in offered["offers"]["offers"] if o["agent_id"]["value"] == target_id)
        assert unavailable["unavailability"]["start"]["nanoseconds"] == int(start * 1e9)

        down = requests.post(f"{master.url}/machine/down", data=json.dumps([MACHINE]), timeout=10)
        assert (down.status_code, down.text) == (200, "")
        lost = update_for(client, "busy", "TASK_LOST")
        assert lost["reason"] == "REASON_AGENT_REMOVED"
        assert lost["message"] == f"Agent {MACHINE['hostname']} removed: Operator initiated 'Machine DOWN'"
        stream.find(lambda e: e["type"] == "AGENT_REMOVED" and e["agent_removed"]["agent_id"]["value"] == target_id)
        assert slave_hosts(master) == {"other.local"}
        assert master.get("/maintenance/status").json() == {"down_machines": [MACHINE]}
        # The agent was told to shut down: the task's process is gone. It keeps asking, and is refused.
        wait_until(lambda: not target.get("/state").json()["frameworks"], what="the DOWN agent to kill its task")
        left_out = schedule(master, {"windows": []})
        assert left_out.text == (
            'Machine \'hostname: "maint.local"\nip: "127.0.0.1"\n\' is deactivated and cannot be removed from the '
            "schedule"
        )

        # DOWN survives a master restart: the agent is still refused.
        master.stop()
        master = cluster.start_master(port=master.port)
        wait_until(lambda: slave_hosts(master) == {"other.local"}, what="the other agent back")
        time.sleep(2)
        assert slave_hosts(master) == {"other.local"}
        assert master.get("/maintenance/status").json() == {"down_machines": [MACHINE]}

        up = requests.post(f"{master.url}/machine/up", data=json.dumps([MACHINE]), timeout=10)
        assert up.status_code == 200
        assert master.get("/maintenance/schedule").json() == {}
        wait_until(lambda: MACHINE["hostname"] in slave_hosts(master), timeout=20, what="the machine's agent back")
    finally:
        stream.close()
        client.close()


def _has_agent(event: dict[str, Any], agent_id: str | None) -> bool:
    return any(o["agent_id"]["value"] == agent_id for o in event["offers"]["offers"])


def test_quota_limits_and_their_checks(running: Cluster) -> None:
    master = running.master
    assert master is not None
    quota = {
        "role": "dev",
        "guarantees": {"cpus": {"value": 0.5}},
        "limits": {"cpus": {"value": 1}, "mem": {"value": 64}},
    }
    response = call(master, {"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [quota]}})
    assert (response.status_code, response.text) == (200, "")
    status = get(master, "GET_QUOTA")["status"]
    assert status["configs"] == [quota]
    assert status["infos"][0]["guarantee"][0]["scalar"]["value"] == 0.5
    assert master.get("/quota").json() == status

    client = SchedulerClient(master.url, {**FRAMEWORK, "role": "dev"})
    client.subscribe()
    try:
        offer = next_offer(client)
        cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
        mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
        assert (cpus, mem) == (1.0, 64.0)  # the agent has 4 cpus and 4096 MB: cut down to the limits
        capped = task("capped", offer, "sleep 1000", cpus=1.0)
        capped["resources"][1]["scalar"]["value"] = 64
        client.launch(offer, [capped], refuse_seconds=0.1)
        update_for(client, "capped", "TASK_RUNNING")
        client.call("REVIVE")
        try:
            extra = client.next_event("OFFERS", 2.0)
        except TimeoutError:
            extra = None
        assert extra is None, "a role at its cpus limit got another offer"

        over = call(
            master,
            {
                "type": "UPDATE_QUOTA",
                "update_quota": {"quota_configs": [{**quota, "limits": {"cpus": {"value": 0.5}}}]},
            },
        )
        assert over.status_code == 400
        assert over.text.startswith("Invalid QuotaConfig: ")
        lowered = {"role": "dev", "limits": {"cpus": {"value": 0.5}}}
        forced = call(master, {"type": "UPDATE_QUOTA", "update_quota": {"force": True, "quota_configs": [lowered]}})
        assert forced.status_code == 200, forced.text
    finally:
        client.close()

    nested = call(
        master,
        {
            "type": "UPDATE_QUOTA",
            "update_quota": {"quota_configs": [{"role": "a/b", "limits": {"cpus": {"value": 1}}}]},
        },
    )
    assert nested.text == "Updating quota on nested role 'a/b' is not supported yet"
    inverted = {"role": "x", "guarantees": {"cpus": {"value": 2}}, "limits": {"cpus": {"value": 1}}}
    response = call(master, {"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [inverted]}})
    assert response.text == (
        "Invalid QuotaConfig: 'QuotaConfig.guarantees' cpus:2 is not contained within the 'QuotaConfig.limits' cpus:1"
    )
    star = call(master, {"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [{"role": "*"}]}})
    assert star.status_code == 400
    huge = {"role": "big", "guarantees": {"cpus": {"value": 100}}}
    response = call(master, {"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [huge]}})
    assert response.text.startswith("Invalid QuotaConfig: total quota guarantees 'cpus:100' exceed cluster capacity")
    # Empty guarantees and limits put a role back to the default quota.
    reset = call(master, {"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [{"role": "dev"}]}})
    assert reset.status_code == 200
    assert get(master, "GET_QUOTA") == {"status": {}}

    # The deprecated v0 endpoint: the guarantee is also the limit; a second POST for the role is refused.
    body = {"role": "ops", "guarantee": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]}
    assert requests.post(f"{master.url}/quota", data=json.dumps(body), timeout=5).status_code == 200
    twice = requests.post(f"{master.url}/quota", data=json.dumps(body), timeout=5)
    assert twice.text == "Failed to validate set quota request: Cannot set quota for role 'ops' which already has quota"
    config = get(master, "GET_QUOTA")["status"]["configs"][0]
    assert config["guarantees"] == config["limits"] == {"cpus": {"value": 1.0}}
    overcommit = {"role": "big", "guarantee": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 99}}]}
    assert requests.post(f"{master.url}/quota", data=json.dumps(overcommit), timeout=5).status_code == 409
    # Quota lives in the registry.
    master.stop()
    master = running.start_master(port=master.port)
    assert get(master, "GET_QUOTA")["status"]["configs"][0]["role"] == "ops"
    assert requests.delete(f"{master.url}/quota/ops", timeout=5).status_code == 200
    missing = requests.delete(f"{master.url}/master/quota/ops", timeout=5)
    assert missing.text == "Failed to remove quota for path '/master/quota/ops': Role 'ops' has no quota set"
