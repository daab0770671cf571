"""What Marathon hands to Mesos: resources out of an offer, ports, environment, Docker ContainerInfo, health checks."""

from __future__ import annotations

from typing import Any

from mesolite.marathon import taskinfo
from mesolite.marathon.appdef import normalize_app
from mesolite.marathon.offers import OfferResources, fit


def offer(ports: tuple[int, int] = (31000, 31005), cpus: float = 2.0, role: str = "*") -> dict[str, Any]:
    alloc = {"allocation_info": {"role": "*"}}
    return {
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": role, **alloc},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024.0}, "role": role, **alloc},
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": ports[0], "end": ports[1]}]},
                "role": role,
                **alloc,
            },
        ]
    }


def versioned(raw: dict[str, Any]) -> dict[str, Any]:
    app = normalize_app(raw)
    app["version"] = "2024-01-01T00:00:00.000Z"
    app["versionInfo"] = {"lastScalingAt": app["version"], "lastConfigChangeAt": app["version"]}
    return app


def test_fit_takes_scalars_and_ports_until_exhausted() -> None:
    app = versioned({"id": "a", "cmd": "x", "cpus": 0.5, "mem": 100, "ports": [0, 0]})
    resources = OfferResources(offer())
    placed = [fit(app, resources) for _ in range(4)]
    assert [p[0] for p in placed[:3]] == [[31000, 31001], [31002, 31003], [31004, 31005]]  # type: ignore[index]
    assert placed[3] == "InsufficientPorts"
    ports, used = placed[0]  # type: ignore[misc]
    assert {
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 0.5},
        "role": "*",
        "allocation_info": {"role": "*"},
    } in used
    assert fit(versioned({"id": "b", "cmd": "x", "cpus": 5}), OfferResources(offer())) == "InsufficientCpus"


def test_require_ports_and_accepted_roles() -> None:
    app = versioned(
        {"id": "a", "cmd": "x", "cpus": 0.1, "mem": 1, "portDefinitions": [{"port": 31003}], "requirePorts": True}
    )
    assert fit(app, OfferResources(offer()))[0] == [31003]  # type: ignore[index]
    assert fit(app, OfferResources(offer(ports=(31010, 31020)))) == "InsufficientPorts"
    reserved = versioned({"id": "r", "cmd": "x", "cpus": 0.1, "mem": 1, "acceptedResourceRoles": ["prod"]})
    assert fit(reserved, OfferResources(offer())) == "InsufficientCpus"


def test_command_app_environment() -> None:
    app = versioned(
        {
            "id": "/prod/web",
            "cmd": "serve",
            "cpus": 0.1,
            "mem": 1,
            "labels": {"tier": "front"},
            "portDefinitions": [{"port": 10001, "name": "http"}],
            "env": {"X": "1"},
        }
    )
    info = taskinfo.build(app, "prod_web.1", "agent-1", "host-1", [31000], [])
    env = {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}
    assert env["PORT0"] == env["PORT"] == env["PORT_HTTP"] == env["PORT_10001"] == "31000"
    assert env["PORTS"] == "31000" and env["HOST"] == "host-1" and env["X"] == "1"
    assert env["MARATHON_APP_ID"] == "/prod/web" and env["MESOS_TASK_ID"] == "prod_web.1"
    assert env["MARATHON_APP_LABEL_TIER"] == "front" and env["MARATHON_APP_LABELS"] == "TIER"
    assert info["name"] == "web.prod" and info["command"] == {**info["command"], "shell": True, "value": "serve"}
    assert info["discovery"]["ports"]["ports"] == [{"number": 31000, "protocol": "tcp", "name": "http"}]


