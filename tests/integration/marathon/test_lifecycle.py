"""Keeping apps alive: Marathon-side health checks probing the task's host:port, replacement of unhealthy tasks, a
rolling update that never drops below minimumHealthCapacity, and restarts of Marathon and of the master."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from tests.cluster import wait_until
from tests.integration.marathon.conftest import MarathonHarness

SERVER = f"{sys.executable} -m http.server $PORT0 --bind 127.0.0.1"
WEB = {"cmd": SERVER, "cpus": 0.1, "mem": 32}


def health(path: str = "/", **extra: Any) -> dict[str, Any]:
    return {
        "protocol": "HTTP",
        "path": path,
        "portIndex": 0,
        "gracePeriodSeconds": 10,
        "intervalSeconds": 1,
        "timeoutSeconds": 1,
        "maxConsecutiveFailures": 2,
        **extra,
    }


def healthy_tasks(m: MarathonHarness, app_id: str) -> list[dict[str, Any]]:
    tasks = m.app(app_id)["tasks"]
    return [t for t in tasks if t["healthCheckResults"] and all(r["alive"] for r in t["healthCheckResults"])]


def test_passing_http_and_tcp_checks_make_tasks_healthy(marathon: MarathonHarness) -> None:
    checks = [health(), {**health(), "protocol": "TCP"}]
    marathon.request("POST", "/v2/apps", json={"id": "web", "instances": 2, "healthChecks": checks, **WEB})
    marathon.wait_deployed()  # a deployment finishes only once the new tasks are healthy
    app = marathon.app("web")
    assert app["tasksHealthy"] == 2 and app["tasksUnhealthy"] == 0
    result = app["tasks"][0]["healthCheckResults"][0]
    assert result["alive"] is True and result["consecutiveFailures"] == 0 and result["firstSuccess"]


def test_failing_http_check_kills_and_replaces_the_task(marathon: MarathonHarness) -> None:
    events: list[dict[str, Any]] = []
    stream = marathon.get(
        "/v2/events?event_type=unhealthy_task_kill_event&event_type=failed_health_check_event",
        headers={"Accept": "text/event-stream"},
        stream=True,
    )

    def read() -> None:
        import json

        try:
            for line in stream.iter_lines():
                if line.startswith(b"data:"):
                    events.append(json.loads(line[5:]))
        except Exception:  # noqa: BLE001 - the stream ends with the test
            pass

    threading.Thread(target=read, daemon=True).start()
    app = {"id": "sick", "healthChecks": [health("/missing", gracePeriodSeconds=0)], **WEB}
    marathon.request("POST", "/v2/apps", json=app)
    first = wait_until(lambda: marathon.app("sick")["tasks"], 20, what="a task")[0]["id"]
    wait_until(lambda: first not in [t["id"] for t in marathon.app("sick")["tasks"]], 30, what="the sick task killed")
    wait_until(lambda: marathon.app("sick")["tasks"], 20, what="a replacement")
    kill = wait_until(lambda: [e for e in events if e["eventType"] == "unhealthy_task_kill_event"], 10)[0]
    assert kill["taskId"] == first and kill["appId"] == "/sick" and "404" in kill["reason"]
    assert any(e["eventType"] == "failed_health_check_event" for e in events)
    assert marathon.app("sick")["tasksUnhealthy"] <= 1


def test_rolling_update_never_drops_below_minimum_health_capacity(marathon: MarathonHarness) -> None:
    strategy = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
    app = {"id": "rolling", "instances": 4, "healthChecks": [health()], "upgradeStrategy": strategy, **WEB}
    marathon.request("POST", "/v2/apps", json=app)
    marathon.wait_deployed()
    old = {t["id"] for t in marathon.app("rolling")["tasks"]}
    marathon.request("PUT", "/v2/apps/rolling", json={"env": {"RELEASE": "2"}})
    lowest, highest = 4, 0
    deadline = time.monotonic() + 60
    while marathon.get("/v2/deployments").json() and time.monotonic() < deadline:
        tasks = marathon.app("rolling")["tasks"]
        lowest = min(lowest, len(healthy_tasks(marathon, "rolling")))
        highest = max(highest, len(tasks))
        time.sleep(0.05)
    assert marathon.get("/v2/deployments").json() == []
    final = marathon.app("rolling")
    assert not old & {t["id"] for t in final["tasks"]} and final["tasksHealthy"] == 4
    assert lowest >= 2, f"healthy dropped to {lowest}"
    assert highest <= 4, f"ran {highest} tasks with maximumOverCapacity 0"


def test_marathon_restart_loses_nothing(marathon: MarathonHarness) -> None:
    marathon.request(
        "POST", "/v2/apps", json={"id": "/keep/me", "instances": 2, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16}
    )
    marathon.request("POST", "/v2/apps", json={"id": "/keep/waiting", "cmd": "sleep 3600", "cpus": 50, "mem": 16})
    wait_until(lambda: len(marathon.running("/keep/me")) == 2, 20, what="running")
    before = marathon.app("/keep/me")
    framework = marathon.get("/v2/info").json()["frameworkId"]
    deployments = marathon.get("/v2/deployments").json()
    marathon.stop()
    marathon.start()
    assert marathon.get("/v2/info").json()["frameworkId"] == framework
    assert [d["id"] for d in marathon.get("/v2/deployments").json()] == [d["id"] for d in deployments]
    time.sleep(2)  # reconciliation has run: tasks re-adopted, nothing relaunched
    after = marathon.app("/keep/me")
    assert sorted(t["id"] for t in after["tasks"]) == sorted(t["id"] for t in before["tasks"])
    assert after["version"] == before["version"] and after["ports"] == before["ports"]
    assert all(t["state"] == "TASK_RUNNING" for t in after["tasks"])
    assert {a["id"] for a in marathon.get("/v2/groups/keep").json()["apps"]} == {"/keep/me", "/keep/waiting"}


@pytest.mark.slow
def test_master_restart_resubscribes_with_the_same_framework_id(marathon: MarathonHarness) -> None:
    marathon.request(
        "POST", "/v2/apps", json={"id": "survivor", "instances": 2, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16}
    )
    wait_until(lambda: len(marathon.running("survivor")) == 2, 20, what="running")
    ids = sorted(t["id"] for t in marathon.app("survivor")["tasks"])
    framework = marathon.get("/v2/info").json()["frameworkId"]
    master = marathon.cluster.master
    assert master is not None
    master.stop()
    master.start()
    wait_until(
        lambda: any(
            f["id"] == framework and f["active"] for f in master.get("/master/frameworks").json()["frameworks"]
        ),
        60,
        what="marathon re-subscribed",
    )
    time.sleep(3)
    assert sorted(t["id"] for t in marathon.app("survivor")["tasks"]) == ids
    marathon.request("PUT", "/v2/apps/survivor", json={"instances": 3})
    wait_until(lambda: len(marathon.running("survivor")) == 3, 60, what="a launch after the master restart")
