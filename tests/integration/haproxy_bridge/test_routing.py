"""Service ports through a real HAProxy, following a real Marathon: traffic reaches every healthy task, follows
scaling within the 2 s the issue allows, and leaves a killed task."""

from __future__ import annotations

import time

from tests.cluster import free_port, wait_until
from tests.integration.haproxy_bridge.conftest import (
    BridgeHarness,
    deploy,
    echo_app,
    healthy_tasks,
    scale,
)


def test_service_port_reaches_both_tasks_then_a_third_within_2s(bridge: BridgeHarness) -> None:
    marathon = bridge.marathon
    port = free_port()
    tasks = deploy(marathon, echo_app("/web", port, instances=2))
    bridge.wait_seen(port, tasks, timeout=15)

    scale(marathon, "/web", 3)
    third: set[str] = wait_until(
        lambda: (healthy_tasks(marathon, "/web") - tasks) or None, 60, interval=0.02, what="a third healthy task"
    )
    healthy_at = time.monotonic()
    wait_until(lambda: third <= bridge.seen(port, 6), 10, interval=0.0, what="the third task behind the service port")
    latency = time.monotonic() - healthy_at
    assert latency < 2.0, f"the third task got traffic {latency:.2f}s after becoming healthy"
    assert bridge.seen(port, 30) == tasks | third

    victim = sorted(tasks)[0]
    response = marathon.request("DELETE", f"/v2/apps/web/tasks/{victim}")
    assert response.status_code == 200, response.text
    wait_until(lambda: victim not in bridge.routed("/web"), 15, what="the killed task to leave the backend")
    answered = bridge.seen(port, 40)
    assert victim not in answered and answered
