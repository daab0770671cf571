"""Pod definitions, their task groups and their status, without a cluster: Marathon's defaults and 422 details,
the LAUNCH_GROUP Marathon's TaskGroupBuilder would send, PodStatus as PodStatusConversion computes it, and pod
deployments planned like apps'."""

from __future__ import annotations

from typing import Any

import pytest

from mesolite.core.store import MemoryStore
from mesolite.marathon import instances, podstatus, taskgroup
from mesolite.marathon.appdef import BadJson, Invalid
from mesolite.marathon.deployments import SCALE, START, action_json, build_steps
from mesolite.marathon.errors import AlreadyExists, Locked
from mesolite.marathon.pods import normalize_pod
from mesolite.marathon.service import Marathon, MarathonConfig
from mesolite.marathon.state import Task


def pod(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "/shop/web",
        "labels": {"team": "a"},
        "environment": {"LEVEL": "pod", "ONLY_POD": "1"},
        "volumes": [{"name": "scratch"}, {"name": "logs", "host": "/var/log"}],
        "containers": [
            {
                "name": "server",
                "exec": {"command": {"shell": "serve"}},
                "environment": {"LEVEL": "container"},
                "endpoints": [{"name": "http"}, {"name": "admin", "hostPort": 8081, "protocol": ["tcp", "udp"]}],
                "healthCheck": {"http": {"endpoint": "http", "path": "/ok"}, "intervalSeconds": 30},
                "volumeMounts": [{"name": "scratch", "mountPath": "data"}, {"name": "logs", "mountPath": "/logs"}],
                "lifecycle": {"killGracePeriodSeconds": 2.5},
            },
            {
                "name": "sidecar",
                "exec": {"command": {"argv": ["/bin/tail", "-f", "data/x"]}},
                "image": {"kind": "DOCKER", "id": "busybox", "forcePull": True},
                "resources": {"cpus": 0.25, "mem": 64},
                "volumeMounts": [{"name": "scratch", "mountPath": "data", "readOnly": True}],
                "healthCheck": {"exec": {"command": {"shell": "true"}}},
            },
        ],
    }
    raw.update(extra)
    return normalize_pod(raw)


