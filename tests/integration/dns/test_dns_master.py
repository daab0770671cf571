"""``mesolite dns`` against a real ``mesolite master`` and agent running real tasks, launched by a v1 framework the
way Marathon launches them (Marathon's task naming and DiscoveryInfo included)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mesolite.core.scheduler_client import SchedulerClient
from mesolite.dns.generator import hash_string
from tests.cluster import Cluster
from tests.integration.dns.conftest import DNSProcess


def ports(*numbers: int) -> dict[str, Any]:
    return {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": n, "end": n} for n in numbers]}}


def task(task_id: str, name: str, offer: dict[str, Any], port: int, discovery: dict | None = None) -> dict:
    info: dict[str, Any] = {
        "name": name,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "command": {"value": "sleep 1000"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            ports(port),
        ],
    }
    if discovery is not None:
        info["discovery"] = discovery
    return info


@pytest.fixture
def marathon(running: Cluster) -> Iterator[SchedulerClient]:
    assert running.master is not None

    def on_event(event: dict[str, Any]) -> None:
        # Acknowledge as a framework must: the agent holds back TASK_RUNNING until TASK_STARTING is acknowledged.
        if event["type"] == "UPDATE":
            client.acknowledge(event["update"]["status"])
        client.events.put(event)

    client = SchedulerClient(
        running.master.url, {"user": "root", "name": "marathon", "hostname": "127.0.0.1"}, on_event=on_event
    )
    client.subscribe()
    try:
        yield client
    finally:
        client.call("TEARDOWN")
        client.close()


def test_dig_finds_real_running_tasks(
    running: Cluster, marathon: SchedulerClient, start_dns: Callable[..., DNSProcess]
) -> None:
    assert running.master is not None
    dns = start_dns({"masters": [f"127.0.0.1:{running.master.port}"], "refreshSeconds": 60}, "--workers", "1")
    agent_port = running.agents[0].port
    assert dns.dig("leader.mesos").values() == {"127.0.0.1"}
    assert dns.dig("_leader._tcp.mesos", "SRV").values() == {f"0 1 {running.master.port} leader.mesos."}
    assert dns.dig("slave.mesos").values() == {"127.0.0.1"}
    assert dns.dig("_slave._tcp.mesos", "SRV").values() == {f"0 1 {agent_port} slave.mesos."}
    assert dns.dig("marathon.mesos").values() == {"127.0.0.1"}  # the framework's hostname

    offer = marathon.next_event("OFFERS", 15)["offers"]["offers"][0]
    agent_tail = offer["agent_id"]["value"].split("-")[-1].lower()
    # Marathon names the task and its DiscoveryInfo after the app id reversed: /product/db/mongo → mongo.db.product.
    discovery = {
        "visibility": "FRAMEWORK",
        "name": "mongo.db.product",
        "ports": {"ports": [{"number": 31000, "name": "db", "protocol": "tcp"}]},
    }
    marathon.launch(
        offer,
        [
            task("product_db_mongo.1", "mongo.db.product", offer, 31000, discovery),
            task("web.1", "web", offer, 31001),
        ],
    )
    started = time.monotonic()
    mongo = dns.wait_for("mongo-db-product.marathon.mesos", timeout=20)
    assert time.monotonic() - started < 10
    assert mongo.values() == {"127.0.0.1"}  # the task's netinfo address from the agent
    canonical = f"mongo-db-product-{hash_string('product_db_mongo.1')}-{agent_tail}"
    assert dns.dig(f"{canonical}.marathon.mesos").values() == {"127.0.0.1"}
    assert dns.dig("mongo-db-product.marathon.slave.mesos").values() == {"127.0.0.1"}
    srv = dns.dig("_mongo-db-product._tcp.marathon.mesos", "SRV")
    assert srv.values() == {f"0 1 31000 {canonical}.marathon.mesos."}
    assert {r[4] for r in srv.additional} == {"127.0.0.1"}
    assert dns.dig("_db._mongo-db-product._tcp.marathon.mesos", "SRV").values() == {
        f"0 1 31000 {canonical}.marathon.mesos."
    }
    assert dns.dig("_mongo-db-product._udp.marathon.mesos", "SRV").status == "NOERROR"
    assert not dns.dig("_mongo-db-product._udp.marathon.mesos", "SRV").answer
    assert dns.dig("_mongo-db-product._tcp.marathon.slave.mesos", "SRV").values() == {
        f"0 1 31000 {canonical}.marathon.slave.mesos."
    }
    web = dns.wait_for("web.marathon.mesos")
    assert web.values() == {"127.0.0.1"}
    web_canonical = f"web-{hash_string('web.1')}-{agent_tail}.marathon.slave.mesos."
    assert dns.dig("_web._tcp.marathon.mesos", "SRV").values() == {f"0 1 31001 {web_canonical}"}
    assert dns.dig("_web._udp.marathon.mesos", "SRV").values() == {f"0 1 31001 {web_canonical}"}
    assert dns.dig("web.marathon.mesos", "AAAA").status == "NOERROR"
    enumerated = dns.get("/v1/enumerate").json()["frameworks"]
    assert {t["name"] for f in enumerated if f["name"] == "marathon" for t in f["tasks"]} == {"mongo.db.product", "web"}

    # A killed task leaves DNS within about a second of the master knowing, not refreshSeconds (60 s) later.
    marathon.kill("web.1", offer["agent_id"]["value"])
    started = time.monotonic()
    dns.wait_for("web.marathon.mesos", status="NXDOMAIN", timeout=20)
    assert time.monotonic() - started < 5
    assert dns.dig("mongo-db-product.marathon.mesos").values() == {"127.0.0.1"}