def test_docker_bridge_app_becomes_a_docker_container_info() -> None:
    app = versioned(
        {
            "id": "redis",
            "cpus": 0.25,
            "mem": 64,
            "container": {
                "type": "DOCKER",
                "docker": {
                    "image": "redis:3",
                    "network": "BRIDGE",
                    "portMappings": [
                        {"containerPort": 6379, "hostPort": 0, "protocol": "tcp"},
                        {"containerPort": 0, "hostPort": 31005, "protocol": "udp,tcp"},
                    ],
                    "parameters": [{"key": "label", "value": "a=b"}],
                    "privileged": True,
                },
                "volumes": [{"containerPath": "/data", "hostPath": "/srv/data", "mode": "RW"}],
            },
            "healthChecks": [{"protocol": "MESOS_TCP", "portIndex": 0}],
        }
    )
    host_ports, resources = fit(app, OfferResources(offer()))  # type: ignore[misc]
    assert host_ports == [31000, 31005]
    info = taskinfo.build(app, "redis.1", "agent", "h", host_ports, resources)
    assert info["container"] == {
        "type": "DOCKER",
        "volumes": [{"container_path": "/data", "mode": "RW", "host_path": "/srv/data"}],
        "docker": {
            "image": "redis:3",
            "network": "BRIDGE",
            "privileged": True,
            "force_pull_image": False,
            "parameters": [{"key": "label", "value": "a=b"}],
            "port_mappings": [
                {"host_port": 31000, "container_port": 6379, "protocol": "tcp"},
                {"host_port": 31005, "container_port": 31005, "protocol": "udp"},
                {"host_port": 31005, "container_port": 31005, "protocol": "tcp"},
            ],
        },
    }
    assert info["command"]["shell"] is False and "value" not in info["command"]  # the image's entrypoint
    assert info["health_check"]["type"] == "TCP" and info["health_check"]["tcp"] == {"port": 6379}
    env = {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}
    assert env["PORT_6379"] == "31000" and env["MARATHON_APP_DOCKER_IMAGE"] == "redis:3"


def test_mesos_executed_checks_travel_in_the_task() -> None:
    command = versioned(
        {
            "id": "c",
            "cmd": "x",
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}, "intervalSeconds": 2}],
        }
    )
    check = taskinfo.build(command, "c.1", "a", "h", [31000], [])["health_check"]
    assert check["type"] == "COMMAND" and check["command"]["value"] == "true" and check["interval_seconds"] == 2.0
    http = versioned({"id": "m", "cmd": "x", "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/ok"}]})
    assert taskinfo.build(http, "m.1", "a", "h", [31007], [])["health_check"]["http"] == {"port": 31007, "path": "/ok"}
    marathon_side = versioned({"id": "n", "cmd": "x", "healthChecks": [{"protocol": "HTTP"}]})
    assert "health_check" not in taskinfo.build(marathon_side, "n.1", "a", "h", [31000], [])


def test_an_executor_path_runs_the_task_under_that_custom_executor() -> None:
    app = versioned({"id": "g", "cmd": "greet --loud", "executor": "/opt/exec/greeter"})
    task = taskinfo.build(app, "g.1", "agent", "host", [31000], [])
    assert "command" not in task
    executor = task["executor"]
    assert executor["executor_id"] == {"value": "marathon-g.1"}
    assert executor["command"]["value"] == "chmod ug+rx '/opt/exec/greeter' && exec '/opt/exec/greeter' greet --loud"
    env = {v["name"]: v["value"] for v in executor["command"]["environment"]["variables"]}
    assert env["PORT0"] == "31000" and env["MESOS_TASK_ID"] == "g.1"
    plain = taskinfo.build(versioned({"id": "p", "cmd": "x", "executor": "//cmd"}), "p.1", "agent", "host", [], [])
    assert "executor" not in plain and plain["command"]["value"] == "x"


def test_a_pod_takes_the_executors_share_and_each_containers_from_one_offer() -> None:
    from mesolite.marathon.offers import fit_pod
    from mesolite.marathon.pods import normalize_pod

    pod = normalize_pod(
        {
            "id": "p",
            "containers": [
                {"name": "a", "exec": {"command": {"shell": "x"}}, "resources": {"cpus": 0.5, "mem": 100}},
                {
                    "name": "b",
                    "exec": {"command": {"shell": "y"}},
                    "resources": {"cpus": 0.25, "mem": 50},
                    "endpoints": [{"name": "web"}, {"name": "fixed", "hostPort": 31004}],
                },
            ],
        }
    )
    given = offer(cpus=1.0)
    given["resources"].append({"name": "disk", "type": "SCALAR", "scalar": {"value": 100.0}, "role": "*"})
    resources = OfferResources(given)
    got = fit_pod(pod, resources)
    assert not isinstance(got, str)
    host_ports, executor, containers = got
    assert host_ports == [31000, 31004]

    def amounts(resources: list[dict[str, Any]]) -> set[tuple[str, float]]:
        return {(r["name"], r["scalar"]["value"]) for r in resources if r["name"] != "ports"}

    assert amounts(executor) == {("cpus", 0.1), ("mem", 32.0), ("disk", 10.0)}
    assert [amounts(c) for c in containers] == [{("cpus", 0.5), ("mem", 100.0)}, {("cpus", 0.25), ("mem", 50.0)}]
    assert sum(1 for r in executor if r["name"] == "ports") == 2  # every host port travels with the executor
    assert fit_pod(pod, resources) == "InsufficientCpus"  # 0.15 cpus left
