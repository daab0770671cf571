"""Mesos-DNS following the master's operator event stream: a task change reaches the records as it happens, with
the polls set far apart (so nothing but the stream can explain the speed); and it follows a master that comes back."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.integration.dns.conftest import DNSProcess
from tests.integration.dns.test_dns_master import task


def hosts(dns: DNSProcess, name: str) -> list[dict[str, str]]:
    return [h for h in requests.get(f"{dns.url}/v1/hosts/{name}", timeout=2).json() if h.get("ip")]


def test_records_follow_the_event_stream(running: Cluster, start_dns: Callable[..., DNSProcess]) -> None:
    master = running.master
    assert master is not None
    config = {"masters": [f"127.0.0.1:{master.port}"], "refreshSeconds": 60}
    # The state-summary watch every 30 s and the full poll every 60 s: only the stream can be this fast.
    dns = start_dns(config, "--workers", "1", "--watch-interval", "30")
    wait_until(lambda: "following the operator event stream" in dns.log(), what="dns to follow the stream")

    client = SchedulerClient(master.url, {"user": "root", "name": "marathon", "hostname": "127.0.0.1"})
    client.subscribe()
    try:
        offer = client.next_event("OFFERS", 15)["offers"]["offers"][0]
        client.launch(offer, [task("web.1", "web", offer, 31001)])
        running_at = None
        while running_at is None:
            status = client.next_event("UPDATE", 15)["update"]["status"]
            client.acknowledge(status)
            if status["state"] == "TASK_RUNNING":
                running_at = time.monotonic()
        wait_until(lambda: hosts(dns, "web.marathon.mesos"), timeout=5, interval=0.005, what="web in the records")
        assert time.monotonic() - running_at < 1.0
        assert dns.dig("web.marathon.mesos").values() == {"127.0.0.1"}

        client.kill("web.1", offer["agent_id"]["value"])
        killed_at = time.monotonic()
        wait_until(lambda: not hosts(dns, "web.marathon.mesos"), timeout=5, interval=0.005, what="web gone")
        assert time.monotonic() - killed_at < 2.0  # the kill itself takes the agent's signal round trip

        # A master restart drops the stream: the service subscribes again to the master that comes back.
        master.stop()
        running.start_master(port=master.port)
        wait_until(lambda: dns.log().count("following the operator event stream") >= 2, 30, what="resubscribed")
    finally:
        client.close()
