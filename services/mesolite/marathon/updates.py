"""Status updates applied to instances, as Marathon's ``TaskStatusUpdateProcessorImpl`` and ``InstanceUpdater`` do.

An update names a Mesos task: an app's task, or one container of a pod instance (whose condition is then that of
its most severe container). Marathon registers PARTITION_AWARE, so an agent cut off from the master yields
TASK_UNREACHABLE instead of TASK_LOST: the instance stays, marked with the time it became unreachable, until its
run spec's ``unreachableStrategy`` gives it up (``unreachable.py``); an update saying it runs again (the agent came
back, reconciliation told us) clears that. Terminal updates (and TASK_UNKNOWN) expunge the instance, recording
the failure and growing the launch backoff. An update for a task Marathon does not know is killed unless it is
over or unreachable anyway, in which case ``unknown_instance_terminated_event`` says so.

Every change of an instance's condition is an ``instance_changed_event``; every Mesos task's change a
``status_update_event``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from mesolite.core.protocol import FAILURE_STATES
from mesolite.marathon import instances
from mesolite.marathon.state import State, Task, gone, iso

# Launch failures, which grow the run spec's backoff delay (a task that finishes on its own is one too).
BACKOFF_STATES = {"TASK_FAILED", "TASK_FINISHED", "TASK_ERROR"}
_INSTANCE_ID = re.compile(r"^(.+)\.(instance-|marathon-)([^.]+)")


class UpdateProcessor:
    """Called under the service lock by the scheduler for every UPDATE event."""

    def __init__(
        self,
        state: State,
        publish: Callable[..., Any],
        note_failure: Callable[[dict[str, Any]], None],
        forget_health: Callable[[str], None],
        health_changed: Callable[[Task], None],
        metrics: Counter[str],
    ) -> None:
        self.state = state
        self.publish = publish
        self.note_failure = note_failure
        self.forget_health = forget_health
        self.health_changed = health_changed
        self.metrics = metrics

    def apply(self, status: dict[str, Any]) -> bool:
        """Apply one update; True when the task is unknown and alive, so the caller kills it."""
        task_id = status["task_id"]["value"]
        state_name = status.get("state", "")
        self.metrics["mesos.task-updates." + state_name.lower().replace("_", "-")] += 1
        if status.get("reason") == "REASON_CONTAINER_LIMITATION_MEMORY":
            self.metrics["mesos.task.oom.memory-limit-exceeded"] += 1
        task = self.state.task_of(task_id)
        if task is None:
            if gone(state_name) or state_name == "TASK_UNREACHABLE":
                self._unknown_terminated(task_id, state_name)
                return False
            return True
        before = instances.condition(task)
        spec = self.state.spec(task.app_id)
        if task.containers:
            entry = instances.container_of(task, task_id)
            assert entry is not None
            instances.apply_container_status(task, entry, status)
        else:
            task.state = state_name
            if "healthy" in status:
                task.mesos_healthy = bool(status["healthy"])
        addresses = [
            {"ipAddress": ip["ip_address"], "protocol": ip.get("protocol", "IPv4")}
            for info in ((status.get("container_status") or {}).get("network_infos") or [])
            for ip in info.get("ip_addresses") or []
            if ip.get("ip_address")
        ]
        if addresses:
            task.ip_addresses = addresses
        if task.state == "TASK_RUNNING" and task.started_at is None:
            task.started_at = iso()
            task.running_time = time.time()
        self._track_reachability(task, status)
        if gone(task.state):
            self._expunge(task, spec, status, task_id)
        else:
            self.state.save_task(task)
        self._publish_update(task, task_id, state_name, status)
        after = instances.condition(task)
        if after != before:
            self.changed(task)
        if not gone(task.state):
            self.health_changed(task)
        return False

    def changed(self, task: Task) -> None:
        """The instance's condition changed: stamp it and say so."""
        task.condition_since = iso()
        self.publish(
            "instance_changed_event",
            instanceId=task.id,
            condition=instances.condition(task),
            runSpecId=task.app_id,
            agentId=task.agent_id,
            host=task.host,
            runSpecVersion=task.version,
        )

    @staticmethod
    def _track_reachability(task: Task, status: dict[str, Any]) -> None:
        if task.state == "TASK_UNREACHABLE":
            if task.unreachable_since is None:
                nanos = (status.get("unreachable_time") or {}).get("nanoseconds")
                task.unreachable_since = float(nanos) / 1e9 if nanos else time.time()
        else:
            task.unreachable_since = None
            task.inactive = False

    def _expunge(self, task: Task, spec: dict[str, Any] | None, status: dict[str, Any], task_id: str) -> None:
        self.state.expunge_task(task.id)
        self.forget_health(task.id)
        state_name = task.state
        if (
            state_name in FAILURE_STATES
            or state_name == "TASK_UNKNOWN"
            or (state_name == "TASK_KILLED" and not task.killing)
        ):
            self.state.last_failures[task.app_id] = {
                "appId": task.app_id,
                "host": task.host,
                "message": status.get("message", ""),
                "state": state_name,
                "taskId": task_id,
                "timestamp": iso(),
                "version": task.version,
                "slaveId": task.agent_id,
            }
        if spec is not None and state_name in BACKOFF_STATES and not task.killing:
            self.note_failure(spec)

    def _publish_update(self, task: Task, task_id: str, state_name: str, status: dict[str, Any]) -> None:
        ports = task.ports
        if task.containers:
            entry = instances.container_of(task, task_id) or {}
            ports = [e["allocatedHostPort"] for e in entry.get("endpoints") or [] if "allocatedHostPort" in e]
        self.publish(
            "status_update_event",
            slaveId=task.agent_id,
            taskId=task_id,
            taskStatus=state_name,
            message=status.get("message", ""),
            appId=task.app_id,
            host=task.host,
            ipAddresses=task.ip_addresses,
            ports=ports,
            version=task.version,
        )

    def _unknown_terminated(self, task_id: str, state_name: str) -> None:
        match = _INSTANCE_ID.match(task_id)
        instance_id = f"{match.group(1)}.{match.group(2)}{match.group(3)}" if match else task_id
        safe = match.group(1) if match else task_id.rsplit(".", 1)[0]
        self.publish(
            "unknown_instance_terminated_event",
            instanceId=instance_id,
            runSpecId="/" + safe.replace("_", "/"),
            condition=instances.CONDITIONS.get(state_name, "Unknown"),
        )
