"""From an app definition and the resources picked from an offer to the v1 ``TaskInfo`` Marathon launches.

This is where Marathon's conventions for what a task sees live: the injected environment (``PORT0``, ``PORTS``,
``HOST``, ``MARATHON_APP_*``), Docker apps as a ``ContainerInfo`` of type DOCKER with port mappings, parameters and
volumes, Mesos-executed health checks (COMMAND, MESOS_HTTP, MESOS_TCP) as ``TaskInfo.health_check``, and the
``DiscoveryInfo`` Mesos-DNS reads. An app whose ``executor`` names a path runs under that custom executor, as
Marathon's ``PathExecutor``: ``chmod ug+rx '<path>' && exec '<path>' <cmd>`` with the task's environment.
"""

from __future__ import annotations

from typing import Any

from mesolite.marathon import appdef, pathid, secrets

NANOS = 1_000_000_000


def host_port_env(app: dict[str, Any], host: str, host_ports: list[int]) -> dict[str, str]:
    env: dict[str, str] = {"HOST": host}
    if host_ports:
        env["PORTS"] = ",".join(str(p) for p in host_ports)
        env["PORT"] = str(host_ports[0])
    mappings = appdef.port_mappings(app)
    declared = [m["containerPort"] for m in mappings] if mappings else appdef.service_ports(app)
    for i, port in enumerate(host_ports):
        env[f"PORT{i}"] = str(port)
        if i < len(declared) and declared[i]:
            env[f"PORT_{declared[i]}"] = str(port)
    for i, name in enumerate(appdef.port_names(app)):
        if name and i < len(host_ports):
            env[f"PORT_{appdef.label_env_name(name)}"] = str(host_ports[i])
    return env


def task_env(app: dict[str, Any], task_id: str, host: str, host_ports: list[int]) -> dict[str, str]:
    env = host_port_env(app, host, host_ports)
    env.update(
        {
            "MARATHON_APP_ID": app["id"],
            "MARATHON_APP_VERSION": app.get("version", ""),
            "MARATHON_APP_RESOURCE_CPUS": str(float(app["cpus"])),
            "MARATHON_APP_RESOURCE_MEM": str(float(app["mem"])),
            "MARATHON_APP_RESOURCE_DISK": str(float(app["disk"])),
            "MARATHON_APP_RESOURCE_GPUS": str(int(app.get("gpus") or 0)),
            "MESOS_TASK_ID": task_id,
        }
    )
    docker = (app.get("container") or {}).get("docker")
    if docker and docker.get("image"):
        env["MARATHON_APP_DOCKER_IMAGE"] = docker["image"]
    labels = app.get("labels") or {}
    if labels:
        env["MARATHON_APP_LABELS"] = " ".join(appdef.label_env_name(k) for k in labels)
        for key, value in labels.items():
            env[f"MARATHON_APP_LABEL_{appdef.label_env_name(key)}"] = value
    # The app's own env wins over everything Marathon injects (secret references go as SECRET variables).
    env.update({k: v for k, v in (app.get("env") or {}).items() if isinstance(v, str)})
    return env


