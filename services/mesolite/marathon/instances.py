"""Instances: what Marathon tracks per launched copy of a run spec, and the condition it reports for it.

An app instance is one Mesos task; a pod instance is one task group, a Mesos task per container, all launched
together. Both are a :class:`~mesolite.marathon.state.Task` record (a pod's carries its containers), so scaling,
deployments, kills and partition handling treat them alike. An instance's condition is Marathon's
(``Instance.InstanceState.conditionFromTasks``): the most severe of its tasks' states, in the order Error, Failed,
Gone, Dropped, Unreachable, Killing, Starting, Staging, Unknown, Running, Finished, Killed — so a pod with one
container running and one finished is Running, and one failed container makes the whole instance Failed (the
default executor then kills the rest of the group).
"""

from __future__ import annotations

from typing import Any

from mesolite.marathon import pods
from mesolite.marathon.state import Task, iso

CONDITIONS = {
    "TASK_STAGING": "Staging",
    "TASK_STARTING": "Starting",
    "TASK_RUNNING": "Running",
    "TASK_KILLING": "Killing",
    "TASK_FINISHED": "Finished",
    "TASK_FAILED": "Failed",
    "TASK_KILLED": "Killed",
    "TASK_ERROR": "Error",
    "TASK_DROPPED": "Dropped",
    "TASK_GONE": "Gone",
    "TASK_GONE_BY_OPERATOR": "Gone",
    "TASK_LOST": "Gone",
    "TASK_UNREACHABLE": "Unreachable",
    "TASK_UNKNOWN": "Unknown",
}
SEVERITY = (
    "TASK_ERROR",
    "TASK_FAILED",
    "TASK_LOST",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_DROPPED",
    "TASK_UNREACHABLE",
    "TASK_KILLING",
    "TASK_STARTING",
    "TASK_STAGING",
    "TASK_UNKNOWN",
    "TASK_RUNNING",
    "TASK_FINISHED",
    "TASK_KILLED",
)


def condition(task: Task) -> str:
    """Marathon's condition name for the instance (``instance_changed_event``, ``/v2/pods::instances``)."""
    if task.inactive:
        return "UnreachableInactive"
    return CONDITIONS.get(task.state, "Unknown")


def group_state(containers: list[dict[str, Any]]) -> str:
    """The Mesos state that stands for a whole pod instance: its most severe container state."""
    states = [c["state"] for c in containers] or ["TASK_STAGING"]
    return min(states, key=lambda s: SEVERITY.index(s) if s in SEVERITY else len(SEVERITY))


def new_containers(pod: dict[str, Any], instance_id: str, host_ports: list[int]) -> list[dict[str, Any]]:
    """One entry per container of a freshly launched instance, with the host ports of its endpoints."""
    now = iso()
    out = []
    ports = iter(host_ports)
    for spec in pod["containers"]:
        endpoints = [
            {"name": e["name"], "allocatedHostPort": next(ports)} if "hostPort" in e else {"name": e["name"]}
            for e in spec["endpoints"]
        ]
        out.append(
            {
                "name": spec["name"],
                "taskId": f"{instance_id}.{spec['name']}",
                "state": "TASK_STAGING",
                "stagedAt": now,
                "startedAt": None,
                "statusSince": now,
                "healthy": None,
                "message": None,
                "endpoints": endpoints,
            }
        )
    return out


def container_of(task: Task, task_id: str) -> dict[str, Any] | None:
    return next((c for c in task.containers if c["taskId"] == task_id), None)


def apply_container_status(task: Task, entry: dict[str, Any], status: dict[str, Any]) -> None:
    """A status update for one container: its own state, health and container id; then the instance's."""
    state = status.get("state", entry["state"])
    if state != entry["state"]:
        entry["state"] = state
        entry["statusSince"] = iso()
    if state == "TASK_RUNNING" and not entry.get("startedAt"):
        entry["startedAt"] = iso()
    if "healthy" in status:
        entry["healthy"] = bool(status["healthy"])
    if status.get("message"):
        entry["message"] = status["message"]
    container_id = ((status.get("container_status") or {}).get("container_id") or {}).get("value")
    if container_id:
        entry["containerId"] = container_id
    task.state = group_state(task.containers)


def pod_healthy(task: Task, pod: dict[str, Any]) -> bool | None:
    """Marathon's ``computeHealth`` for an instance: False when a running container with a health check reports
    unhealthy, None while one has not reported yet (or is not running), True once all have; without health checks
    a running instance is healthy."""
    if not pods.has_health_checks(pod):
        return task.running
    verdict: bool | None = True
    for entry in task.containers:
        spec = pods.container(pod, entry["name"])
        if entry["state"] == "TASK_FINISHED" or spec is None or "healthCheck" not in spec:
            continue
        if entry["state"] != "TASK_RUNNING":
            return None
        if entry["healthy"] is False:
            return False
        if entry["healthy"] is None:
            verdict = None
    return verdict


def instance_json(task: Task, spec: dict[str, Any] | None) -> dict[str, Any]:
    """An ``Instance`` (``instance.raml``), as ``DELETE /v2/pods/{id}::instances`` answers."""
    from mesolite.marathon import runspec

    out: dict[str, Any] = {
        "instanceId": task.id,
        "state": {
            "condition": condition(task),
            "since": task.condition_since,
            "goal": "Stopped" if task.killing else "Running",
        },
        "agentInfo": {"host": task.host, "agentId": task.agent_id, "attributes": []},
        "runSpecVersion": task.version,
        "unreachableStrategy": runspec.unreachable(spec),
    }
    started = [c["startedAt"] for c in task.containers if c.get("startedAt")] or (
        [task.started_at] if task.started_at else []
    )
    if started:
        out["state"]["activeSince"] = min(started)
    return out
