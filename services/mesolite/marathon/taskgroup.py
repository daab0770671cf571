"""From a pod definition and what one offer gave it to the ``LAUNCH_GROUP`` operation Marathon sends.

Marathon's ``TaskGroupBuilder``: one task group per instance, run by the DEFAULT executor (``ExecutorInfo`` with the
executor's resources and every host port, labelled with the pod's labels), one ``TaskInfo`` per container named
``<instance id>.<container>``. Each task gets its own resources, its command (``shell``; ``argv`` appended to the
image's entrypoint unless ``overrideEntrypoint``; neither: the image's own), its image, its volume mounts
(an ephemeral volume is the executor's sandbox path ``volumes/<name>``, shared by every container mounting it; a
host volume is a host path), its health check as a Mesos ``HealthCheck`` on the endpoint's port, its kill grace
period and a ``DiscoveryInfo``. The environment is layered as upstream: pod < container < ``HOST`` < the task's
context (``MESOS_TASK_ID``, ``MARATHON_APP_ID``, ``MARATHON_CONTAINER_ID``, its resources, ...) < label variables
< endpoint variables (``ENDPOINT_<NAME>``, ``EP_HOST_<NAME>``, ``EP_CONTAINER_<NAME>``).
"""

from __future__ import annotations

import re
from typing import Any

from mesolite.marathon import appdef, pathid

NANOS = 1_000_000_000
EPHEMERAL_PREFIX = "volumes/"
_ENV_ESCAPE = re.compile(r"[^A-Z0-9_]+")


def executor_id(instance_id: str, pod_id: str) -> str:
    """``instance-<safe pod id>.<uuid>`` for the instance ``<safe pod id>.instance-<uuid>``."""
    safe = pathid.safe(pod_id)
    return f"instance-{safe}.{instance_id[len(safe) + len('.instance-') :]}"


def build(
    pod: dict[str, Any],
    instance_id: str,
    framework_id: str,
    agent_id: str,
    host: str,
    host_ports: list[int],
    executor_resources: list[dict[str, Any]],
    container_resources: list[list[dict[str, Any]]],
) -> dict[str, Any]:
    executor: dict[str, Any] = {
        "type": "DEFAULT",
        "executor_id": {"value": executor_id(instance_id, pod["id"])},
        "framework_id": {"value": framework_id},
        "resources": executor_resources,
        "container": {"type": "MESOS", "linux_info": {"share_cgroups": False}},
    }
    if pod.get("labels"):
        executor["labels"] = _labels(pod["labels"])
    allocated = _allocated_ports(pod, host_ports)
    endpoint_env = _endpoint_env(pod, allocated)
    tasks = [
        _task(pod, spec, instance_id, agent_id, host, allocated, endpoint_env, resources)
        for spec, resources in zip(pod["containers"], container_resources, strict=True)
    ]
    return {"type": "LAUNCH_GROUP", "launch_group": {"executor": executor, "task_group": {"tasks": tasks}}}


def _allocated_ports(pod: dict[str, Any], host_ports: list[int]) -> dict[str, int]:
    """Endpoint name -> the host port the offer gave it (endpoints with a host port, in container order)."""
    names = [e["name"] for c in pod["containers"] for e in c["endpoints"] if "hostPort" in e]
    return dict(zip(names, host_ports, strict=True))


def _env_name(name: str) -> str:
    return _ENV_ESCAPE.sub("_", name.upper())


def _endpoint_env(pod: dict[str, Any], allocated: dict[str, int]) -> dict[str, str]:
    host_network = any(n["mode"] == "host" for n in pod["networks"])
    env: dict[str, str] = {}
    for spec in pod["containers"]:
        for endpoint in spec["endpoints"]:
            name = _env_name(endpoint["name"])
            host_port = allocated.get(endpoint["name"])
            port = host_port if host_network else endpoint.get("containerPort")
            if port is not None:
                env[f"ENDPOINT_{name}"] = str(port)
            if host_port is not None:
                env[f"EP_HOST_{name}"] = str(host_port)
            if endpoint.get("containerPort") is not None:
                env[f"EP_CONTAINER_{name}"] = str(endpoint["containerPort"])
    return env


