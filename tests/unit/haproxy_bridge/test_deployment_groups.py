"""Blue/green groups as the bridge routes them: both colours in one backend named after the group, bound on the
original port, old tasks drained (``disabled``) one for each healthy new task beyond the target."""

from __future__ import annotations

from typing import Any

from mesolite.haproxy_bridge.routing import RoutingSettings, build_routing

CHECK = [{"protocol": "HTTP", "path": "/health", "portIndex": 0}]


def colour(
    name: str, port: int, instances: int, tasks: list[tuple[str, bool]], started: str, **labels: str
) -> dict[str, Any]:
    return {
        "id": f"/shop-{name}",
        "instances": instances,
        "portDefinitions": [{"port": port}],
        "healthChecks": CHECK,
        "labels": {
            "HAPROXY_DEPLOYMENT_GROUP": "shop",
            "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
            "HAPROXY_0_PORT": "10000",
            "HAPROXY_DEPLOYMENT_COLOUR": name,
            "HAPROXY_DEPLOYMENT_STARTED_AT": started,
            "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3",
            **labels,
        },
        "tasks": [
            {
                "id": task_id,
                "host": "127.0.0.1",
                "ports": [31000 + int(task_id[-1]) + (10 if name == "green" else 0)],
                "state": "TASK_RUNNING",
                "healthCheckResults": [{"alive": alive}],
            }
            for task_id, alive in tasks
        ],
    }


def servers(apps: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    routing = build_routing(apps, RoutingSettings())
    assert routing.problems == {}
    (service,) = routing.services
    assert (service.app_id, service.backend, service.port) == ("/shop", "shop_10000", 10000)
    return sorted((s.task_id, s.draining) for s in service.servers)


def test_one_colour_alone_is_the_group() -> None:
    blue = colour("blue", 10000, 3, [("b1", True), ("b2", True), ("b3", True)], "2024-01-01T00:00:00")
    assert servers([blue]) == [("b1", False), ("b2", False), ("b3", False)]
    green = colour("green", 10001, 3, [("g1", True)], "2024-01-02T00:00:00")
    assert servers([green]) == [("g1", False)]  # bound on HAPROXY_0_PORT, not its own service port


def test_old_tasks_drain_as_new_ones_turn_healthy() -> None:
    blue = colour("blue", 10000, 3, [("b1", True), ("b2", True), ("b3", True)], "2024-01-01T00:00:00")
    starting = colour("green", 10001, 1, [("g1", False)], "2024-01-02T00:00:00.5")
    assert servers([blue, starting]) == [("b1", False), ("b2", False), ("b3", False)]
    one = colour("green", 10001, 1, [("g1", True)], "2024-01-02T00:00:00.5")
    assert servers([one, blue]) == [("b1", True), ("b2", False), ("b3", False), ("g1", False)]
    # zdd killed b1 (old instances 2) and scaled green to 3; two of them healthy: 2 + 2 - 3 = 1 drained.
    blue2 = colour("blue", 10000, 2, [("b2", True), ("b3", True)], "2024-01-01T00:00:00")
    three = colour("green", 10001, 3, [("g1", True), ("g2", True), ("g3", False)], "2024-01-02T00:00:00.5")
    assert servers([blue2, three]) == [("b2", True), ("b3", False), ("g1", False), ("g2", False)]
    all_three = colour("green", 10001, 3, [("g1", True), ("g2", True), ("g3", True)], "2024-01-02T00:00:00.5")
    assert servers([blue2, all_three])[:2] == [("b2", True), ("b3", True)]


def test_hybrid_groups_follow_the_last_scaled_colour() -> None:
    blue = colour("blue", 10000, 3, [("b1", True), ("b2", True), ("b3", True)], "2024-01-01T00:00:00")
    green = colour("green", 10001, 1, [("g1", True)], "2024-01-02T00:00:00", HAPROXY_DEPLOYMENT_NEW_INSTANCES="1")
    blue["versionInfo"] = {"lastScalingAt": "2024-01-03T00:00:00Z"}
    green["versionInfo"] = {"lastScalingAt": "2024-01-02T00:00:00Z"}
    # Blue was scaled last (zdd --complete-prev growing it back): blue is the one taking over, green drains.
    assert ("g1", True) in servers([blue, green])
    blue["versionInfo"] = {"lastScalingAt": "2024-01-01T00:00:00Z"}
    assert ("g1", False) in servers([blue, green])  # green scaled last: it is the new one, never drained


def test_bad_deployment_labels_leave_that_app_out() -> None:
    good = colour("blue", 10000, 1, [("b1", True)], "2024-01-01T00:00:00")
    bad = colour("green", 10001, 1, [("g1", True)], "yesterday")
    routing = build_routing([good, bad], RoutingSettings())
    assert "not an ISO 8601 time" in routing.problems["/shop-green"]
    assert [s.task_id for s in routing.services[0].servers] == ["b1"]