def command_info(app: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    variables = [{"name": k, "value": v} for k, v in env.items()] + secrets.env_variables(app)
    command: dict[str, Any] = {
        "environment": {"variables": variables},
        "uris": [
            {
                "value": f["uri"],
                "extract": f["extract"],
                "executable": f["executable"],
                "cache": f["cache"],
                **({"output_file": f["destPath"]} if f.get("destPath") else {}),
            }
            for f in app.get("fetch") or []
        ],
    }
    if app.get("cmd"):
        command["shell"] = True
        command["value"] = app["cmd"]
    elif app.get("args"):
        command["shell"] = False
        command["arguments"] = list(app["args"])
        if not app.get("container"):
            command["value"] = app["args"][0]
    else:
        command["shell"] = False  # a Docker image's own entrypoint
    if app.get("user"):
        command["user"] = app["user"]
    return command


def container_info(app: dict[str, Any], host_ports: list[int]) -> dict[str, Any] | None:
    container = app.get("container")
    if not container:
        return None
    volumes = [
        {
            "container_path": v["containerPath"],
            "mode": v["mode"],
            **({"host_path": v["hostPath"]} if "hostPath" in v else {}),
        }
        for v in container.get("volumes") or []
        if "hostPath" in v or "persistent" in v
    ]
    volumes += secrets.volumes(app)
    info: dict[str, Any] = {"type": container["type"], "volumes": volumes}
    docker = container.get("docker")
    if docker:
        mappings = []
        for i, mapping in enumerate(docker.get("portMappings") or []):
            host_port = host_ports[i] if i < len(host_ports) else mapping["hostPort"]
            for protocol in mapping["protocol"].split(","):
                mappings.append(
                    {
                        "host_port": host_port,
                        "container_port": mapping["containerPort"] or host_port,
                        "protocol": protocol,
                    }
                )
        docker_info: dict[str, Any] = {
            "image": docker["image"],
            "network": docker["network"] if docker["network"] != "USER" else "USER",
            "privileged": docker["privileged"],
            "force_pull_image": docker["forcePullImage"],
            "parameters": [{"key": p["key"], "value": p["value"]} for p in docker["parameters"]],
        }
        if mappings:
            docker_info["port_mappings"] = mappings
        info["docker"] = docker_info
        if container["type"] == "MESOS":
            image: dict[str, Any] = {"type": "DOCKER", "docker": {"name": docker["image"]}}
            if docker["forcePullImage"]:
                image["cached"] = False  # Marathon: cached = !forcePullImage
            pull_config = secrets.pull_config(app)
            if pull_config is not None:
                image["docker"]["config"] = pull_config
            info["mesos"] = {"image": image}
            info.pop("docker")
    return info


def health_check_info(app: dict[str, Any], host_ports: list[int]) -> dict[str, Any] | None:
    """The first Mesos-executed check (Mesos runs one per task); Marathon-executed ones are probed by Marathon."""
    for check in app.get("healthChecks") or []:
        protocol = check["protocol"]
        if protocol not in ("COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"):
            continue
        info: dict[str, Any] = {
            "delay_seconds": float(check.get("delaySeconds", 15)),
            "interval_seconds": float(check["intervalSeconds"]),
            "timeout_seconds": float(check["timeoutSeconds"]),
            "consecutive_failures": int(check["maxConsecutiveFailures"]),
            "grace_period_seconds": float(check["gracePeriodSeconds"]),
        }
        if protocol == "COMMAND":
            info["type"] = "COMMAND"
            info["command"] = {"shell": True, "value": check["command"]["value"]}
            return info
        port = check.get("port")
        if port is None:
            index = check.get("portIndex", 0)
            mappings = appdef.port_mappings(app)
            if mappings and appdef.network(app) != "HOST" and index < len(mappings):
                port = mappings[index]["containerPort"] or (host_ports[index] if index < len(host_ports) else 0)
            else:
                port = host_ports[index] if index < len(host_ports) else 0
        if protocol == "MESOS_TCP":
            info["type"] = "TCP"
            info["tcp"] = {"port": port}
        else:
            info["type"] = "HTTP"
            info["http"] = {"port": port, "path": check.get("path", "/")}
            if protocol == "MESOS_HTTPS":
                info["http"]["scheme"] = "https"
        return info
    return None


def discovery_info(app: dict[str, Any], host_ports: list[int]) -> dict[str, Any]:
    names = appdef.port_names(app)
    mappings = appdef.port_mappings(app)
    protocols = [m["protocol"] for m in mappings] if mappings else [d["protocol"] for d in app["portDefinitions"]]
    ports = []
    for i, port in enumerate(host_ports):
        for protocol in (protocols[i] if i < len(protocols) else "tcp").split(","):
            entry: dict[str, Any] = {"number": port, "protocol": protocol}
            if i < len(names) and names[i]:
                entry["name"] = names[i]
            ports.append(entry)
    return {"visibility": "FRAMEWORK", "name": pathid.hostname(app["id"]), "ports": {"ports": ports}}


def build(
    app: dict[str, Any],
    task_id: str,
    agent_id: str,
    host: str,
    host_ports: list[int],
    resources: list[dict[str, Any]],
) -> dict[str, Any]:
    env = task_env(app, task_id, host, host_ports)
    task: dict[str, Any] = {
        "name": pathid.hostname(app["id"]),
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": resources,
        "command": command_info(app, env),
        "discovery": discovery_info(app, host_ports),
    }
    labels = app.get("labels") or {}
    if labels:
        task["labels"] = {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
    container = container_info(app, host_ports)
    if container is not None:
        task["container"] = container
    health = health_check_info(app, host_ports)
    if health is not None:
        task["health_check"] = health
    grace = app.get("taskKillGracePeriodSeconds")
    if grace:
        task["kill_policy"] = {"grace_period": {"nanoseconds": int(grace * NANOS)}}
    path = app.get("executor") or ""
    if path and path != "//cmd":
        _under_executor(task, app, path)
    return task


def _under_executor(task: dict[str, Any], app: dict[str, Any], path: str) -> None:
    """Hand the task to a custom executor started by the agent (Marathon's ``PathExecutor``)."""
    command = task.pop("command")
    cmd = app.get("cmd") or " ".join(app.get("args") or [])
    command.pop("arguments", None)
    command["shell"] = True
    command["value"] = f"chmod ug+rx '{path}' && exec '{path}' {cmd}".rstrip()
    executor: dict[str, Any] = {"executor_id": {"value": f"marathon-{task['task_id']['value']}"}, "command": command}
    if "container" in task:
        executor["container"] = task.pop("container")
    task["executor"] = executor