def _task(
    pod: dict[str, Any],
    spec: dict[str, Any],
    instance_id: str,
    agent_id: str,
    host: str,
    allocated: dict[str, int],
    endpoint_env: dict[str, str],
    resources: list[dict[str, Any]],
) -> dict[str, Any]:
    task_id = f"{instance_id}.{spec['name']}"
    env: dict[str, str] = {**pod["environment"], **spec["environment"], "HOST": host}
    res = spec["resources"]
    env.update(
        {
            "MESOS_TASK_ID": task_id,
            "MESOS_EXECUTOR_ID": executor_id(instance_id, pod["id"]),
            "MARATHON_APP_ID": pod["id"],
            "MARATHON_APP_VERSION": pod.get("version", ""),
            "MARATHON_CONTAINER_ID": spec["name"],
            "MARATHON_CONTAINER_RESOURCE_CPUS": str(float(res["cpus"])),
            "MARATHON_CONTAINER_RESOURCE_MEM": str(float(res["mem"])),
            "MARATHON_CONTAINER_RESOURCE_DISK": str(float(res["disk"])),
            "MARATHON_CONTAINER_RESOURCE_GPUS": str(int(res["gpus"])),
        }
    )
    labels = {**pod["labels"], **spec["labels"]}
    if labels:
        env["MARATHON_APP_LABELS"] = " ".join(appdef.label_env_name(k) for k in labels)
        env.update({f"MARATHON_APP_LABEL_{appdef.label_env_name(k)}": v for k, v in labels.items()})
    env.update(endpoint_env)
    task: dict[str, Any] = {
        "name": spec["name"],
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": resources,
        "command": _command(pod, spec, env),
        "discovery": _discovery(pod, spec, allocated),
    }
    if spec["labels"]:
        task["labels"] = _labels(spec["labels"])
    container = _container(pod, spec)
    if container is not None:
        task["container"] = container
    if "healthCheck" in spec:
        task["health_check"] = _health_check(spec["healthCheck"], pod, allocated)
    grace = (spec.get("lifecycle") or {}).get("killGracePeriodSeconds")
    if grace is not None:
        task["kill_policy"] = {"grace_period": {"nanoseconds": int(grace * NANOS)}}
    return task


def _command(pod: dict[str, Any], spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command: dict[str, Any] = {"shell": False}  # no command: the image's own entrypoint and cmd
    exec_ = spec.get("exec")
    if exec_ is not None:
        given = exec_["command"]
        if "shell" in given:
            command = {"shell": True, "value": given["shell"]}
        else:
            command = {"shell": False, "arguments": list(given["argv"])}
            if exec_.get("overrideEntrypoint") or "image" not in spec:
                command["value"] = given["argv"][0]
    user = spec.get("user") or pod.get("user")
    if user:
        command["user"] = user
    command["uris"] = [
        {
            "value": a["uri"],
            "extract": a["extract"],
            "executable": a["executable"],
            "cache": a["cache"],
            **({"output_file": a["destPath"]} if a.get("destPath") else {}),
        }
        for a in spec["artifacts"]
    ]
    command["environment"] = {"variables": [{"name": k, "value": v} for k, v in env.items()]}
    return command


def _container(pod: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = []
    for mount in spec["volumeMounts"]:
        volume = volumes[mount["name"]]
        entry: dict[str, Any] = {"container_path": mount["mountPath"], "mode": "RO" if mount["readOnly"] else "RW"}
        if "host" in volume:
            entry["host_path"] = volume["host"]
        else:
            entry["source"] = {
                "type": "SANDBOX_PATH",
                "sandbox_path": {"type": "PARENT", "path": EPHEMERAL_PREFIX + volume["name"]},
            }
        mounts.append(entry)
    image = spec.get("image")
    if not mounts and image is None:
        return None
    container: dict[str, Any] = {"type": "MESOS", "volumes": mounts}
    if image is not None:
        mesos_image: dict[str, Any] = {"type": "DOCKER", "docker": {"name": image["id"]}}
        if "forcePull" in image:
            mesos_image["cached"] = not image["forcePull"]
        container["mesos"] = {"image": mesos_image}
    return container


def _health_check(check: dict[str, Any], pod: dict[str, Any], allocated: dict[str, int]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "delay_seconds": float(check["delaySeconds"]),
        "interval_seconds": float(check["intervalSeconds"]),
        "timeout_seconds": float(check["timeoutSeconds"]),
        "consecutive_failures": int(check["maxConsecutiveFailures"]),
        "grace_period_seconds": float(check["gracePeriodSeconds"]),
    }
    if "exec" in check:
        given = check["exec"]["command"]
        info["type"] = "COMMAND"
        if "shell" in given:
            info["command"] = {"shell": True, "value": given["shell"]}
        else:
            info["command"] = {"shell": False, "value": given["argv"][0], "arguments": list(given["argv"])}
        return info
    kind = "http" if "http" in check else "tcp"
    endpoint = check[kind]["endpoint"]
    port = allocated.get(endpoint)
    if port is None:  # container networking: the check reaches the container port
        port = next(
            e.get("containerPort", 0) for c in pod["containers"] for e in c["endpoints"] if e["name"] == endpoint
        )
    if kind == "tcp":
        info["type"] = "TCP"
        info["tcp"] = {"port": port}
    else:
        info["type"] = "HTTP"
        info["http"] = {"port": port, "path": check["http"]["path"], "scheme": check["http"]["scheme"].lower()}
    return info


def _discovery(pod: dict[str, Any], spec: dict[str, Any], allocated: dict[str, int]) -> dict[str, Any]:
    ports = []
    for endpoint in spec["endpoints"]:
        number = allocated.get(endpoint["name"], endpoint.get("containerPort"))
        if number is None:
            continue
        for protocol in endpoint["protocol"]:
            entry: dict[str, Any] = {"number": number, "name": endpoint["name"], "protocol": protocol}
            if endpoint.get("labels"):
                entry["labels"] = _labels(endpoint["labels"])
            ports.append(entry)
    return {"visibility": "FRAMEWORK", "name": pathid.hostname(pod["id"]), "ports": {"ports": ports}}


def _labels(labels: dict[str, str]) -> dict[str, Any]:
    return {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
