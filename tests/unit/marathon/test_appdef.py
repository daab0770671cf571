"""App definitions: Marathon's defaults, its 400/422 shapes and paths, and the update merge rules."""

from __future__ import annotations

from typing import Any

import pytest

from mesolite.marathon.appdef import BadJson, Invalid, merge_update, normalize_app


def details(raw: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(Invalid) as info:
        normalize_app(raw)
    body = info.value.body()
    assert body["message"] == "Object is not valid"
    return {d["path"]: d["errors"] for d in body["details"]}


def test_defaults() -> None:
    app = normalize_app({"id": "a/b", "cmd": "sleep 1"})
    assert app["id"] == "/a/b"
    assert (app["cpus"], app["mem"], app["disk"], app["instances"], app["gpus"]) == (1.0, 128.0, 0.0, 1, 0)
    assert app["portDefinitions"] == [{"port": 0, "protocol": "tcp"}]
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
    assert (app["backoffSeconds"], app["backoffFactor"], app["maxLaunchDelaySeconds"]) == (1, 1.15, 3600)
    assert app["killSelection"] == "YOUNGEST_FIRST" and app["requirePorts"] is False


def test_relative_id_resolves_against_the_group() -> None:
    assert normalize_app({"id": "../c", "cmd": "x"}, base="/a/b")["id"] == "/a/c"
    assert normalize_app({"id": "db", "cmd": "x", "dependencies": ["../cache"]}, base="/p")["dependencies"] == [
        "/cache"
    ]


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"id": "Bad_ID", "cmd": "x"}, "/id", "must fully match regular expression"),
        ({"id": "a/tasks", "cmd": "x"}, "/id", "reserved keywords"),
        ({"id": "a", "cmd": "x", "cpus": -1}, "/cpus", "got -1.0, expected 0.0 or more"),
        ({"id": "a", "cmd": "x", "instances": -2}, "/instances", "expected 0.0 or more"),
        ({"id": "a"}, "/", "must either contain one of 'cmd' or 'args'"),
        ({"id": "a", "cmd": "x", "args": ["y"]}, "/", "must either contain one of 'cmd' or 'args'"),
        (
            {"id": "a", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 1.5}},
            "/upgradeStrategy/minimumHealthCapacity",
            "is greater than 1",
        ),
        (
            {"id": "a", "cmd": "x", "upgradeStrategy": {"maximumOverCapacity": -0.1}},
            "/upgradeStrategy/maximumOverCapacity",
            "is less than 0",
        ),
        (
            {"id": "a", "cmd": "x", "constraints": [["hostname", "BOGUS"]]},
            "/constraints(0)",
            "Constraint operator must be one of",
        ),
        ({"id": "a", "cmd": "x", "constraints": [["rack", "MAX_PER"]]}, "/constraints(0)", "not a valid number"),
        (
            {"id": "a", "cmd": "x", "constraints": [["rack", "LIKE", "("]]},
            "/constraints(0)",
            "not a valid regular expression",
        ),
        (
            {"id": "a", "cmd": "x", "healthChecks": [{"protocol": "HTTP", "portIndex": 3}]},
            "/healthChecks(0)",
            "port indices",
        ),
        (
            {"id": "a", "cmd": "x", "healthChecks": [{"protocol": "COMMAND"}]},
            "/healthChecks(0)/command",
            "requires a command",
        ),
        ({"id": "a", "cmd": "x", "backoffFactor": 0.5}, "/backoffFactor", "expected 1.0 or more"),
        ({"id": "a", "cmd": "x", "portDefinitions": [{"port": 80}, {"port": 80}]}, "/portDefinitions", "unique"),
        (
            {"id": "a", "cmd": "x", "portDefinitions": [{"port": 1, "name": "Bad"}]},
            "/portDefinitions(0)/name",
            "regular expression",
        ),
        ({"id": "a", "container": {"type": "DOCKER", "docker": {}}}, "/container/docker/image", "must not be empty"),
        (
            {
                "id": "a",
                "cmd": "x",
                "container": {"type": "DOCKER", "docker": {"image": "i", "portMappings": [{"containerPort": 1}]}},
            },
            "/container/docker/portMappings",
            "must be empty",
        ),
        (
            {"id": "a", "cmd": "x", "readinessChecks": [{"portName": "nope"}]},
            "/readinessChecks(0)",
            "defined port name",
        ),
        ({"id": "a", "cmd": "x", "killSelection": "RANDOM"}, "/killSelection", "error.unknown.enum.literal"),
    ],
)
def test_422_paths(raw: dict[str, Any], path: str, fragment: str) -> None:
    found = details(raw)
    assert path in found, found
    assert any(fragment in error for error in found[path]), found


