"""Marathon's events and API gaps with real parts: ``framework_message_event`` from a custom executor,
``instance_changed_event`` and ``instance_health_changed_event``, ``unhealthy_instance_kill_event``,
``deployment_step_failure`` when a deployment is overridden, ``DELETE /v2/apps/{id}`` on a locked app (409 with
``force=false``; ``force`` defaults to true there, as in ``AppsResource``), and the metrics Marathon's users scrape
(``/metrics`` with 1.7+ names, ``/metrics/prometheus`` checked by ``promtool``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import wait_until
from tests.integration.marathon.conftest import MarathonHarness
from tests.integration.marathon.test_pods import Events

LOCKED = (
    "App is locked by one or more deployments. Override with the option '?force=true'. "
    "View details at '/v2/deployments/<DEPLOYMENT_ID>'."
)


def test_a_custom_executors_framework_message_is_an_event(marathon: MarathonHarness, tmp_path: Path) -> None:
    executor = tmp_path / "greeter"
    script = Path(__file__).with_name("message_executor.py")
    executor.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    events = Events(marathon)
    try:
        app = {"id": "/greeter", "cmd": "greet", "executor": str(executor), "cpus": 0.1, "mem": 32}
        assert marathon.request("POST", "/v2/apps", json=app).status_code == 201
        message = wait_until(lambda: events.of("framework_message_event"), 30, what="framework_message_event")[0]
        task_id = wait_until(lambda: marathon.running("/greeter"), 10, what="the task running")[0]["id"]
        assert bytes(b % 256 for b in message["message"]).decode() == f"hello from {task_id}"  # Marathon's bytes
        assert message["executorId"] == f"marathon-{task_id}" and message["slaveId"]
        changed = [e for e in events.of("instance_changed_event") if e["instanceId"] == task_id]
        assert [e["condition"] for e in changed][-1] == "Running"
        assert changed[-1]["runSpecId"] == "/greeter" and changed[-1]["agentId"] == message["slaveId"]
        assert marathon.request("POST", "/v2/apps", json={**app, "id": "/bad", "executor": "//x"}).status_code == 422
    finally:
        events.close()


def test_an_unhealthy_instance_is_killed_with_its_events(marathon: MarathonHarness) -> None:
    events = Events(marathon)
    try:
        check = {
            "protocol": "HTTP",
            "portIndex": 0,
            "gracePeriodSeconds": 0,
            "intervalSeconds": 1,
            "timeoutSeconds": 1,
            "maxConsecutiveFailures": 1,
        }
        app = {"id": "/sick", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "healthChecks": [check]}
        assert marathon.request("POST", "/v2/apps", json=app).status_code == 201
        kill = wait_until(lambda: events.of("unhealthy_instance_kill_event"), 30, what="the kill event")[0]
        assert kill["appId"] == "/sick" and kill["instanceId"] == kill["taskId"]
        assert kill["host"] == "127.0.0.1" and kill["slaveId"] and kill["version"] and kill["reason"]
        health = [e for e in events.of("instance_health_changed_event") if e["instanceId"] == kill["instanceId"]]
        assert health and health[-1]["healthy"] is False and health[-1]["runSpecId"] == "/sick"
    finally:
        events.close()


def test_deleting_a_locked_app_is_a_conflict_unless_forced(marathon: MarathonHarness) -> None:
    events = Events(marathon)
    try:
        stuck = {"id": "/stuck", "cmd": "sleep 3600", "cpus": 64, "mem": 16}  # more than the agent has: stays
        created = marathon.request("POST", "/v2/apps", json=stuck)
        deployment = created.headers["Marathon-Deployment-Id"]

        refused = marathon.request("DELETE", "/v2/apps/stuck?force=false")
        assert refused.status_code == 409
        assert refused.json() == {"message": LOCKED, "deployments": [{"id": deployment}]}
        assert marathon.app("/stuck")["id"] == "/stuck"

        forced = marathon.request("DELETE", "/v2/apps/stuck?force=true")
        assert forced.status_code == 200 and forced.json()["deploymentId"] != deployment
        failure = wait_until(
            lambda: [e for e in events.of("deployment_step_failure") if e["plan"]["id"] == deployment],
            10,
            what="deployment_step_failure",
        )[0]
        assert failure["currentStep"]["actions"] == [{"action": "ScaleApplication", "app": "/stuck"}]
        assert [e["id"] for e in events.of("deployment_failed")] == [deployment]
        marathon.wait_deployed()
        assert marathon.get("/v2/apps/stuck").status_code == 404

        # Without the parameter ``force`` is true for this call (``@DefaultValue("true")`` upstream).
        marathon.request("POST", "/v2/apps", json={**stuck, "id": "/stuck-again"})
        assert marathon.request("DELETE", "/v2/apps/stuck-again").status_code == 200
    finally:
        events.close()


def test_metrics_have_marathons_names_in_json_and_prometheus_text(marathon: MarathonHarness) -> None:
    marathon.request("POST", "/v2/apps", json={"id": "/counted", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16})
    marathon.wait_deployed()
    data = marathon.get("/metrics").json()
    gauges, counters = data["gauges"], data["counters"]
    assert gauges["marathon.apps.active.gauge"]["value"] == 1
    assert gauges["marathon.instances.running.gauge"]["value"] == 1
    assert gauges["marathon.uptime.gauge.seconds"]["value"] > 0
    assert counters["marathon.tasks.launched.counter"]["count"] >= 1
    assert counters["marathon.mesos.offers.used.counter"]["count"] >= 1
    assert counters["marathon.mesos.task-updates.task-running.counter"]["count"] >= 1
    assert data["meters"]["marathon.http.responses.2xx.rate.meter"]["count"] >= 1
    assert data["timers"]["marathon.http.requests.duration.timer.seconds"]["count"] >= 1

    answer = marathon.get("/metrics/prometheus")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    text = answer.text
    assert re.search(r"^marathon_apps_active_gauge 1$", text, re.M)
    assert re.search(r'^marathon_http_requests_duration_timer_seconds\{quantile="0.99"\} ', text, re.M)
    assert "# TYPE marathon_tasks_launched_counter counter" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode in (0, 3), result.stderr  # 1 would be a parse error
    naming = re.compile(
        r'metric name should not include type|counter metrics should have "_total" suffix'
        r'|non-histogram and non-summary metrics should not have "_count" suffix'
    )
    remarks = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert all(naming.search(line) for line in remarks), remarks  # only Marathon's own names are remarked on
