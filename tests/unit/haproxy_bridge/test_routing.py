"""Marathon apps → what HAProxy routes: marathon-lb's labels, health filtering, groups, port clashes, the legacy
text/plain source."""

from __future__ import annotations

import socket
from typing import Any

from mesolite.haproxy_bridge.routing import (
    RoutingSettings,
    backend_name,
    build_routing,
    parse_tasks_text,
    port_in_use,
    task_routable,
)


def task(task_id: str, port: int, state: str = "TASK_RUNNING", alive: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": task_id, "host": "127.0.0.1", "ports": [port, port + 1], "state": state}
    if alive is not None:
        out["healthCheckResults"] = [{"alive": alive}]
    return out


def app(app_id: str, ports: list[int], labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": app_id, "portDefinitions": [{"port": p} for p in ports], "labels": labels or {}, **extra}


def build(apps: list[dict[str, Any]], **settings: Any):  # Routing
    return build_routing(
        apps, RoutingSettings(**settings), resolve=lambda host: "10.0.0.1" if host == "node1" else host
    )


def test_one_service_per_port_and_one_server_per_running_task() -> None:
    routing = build([app("/prod/web", [10000, 10001], tasks=[task("a", 31000), task("b", 31002, "TASK_STAGING")])])
    assert [(s.backend, s.port, s.index, s.mode) for s in routing.services] == [
        ("prod_web_10000", 10000, 0, "tcp"),
        ("prod_web_10001", 10001, 1, "tcp"),
    ]
    assert [(v.address, v.port, v.task_id) for v in routing.services[1].servers] == [("127.0.0.1", 31001, "a")]
    assert backend_name("/a/b.c", 80) == "a_b.c_80"


def test_health_checked_apps_route_only_healthy_tasks_and_go_http() -> None:
    checks = [{"protocol": "HTTP", "path": "/ping", "portIndex": 0}]
    tasks = [task("up", 31000, alive=True), task("down", 31002, alive=False), task("unknown", 31004)]
    routing = build([app("/api", [10000], healthChecks=checks, tasks=tasks)])
    (service,) = routing.services
    assert [s.task_id for s in service.servers] == ["up"]
    assert service.mode == "http" and service.health_path == "/ping"
    assert task_routable({"startedAt": "2020-01-01T00:00:00Z"}, {})  # old Marathons: no state field
    assert not task_routable({"state": "TASK_KILLING"}, {})


def test_labels() -> None:
    labels = {
        "HAPROXY_0_VHOST": "a.example.com, b.example.com",
        "HAPROXY_0_BALANCE": "leastconn",
        "HAPROXY_0_PATH": "/api",
        "HAPROXY_0_STICKY": "true",
        "HAPROXY_0_BACKEND_WEIGHT": "5",
        "HAPROXY_1_PORT": "20000",
        "HAPROXY_1_BIND_ADDR": "10.0.0.9",
        "HAPROXY_1_BIND_OPTIONS": "accept-proxy",
        "HAPROXY_2_ENABLED": "false",
    }
    routing = build([app("/site", [10000, 10001, 10002], labels, tasks=[task("t", 31000)])])
    first, second = routing.services
    assert first.vhosts == ("a.example.com", "b.example.com") and first.mode == "http"
    assert (first.balance, first.path, first.sticky, first.weight) == ("leastconn", "/api", True, 5)
    assert (second.port, second.bind_address, second.bind_options, second.mode) == (
        20000,
        "10.0.0.9",
        "accept-proxy",
        "tcp",
    )
    assert routing.vhost_services == [first]


def test_labels_that_cannot_be_right_leave_the_app_out_with_a_reason() -> None:
    cases = {
        "/newline": {"HAPROXY_0_BIND_OPTIONS": "ssl\nlisten evil"},
        "/mode": {"HAPROXY_0_MODE": "udp"},
        "/port": {"HAPROXY_0_PORT": "http"},
        "/vhost": {"HAPROXY_0_VHOST": "bad host"},
        "/tcpvhost": {"HAPROXY_0_VHOST": "a.example.com", "HAPROXY_0_MODE": "tcp"},
        "/sticky": {"HAPROXY_0_STICKY": "maybe"},
    }
    apps = [app(app_id, [10000 + i], labels) for i, (app_id, labels) in enumerate(cases.items())]
    routing = build([*apps, app("/fine", [11000])])
    assert [s.app_id for s in routing.services] == ["/fine"]
    assert set(routing.problems) == set(cases)
    assert "line break" in routing.problems["/newline"] and "udp" in routing.problems["/mode"]


def test_groups_and_strict_mode() -> None:
    apps = [
        app("/ext", [10000], {"HAPROXY_GROUP": "external"}),
        app("/both", [10001, 10002], {"HAPROXY_GROUP": "internal", "HAPROXY_1_GROUP": "external,internal"}),
        app("/none", [10003]),
        app("/on", [10004], {"HAPROXY_0_ENABLED": "true"}),
    ]
    assert [s.port for s in build(apps).services] == [10000, 10001, 10002, 10003, 10004]
    assert [s.port for s in build(apps, groups=["external"]).services] == [10000, 10002]
    assert [s.port for s in build(apps, strict_mode=True).services] == [10004]


def test_a_port_is_claimed_once_and_never_the_bridges_own() -> None:
    routing = build(
        [app("/a", [10000]), app("/b", [10000]), app("/c", [9090]), app("/zero", [0])],
        reserved_ports={9090: "stats"},
    )
    assert [s.app_id for s in routing.services] == ["/a"]
    assert "already used by /a" in routing.problems["/b"] and "stats" in routing.problems["/c"]


def test_unresolvable_hosts_are_skipped_and_names_resolved() -> None:
    tasks = [dict(task("x", 31000), host="node1"), dict(task("y", 31002), host="nowhere.invalid")]
    routing = build_routing(
        [app("/r", [10000], tasks=tasks)], RoutingSettings(), resolve=lambda h: "10.0.0.1" if h == "node1" else None
    )
    assert [(s.host, s.address) for s in routing.services[0].servers] == [("node1", "10.0.0.1")]


def test_legacy_text_plain_tasks() -> None:
    text = "web\t10000\tnode1:31000\tnode2:31005\t\nweb\t10001\tnode1:31001\tnode2:31006\t\nworker\t \tnode1\t\n"
    apps = parse_tasks_text(text)
    assert [a["id"] for a in apps] == ["/web"]
    routing = build(apps)
    assert [(s.port, [(v.host, v.port) for v in s.servers]) for s in routing.services] == [
        (10000, [("node1", 31000), ("node2", 31005)]),
        (10001, [("node1", 31001), ("node2", 31006)]),
    ]


def test_port_in_use_sees_other_programs_only() -> None:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        assert "in use" in (port_in_use("127.0.0.1", plain.getsockname()[1]) or "")
    with socket.socket() as shared:  # HAProxy's own listeners are SO_REUSEPORT
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        shared.bind(("127.0.0.1", 0))
        shared.listen()
        assert port_in_use("127.0.0.1", shared.getsockname()[1]) is None