def test_several_errors_grouped_by_path() -> None:
    found = details({"id": "a", "cmd": "x", "cpus": -1, "mem": -1})
    assert set(found) == {"/cpus", "/mem"}


@pytest.mark.parametrize(
    ("raw", "path", "code"),
    [
        ({"id": 5, "cmd": "x"}, "/id", "error.expected.jsstring"),
        ({"id": "a", "cmd": "x", "cpus": "lots"}, "/cpus", "error.expected.jsnumber"),
        ({"id": "a", "cmd": "x", "env": {"A": 1}}, "/env/A", "error.expected.jsstring"),
        ({"id": "a", "cmd": "x", "constraints": "hostname:UNIQUE"}, "/constraints", "error.expected.jsarray"),
        ({"id": "a", "cmd": "x", "healthChecks": [3]}, "/healthChecks(0)", "error.expected.jsobject"),
    ],
)
def test_400_types(raw: dict[str, Any], path: str, code: str) -> None:
    with pytest.raises(BadJson) as info:
        normalize_app(raw)
    assert info.value.body() == {"message": "Invalid JSON", "details": [{"path": path, "errors": [code]}]}


def test_bridge_apps_have_no_port_definitions_and_1_5_form_is_read() -> None:
    app = normalize_app(
        {
            "id": "web",
            "container": {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": [{"containerPort": 80}]},
            "networks": [{"mode": "container/bridge"}],
        }
    )
    assert app["portDefinitions"] == []
    assert app["container"]["docker"]["network"] == "BRIDGE"
    assert app["container"]["docker"]["portMappings"][0] == {
        "containerPort": 80,
        "hostPort": 0,
        "servicePort": 0,
        "protocol": "tcp",
    }


def test_ports_and_health_check_forms() -> None:
    app = normalize_app({"id": "a", "cmd": "x", "ports": [0, 0], "healthChecks": [{"protocol": "TCP", "portIndex": 1}]})
    assert app["portDefinitions"] == [{"port": 0, "protocol": "tcp"}, {"port": 0, "protocol": "tcp"}]
    assert app["healthChecks"][0]["gracePeriodSeconds"] == 300 and "path" not in app["healthChecks"][0]
    command = normalize_app({"id": "a", "cmd": "x", "healthChecks": [{"protocol": "COMMAND", "command": "true"}]})
    assert command["healthChecks"][0]["command"] == {"value": "true"}


def test_merge_update_drops_alternatives() -> None:
    existing = normalize_app({"id": "a", "cmd": "x", "ports": [0]})
    existing["portDefinitions"] = [{"port": 10001, "protocol": "tcp"}]
    merged = merge_update(existing, {"args": ["y"], "ports": [0, 0]})
    assert "cmd" not in merged and merged["args"] == ["y"] and "portDefinitions" not in merged
    assert normalize_app(merged)["portDefinitions"] == [{"port": 0, "protocol": "tcp"}, {"port": 0, "protocol": "tcp"}]
    assert normalize_app(merge_update(existing, {"instances": 3}))["portDefinitions"][0]["port"] == 10001
