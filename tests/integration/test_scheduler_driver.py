"""``core.scheduler_driver`` against a real master: the one framework driver Marathon and Chronos share keeps its
framework id in the framework's store, comes back under it after a master that went silent, and subscribes as a new
framework only once the master says the old one was removed."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import requests

from mesolite.core.scheduler_driver import FRAMEWORK_ID_KEY, CallFailed, NotConnected, SchedulerDriver
from mesolite.core.store import MemoryStore
from tests.cluster import Cluster, wait_until

FRAMEWORK = {"user": "root", "name": "driven", "failover_timeout": 300.0}


def test_the_driver_keeps_its_framework_id_and_starts_afresh_only_once_removed(cluster: Cluster) -> None:
    master = cluster.start_master()  # heartbeats every second (tests/cluster.py)
    store = MemoryStore()
    subscribed: list[str] = []
    seen: list[str] = []
    connected_on_subscribe: list[bool] = []
    driver: SchedulerDriver

    def on_subscribed(framework_id: str) -> None:
        connected_on_subscribe.append(driver.connected)
        subscribed.append(framework_id)

    def on_event(event: dict[str, Any]) -> None:
        seen.append(str(event.get("type")))

    driver = SchedulerDriver(master.url, FRAMEWORK, store, on_event, on_subscribed=on_subscribed)
    with pytest.raises(NotConnected):
        driver.revive()
    driver.start()
    try:
        first = wait_until(lambda: subscribed and subscribed[0], timeout=15, what="the first subscription")
        assert store.get(FRAMEWORK_ID_KEY) == driver.framework_id == first
        assert connected_on_subscribe == [True] and "SUBSCRIBED" in seen
        driver.revive()

        # A master that stops answering (no heartbeat for five intervals) is left, and found again when it is back.
        master.send_signal(signal.SIGSTOP)  # the whole process group
        try:
            wait_until(lambda: not driver.connected, timeout=15, what="the silent stream to be given up")
            with pytest.raises(NotConnected):
                driver.suppress()
        finally:
            master.send_signal(signal.SIGCONT)
        wait_until(lambda: len(subscribed) == 2, timeout=30, what="the driver to re-subscribe")
        assert subscribed == [first, first]
        frameworks = master.get("/master/frameworks").json()["frameworks"]
        assert [(f["id"], f["active"]) for f in frameworks] == [(first, True)]

        # Torn down by an operator: the master refuses the old id, and the driver subscribes as a new framework.
        torn_down = requests.post(f"{master.url}/master/teardown", data={"frameworkId": first}, timeout=10)
        assert torn_down.status_code == 200
        new = wait_until(lambda: len(subscribed) == 3 and subscribed[2], timeout=30, what="a fresh subscription")
        assert new != first and store.get(FRAMEWORK_ID_KEY) == new
        frameworks = master.get("/master/frameworks").json()
        assert [f["id"] for f in frameworks["frameworks"]] == [new]
        assert [f["id"] for f in frameworks["completed_frameworks"]] == [first]
    finally:
        driver.stop()
    assert not driver.connected
    with pytest.raises(CallFailed):  # NotConnected is a CallFailed: callers catch one error
        driver.kill("some-task")
