"""``PodStatus`` (``GET /v2/pods/{id}::status``), as Marathon's ``PodStatusConversion`` and ``AppInfoBaseData``
compute it.

An instance is STAGING until its containers run, TERMINAL once over (or being killed), DEGRADED while unreachable
or while any container with a health check is not (yet) reported healthy — a container's ``healthy`` condition
reads ``false`` with the reason ``health-unreported-by-mesos`` until the agent's first result — and STABLE
otherwise. The pod is STABLE when at least ``scaling.instances`` of its instances are, DEGRADED before, and
TERMINAL while a deployment is removing it. So a freshly deployed pod with health checks goes DEGRADED → STABLE
as its checks start passing.
"""

from __future__ import annotations

from typing import Any

from mesolite.marathon import instances, pods
from mesolite.marathon.state import State, Task, iso

HEALTH_UNREPORTED = "health-unreported-by-mesos"
HEALTH_REPORTED = "health-reported-by-mesos"
MSG_UNREACHABLE = "pod instance has become unreachable"
MSG_UNHEALTHY = "at least one container is not healthy"
ACTIVE_STATES = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_UNREACHABLE", "TASK_KILLING")


def pod_status(state: State, pod: dict[str, Any], terminating: bool = False) -> dict[str, Any]:
    now = iso()
    statuses = [instance_status(pod, task) for task in state.app_tasks(pod["id"])]
    since = max((s["statusSince"] for s in statuses), default=now)
    if terminating:
        status = "TERMINAL"
    elif sum(1 for s in statuses if s["status"] == "STABLE") >= pod["scaling"]["instances"]:
        status = "STABLE"
    else:
        status = "DEGRADED"
    return {
        "id": pod["id"],
        "spec": pods.pod_json(pod),
        "status": status,
        "statusSince": since,
        "instances": statuses,
        "terminationHistory": _termination_history(state.last_failures.get(pod["id"])),
        "lastUpdated": now,
        "lastChanged": since,
    }


def instance_status(pod: dict[str, Any], task: Task) -> dict[str, Any]:
    containers = [_container_status(pod, task, entry) for entry in task.containers]
    status, message = _instance_state(task, containers)
    resources = {k: float(v) for k, v in pod["executorResources"].items()}
    resources["gpus"] = 0.0
    for rendered in containers:
        for key, value in (rendered.get("resources") or {}).items():
            resources[key] = resources.get(key, 0.0) + float(value)
    out: dict[str, Any] = {
        "id": task.id,
        "status": status,
        "statusSince": task.condition_since,
        "agentHostname": task.host,
        "agentId": task.agent_id,
        "resources": resources,
        "networks": [{"addresses": [a["ipAddress"] for a in task.ip_addresses]}] if task.ip_addresses else [],
        "containers": containers,
        "specReference": f"/v2/pods{pod['id']}::versions/{task.version}",
        "lastUpdated": task.condition_since,
        "lastChanged": task.condition_since,
    }
    if message:
        out["message"] = message
    return out


def _instance_state(task: Task, containers: list[dict[str, Any]]) -> tuple[str, str | None]:
    condition = instances.condition(task)
    if task.killing or condition in ("Killing", "Error", "Failed", "Finished", "Killed", "Gone", "Dropped", "Unknown"):
        return "TERMINAL", None
    if condition in ("Staging", "Starting"):
        return "STAGING", None
    if condition in ("Unreachable", "UnreachableInactive"):
        return "DEGRADED", MSG_UNREACHABLE
    unhealthy = any(c["name"] == "healthy" and c["value"] == "false" for s in containers for c in s["conditions"])
    if unhealthy:
        return "DEGRADED", MSG_UNHEALTHY
    return "STABLE", None


def _container_status(pod: dict[str, Any], task: Task, entry: dict[str, Any]) -> dict[str, Any]:
    spec = pods.container(pod, entry["name"]) or {}
    check = spec.get("healthCheck") or {}
    check_endpoint = (check.get("http") or check.get("tcp") or {}).get("endpoint")
    active = entry["state"] in ACTIVE_STATES
    since = entry.get("startedAt") or entry.get("stagedAt") or task.staged_at
    endpoints = []
    if active:
        for endpoint in entry.get("endpoints") or []:
            rendered = dict(endpoint)
            if endpoint["name"] == check_endpoint and entry.get("healthy") is not None:
                rendered["healthy"] = entry["healthy"]
            endpoints.append(rendered)
    out: dict[str, Any] = {
        "name": entry["name"],
        "status": entry["state"],
        "statusSince": entry.get("statusSince") or since,
        "endpoints": endpoints,
        "conditions": [],
        "lastUpdated": since,
        "lastChanged": since,
    }
    if entry.get("containerId"):
        out["containerId"] = entry["containerId"]
    if active and spec:
        out["resources"] = dict(spec["resources"])
    if check and entry["state"] not in ("TASK_STAGING", "TASK_STARTING"):
        reported = entry.get("healthy") is not None
        out["conditions"].append(
            {
                "name": "healthy",
                "value": "true" if entry.get("healthy") else "false",
                "reason": HEALTH_REPORTED if reported else HEALTH_UNREPORTED,
                "lastChanged": since,
                "lastUpdated": since,
            }
        )
    if entry["state"] in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR") and entry.get("message"):
        out["termination"] = {"message": entry["message"]}
    return out


def _termination_history(failure: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not failure:
        return []
    task_id = failure["taskId"]
    return [
        {
            "instanceID": task_id.rsplit(".", 1)[0],
            "startedAt": failure.get("startedAt") or failure["timestamp"],
            "terminatedAt": failure["timestamp"],
            "message": failure.get("message", ""),
            "containers": [{"containerId": task_id, "lastKnownState": failure["state"]}],
        }
    ]