def errors_of(raw: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(Invalid) as invalid:
        normalize_pod(raw)
    return {d["path"]: d["errors"] for d in invalid.value.body()["details"]}


def test_defaults_are_marathons() -> None:
    p = normalize_pod({"id": "solo", "containers": [{"name": "c", "exec": {"command": {"shell": "sleep 1"}}}]})
    assert p["id"] == "/solo"
    assert p["networks"] == [{"mode": "host"}]
    assert p["scaling"] == {"kind": "fixed", "instances": 1}
    assert p["executorResources"] == {"cpus": 0.1, "mem": 32.0, "disk": 10.0}
    assert p["containers"][0]["resources"] == {"cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0}
    scheduling = p["scheduling"]
    assert scheduling["backoff"] == {"backoff": 1.0, "backoffFactor": 1.15, "maxLaunchDelay": 300.0}
    assert scheduling["upgrade"] == {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
    assert scheduling["unreachableStrategy"] == {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
    assert scheduling["killSelection"] == "YOUNGEST_FIRST"
    web = pod()
    assert web["containers"][0]["endpoints"][0] == {"name": "http", "hostPort": 0, "protocol": ["tcp"]}
    assert (
        web["containers"][0]["healthCheck"]["timeoutSeconds"] == 20
        and "exec" not in web["containers"][0]["healthCheck"]
    )


def test_validation_answers_with_marathons_paths() -> None:
    raw = {
        "id": "/p",
        "volumes": [{"name": "v"}, {"name": "v"}],
        "containers": [
            {"name": "a", "exec": {"command": {"shell": "x"}}, "endpoints": [{"name": "e", "containerPort": 80}]},
            {
                "name": "a",
                "exec": {"command": {"shell": "x"}},
                "endpoints": [{"name": "e"}],
                "healthCheck": {"tcp": {"endpoint": "nope"}, "exec": {"command": {"shell": "true"}}},
                "volumeMounts": [{"name": "missing", "mountPath": "m"}],
            },
        ],
        "executorResources": {"mem": 8},
        "scheduling": {"unreachableStrategy": {"inactiveAfterSeconds": 9, "expungeAfterSeconds": 3}},
    }
    errors = errors_of(raw)
    assert errors["/containers"] == ["container names must be unique"]
    assert errors["/"] == ["endpoint names nust be unique across all containers"]
    assert errors["/volumes"] == ["volume names must be unique"]
    assert errors["/containers(0)/endpoints(0)/containerPort"] == ["is not allowed when using host-mode networking"]
    assert errors["/containers(1)/healthCheck"] == ["Only one of http, tcp, or command may be specified"]
    assert errors["/containers(1)/volumeMounts(0)/name"] == ["Referenced Volume in VolumeMount should exist"]
    assert errors["/executorResources/mem"] == ["got 8.0, expected 32.0 or more"]
    assert errors["/scheduling/unreachableStrategy/inactiveAfterSeconds"] == [
        "inactiveAfterSeconds (9) must be less or equal to expungeAfterSeconds, which is 3"
    ]
    assert errors_of({"id": "/p", "containers": []}) == {"/containers": ["must not be empty"]}
    with pytest.raises(BadJson):
        normalize_pod({"id": "/p", "containers": [{"name": "c", "resources": {"cpus": "one"}}]})


def test_what_the_agents_cannot_do_is_refused_not_dropped() -> None:
    base = {"name": "c", "exec": {"command": {"shell": "x"}}}
    errors = errors_of(
        {
            "id": "/p",
            "secrets": {"s": {"source": "x"}},
            "networks": [{"mode": "container", "name": "dcos"}],
            "volumes": [{"name": "p", "persistent": {"size": 10}}],
            "containers": [{**base, "tty": True, "check": {}, "volumeMounts": [{"name": "p", "mountPath": "d"}]}],
        }
    )
    assert errors["/secrets"] == ["Feature secrets is not enabled. Enable with --enable_features secrets)"]
    assert "no container networks" in errors["/networks(0)/mode"][0]
    assert "persistent volumes" in errors["/volumes(0)/persistent"][0]
    assert set(errors) >= {"/containers(0)/tty", "/containers(0)/check"}


def test_the_task_group_is_upstreams() -> None:
    p = {**pod(), "version": "2024-01-01T00:00:00.000Z"}
    instance = "shop_web.instance-1234"
    operation = taskgroup.build(
        p, instance, "fw", "agent-1", "node-a", [31000, 8081], [{"name": "ports"}], [[{"name": "cpus"}], []]
    )
    assert operation["type"] == "LAUNCH_GROUP"
    executor = operation["launch_group"]["executor"]
    assert executor["type"] == "DEFAULT" and executor["executor_id"] == {"value": "instance-shop_web.1234"}
    assert executor["framework_id"] == {"value": "fw"} and executor["labels"]["labels"] == [
        {"key": "team", "value": "a"}
    ]
    server, sidecar = operation["launch_group"]["task_group"]["tasks"]
    assert server["task_id"] == {"value": f"{instance}.server"} and server["name"] == "server"
    assert server["command"]["shell"] is True and server["command"]["value"] == "serve"
    env = {v["name"]: v["value"] for v in server["command"]["environment"]["variables"]}
    assert env["LEVEL"] == "container" and env["ONLY_POD"] == "1" and env["HOST"] == "node-a"
    assert env["MARATHON_APP_ID"] == "/shop/web" and env["MARATHON_CONTAINER_ID"] == "server"
    assert env["MESOS_EXECUTOR_ID"] == "instance-shop_web.1234" and env["MARATHON_CONTAINER_RESOURCE_MEM"] == "128.0"
    assert env["ENDPOINT_HTTP"] == env["EP_HOST_HTTP"] == "31000" and env["ENDPOINT_ADMIN"] == "8081"
    assert env["MARATHON_APP_LABEL_TEAM"] == "a"
    assert server["container"]["volumes"] == [
        {
            "container_path": "data",
            "mode": "RW",
            "source": {"type": "SANDBOX_PATH", "sandbox_path": {"type": "PARENT", "path": "volumes/scratch"}},
        },
        {"container_path": "/logs", "mode": "RW", "host_path": "/var/log"},
    ]
    assert server["health_check"]["type"] == "HTTP" and server["health_check"]["http"] == {
        "port": 31000,
        "path": "/ok",
        "scheme": "http",
    }
    assert server["kill_policy"] == {"grace_period": {"nanoseconds": 2_500_000_000}}
    assert server["discovery"]["name"] == "web.shop"
    assert [(p["name"], p["number"], p["protocol"]) for p in server["discovery"]["ports"]["ports"]] == [
        ("http", 31000, "tcp"),
        ("admin", 8081, "tcp"),
        ("admin", 8081, "udp"),
    ]
    # argv with an image is appended to the image's entrypoint (no value) unless overrideEntrypoint.
    assert sidecar["command"]["shell"] is False and "value" not in sidecar["command"]
    assert sidecar["command"]["arguments"] == ["/bin/tail", "-f", "data/x"]
    assert sidecar["container"]["mesos"]["image"] == {"type": "DOCKER", "docker": {"name": "busybox"}, "cached": False}
    assert sidecar["container"]["volumes"][0]["mode"] == "RO"
    assert sidecar["health_check"]["command"] == {"shell": True, "value": "true"}


def running_instance(p: dict[str, Any], healthy: dict[str, bool | None]) -> Task:
    task = Task(
        id="shop_web.instance-1",
        app_id=p["id"],
        agent_id="a",
        host="h",
        ports=[31000, 8081],
        service_ports=[],
        version="v",
        config_version="v",
        staged_at="t",
        containers=instances.new_containers(p, "shop_web.instance-1", [31000, 8081]),
    )
    for entry in task.containers:
        status: dict[str, Any] = {"state": "TASK_RUNNING"}
        if healthy.get(entry["name"]) is not None:
            status["healthy"] = healthy[entry["name"]]
        instances.apply_container_status(task, entry, status)
    return task


def test_pod_status_goes_degraded_then_stable_as_checks_report() -> None:
    p = {**pod(), "version": "v"}
    unreported = podstatus.instance_status(p, running_instance(p, {}))
    assert unreported["status"] == "DEGRADED" and unreported["message"] == "at least one container is not healthy"
    condition = unreported["containers"][0]["conditions"][0]
    assert (condition["value"], condition["reason"]) == ("false", "health-unreported-by-mesos")
    half = podstatus.instance_status(p, running_instance(p, {"server": True}))
    assert half["status"] == "DEGRADED"
    stable = podstatus.instance_status(p, running_instance(p, {"server": True, "sidecar": True}))
    assert stable["status"] == "STABLE" and "message" not in stable
    http = stable["containers"][0]["endpoints"][0]
    assert http == {"name": "http", "allocatedHostPort": 31000, "healthy": True}
    assert stable["resources"]["cpus"] == pytest.approx(0.1 + 1.0 + 0.25)
    sick = podstatus.instance_status(p, running_instance(p, {"server": True, "sidecar": False}))
    assert sick["status"] == "DEGRADED"
    task = running_instance(p, {"server": True, "sidecar": True})
    instances.apply_container_status(task, task.containers[1], {"state": "TASK_UNREACHABLE"})
    assert task.state == "TASK_UNREACHABLE"
    assert podstatus.instance_status(p, task)["message"] == "pod instance has become unreachable"
    instances.apply_container_status(task, task.containers[0], {"state": "TASK_FAILED"})
    assert task.state == "TASK_FAILED" and instances.condition(task) == "Failed"


def test_a_finished_container_leaves_the_instance_running() -> None:
    p = {**pod(), "version": "v"}
    task = running_instance(p, {"server": True, "sidecar": True})
    instances.apply_container_status(task, task.containers[1], {"state": "TASK_FINISHED"})
    assert task.state == "TASK_RUNNING" and instances.pod_healthy(task, p) is True


def test_pods_deploy_like_apps_and_render_as_pods() -> None:
    m = Marathon(MarathonConfig(master="127.0.0.1:1", work_dir=""), MemoryStore())
    m.loaded.set()
    created = m.create_pod(pod())
    assert created.affected_apps == created.affected_pods == ["/shop/web"]
    assert [[a["action"] for a in step] for step in created.steps] == [[START], [SCALE]]
    assert action_json(created.steps[1][0]) == {"action": SCALE, "pod": "/shop/web"}
    assert m.state.groups["/shop"]["id"] == "/shop"
    with pytest.raises(Locked):
        m.update_pod({**pod(), "scaling": {"kind": "fixed", "instances": 2}})
    scaled = m.update_pod({**pod(), "scaling": {"kind": "fixed", "instances": 2}}, force=True)
    assert [a["action"] for a in scaled.steps[0]] == [SCALE] and scaled.steps[0][0]["instances"] == 2
    assert m.state.pods["/shop/web"]["versionInfo"]["lastConfigChangeAt"] == created.version
    with pytest.raises(AlreadyExists):
        m.create_pod(pod())
    from mesolite.marathon.appdef import normalize_app

    with pytest.raises(AlreadyExists):
        m.create_app(normalize_app({"id": "/shop/web", "cmd": "x"}))
    restarted = m.update_pod(pod(labels={"team": "b"}), force=True)
    assert restarted.steps[0][0]["action"] == "RestartApplication"
    steps, affected = build_steps({"/shop/web": m.state.pods["/shop/web"]}, {}, {}, {})
    assert action_json(steps[0][0]) == {"action": "StopApplication", "pod": "/shop/web"} and affected == ["/shop/web"]
    m.delete_group("/shop", force=True)
    assert m.state.pods == {}
