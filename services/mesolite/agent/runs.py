"""Runs: what the agent knows of each task and custom executor it runs, and how a task's state changes travel.

A ``TaskRun`` is one task (a command or Docker task, a task-group member, or a task a custom executor runs); an
``ExecutorRun`` is one custom executor. ``Runs`` holds the live and the recently completed task runs and is the one
place a task's state changes: every change becomes a status update, checkpointed first when the framework
checkpoints, then queued on the task's stream in the status update manager it owns; once the last update of a
finished task is acknowledged its checkpoint goes. ``Frameworks`` holds the FrameworkInfos the agent runs tasks for.

Nothing here launches or kills anything: the launcher, the executor manager and recovery create runs and report
what happened to them through ``Runs.report`` (or ``executor_update`` for what a custom executor says).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesolite.agent.checkpoint import Checkpoint
from mesolite.agent.containerizer import Container
from mesolite.agent.health import HealthChecker
from mesolite.agent.status import Sender, StatusUpdateManager
from mesolite.core import protocol as proto
from mesolite.core.resources import ResourceError, Resources

COMPLETED_TASKS_KEPT = 1000
STATUS_FIELDS = ("state", "timestamp", "container_status", "healthy")


def _resources(info: dict[str, Any]) -> Resources:
    try:
        return Resources.from_v1(info.get("resources") or [])
    except ResourceError:
        return Resources()


@dataclass
class TaskRun:
    framework_id: str
    task_id: str
    executor_id: str
    container_id: str  # the executor's run (sandbox) id, reported in container_status
    info: dict[str, Any]
    role: str
    directory: str
    executor_directory: str
    kill_killing_state: bool = False
    user: str | None = None
    checkpoint_dir: str | None = None  # meta/.../tasks/<task_id> when the framework checkpoints
    statuses: list[dict[str, Any]] = field(default_factory=list)
    state: str = "TASK_STAGING"
    container: Container | None = None
    executor: ExecutorRun | None = None  # a custom executor runs the task; None: the agent does
    kill_requested: bool = False
    kill_reason: str | None = None
    kill_message: str | None = None
    health: HealthChecker | None = None
    healthy: bool | None = None
    launched: float = field(default_factory=time.time)
    finished: float | None = None
    group: list[TaskRun] | None = None
    # Set once the launch has reported TASK_RUNNING (or failed): a task that exits at once must not report its end
    # before its start.
    started: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.framework_id, self.task_id)

    @property
    def pid(self) -> int | None:
        if self.container is not None:
            return self.container.pid
        if self.executor is not None and self.executor.container is not None:
            return self.executor.container.pid
        return None

    @property
    def terminal(self) -> bool:
        return proto.is_terminal(self.state)

    @property
    def is_docker(self) -> bool:
        return (self.info.get("container") or {}).get("type") == "DOCKER"

    def resources(self) -> Resources:
        return _resources(self.info)

    def record(self) -> dict[str, Any]:
        """task.info in the checkpoint: enough to rebuild this object after an agent restart."""
        return {
            "framework_id": self.framework_id,
            "task_id": self.task_id,
            "executor_id": self.executor_id,
            "container_id": self.container_id,
            "info": self.info,
            "role": self.role,
            "directory": self.directory,
            "executor_directory": self.executor_directory,
            "kill_killing_state": self.kill_killing_state,
            "user": self.user,
            "group": self.group is not None,
            "custom_executor": self.executor is not None,
            "launched": self.launched,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], checkpoint_dir: str) -> TaskRun:
        return cls(
            framework_id=str(record.get("framework_id")),
            task_id=str(record.get("task_id")),
            executor_id=str(record.get("executor_id")),
            container_id=str(record.get("container_id")),
            info=record.get("info") or {},
            role=str(record.get("role") or "*"),
            directory=str(record.get("directory", "")),
            executor_directory=str(record.get("executor_directory", "")),
            kill_killing_state=bool(record.get("kill_killing_state")),
            user=record.get("user"),
            checkpoint_dir=checkpoint_dir,
            launched=float(record.get("launched") or time.time()),
        )

    def report(self) -> dict[str, Any]:
        """How a (re-)registering agent tells the master about this task."""
        return {
            "framework_id": proto.wrap(self.framework_id),
            "task_id": proto.wrap(self.task_id),
            "executor_id": proto.wrap(self.executor_id),
            "name": self.info.get("name", ""),
            "state": self.state,
            "resources": self.info.get("resources") or [],
            "role": self.role,
            "info": self.info,
            "statuses": self.statuses,
        }


@dataclass
class ExecutorRun:
    framework_id: str
    executor_id: str
    info: dict[str, Any]
    container_id: str  # the run (sandbox) id, also its container's id
    directory: str
    role: str
    checkpoint: bool
    user: str | None = None
    state: str = "REGISTERING"  # REGISTERING -> RUNNING -> TERMINATING -> TERMINATED
    container: Container | None = None
    tasks: dict[str, TaskRun] = field(default_factory=dict)
    queued: list[TaskRun] = field(default_factory=list)  # launched before the executor subscribed
    stream: queue.Queue[dict[str, Any] | None] | None = None
    termination: tuple[str, str] | None = None  # (reason, message) its tasks get if it ends now
    launched: float = field(default_factory=time.time)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.framework_id, self.executor_id)

    def send(self, event: dict[str, Any]) -> bool:
        with self.lock:
            if self.stream is None:
                return False
            self.stream.put(event)
            return True

    def record(self) -> dict[str, Any]:
        return {
            "framework_id": self.framework_id,
            "executor_id": self.executor_id,
            "info": self.info,
            "container_id": self.container_id,
            "directory": self.directory,
            "role": self.role,
            "user": self.user,
            "launched": self.launched,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ExecutorRun:
        return cls(
            framework_id=str(record["framework_id"]),
            executor_id=str(record["executor_id"]),
            info=record.get("info") or {},
            container_id=str(record["container_id"]),
            directory=str(record.get("directory", "")),
            role=str(record.get("role") or "*"),
            checkpoint=True,
            user=record.get("user"),
            launched=float(record.get("launched") or time.time()),
        )

    def resources(self) -> Resources:
        """What its container is limited to: its own resources plus those of its live tasks, as in Mesos."""
        total = _resources(self.info)
        for run in self.tasks.values():
            if not run.terminal:
                total = total + run.resources()
        return total


class Frameworks:
    """The FrameworkInfos of the frameworks this agent runs tasks for, checkpointed for those that checkpoint."""

    def __init__(self, checkpoint: Checkpoint, agent_id: Callable[[], str | None]) -> None:
        self._checkpoint = checkpoint
        self._agent_id = agent_id
        self._infos: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def remember(self, framework_id: str, info: dict[str, Any]) -> None:
        agent_id = self._agent_id()
        with self._lock:
            self._infos[framework_id] = info
        if info.get("checkpoint") and agent_id:
            self._checkpoint.save_framework(agent_id, framework_id, info)

    def recovered(self, infos: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._infos.update(infos)

    def get(self, framework_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._infos.get(framework_id) or {})

    def known(self, framework_id: str) -> bool:
        with self._lock:
            return framework_id in self._infos

    def checkpointing(self, framework_id: str) -> bool:
        return bool(self.get(framework_id).get("checkpoint"))

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._infos.values())


class Runs:
    """The task runs, live and completed, and the status update streams their state changes go out on."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        send: Sender,
        agent_id: Callable[[], str | None],
        ip: str,
        retry_min: float,
    ) -> None:
        self._checkpoint = checkpoint
        self._agent_id = agent_id
        self._ip = ip
        self.updates = StatusUpdateManager(send, retry_min=retry_min, on_acknowledged=self._acknowledged)
        self._tasks: dict[tuple[str, str], TaskRun] = {}
        self._completed: list[TaskRun] = []
        self._checkpoint_dirs: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ the registry

    def get(self, framework_id: str, task_id: str) -> TaskRun | None:
        with self._lock:
            return self._tasks.get((framework_id, task_id))

    def active(self) -> list[TaskRun]:
        with self._lock:
            return list(self._tasks.values())

    def snapshot(self) -> tuple[list[TaskRun], list[TaskRun]]:
        """(live, completed)."""
        with self._lock:
            return list(self._tasks.values()), list(self._completed)

    def of_executor(self, framework_id: str, executor_id: str) -> list[TaskRun]:
        """The live runs of one executor (a task group's members share theirs)."""
        with self._lock:
            return [
                r
                for r in self._tasks.values()
                if r.framework_id == framework_id and r.executor_id == executor_id and not r.terminal
            ]

    def add(self, run: TaskRun, checkpoint: bool) -> bool:
        """A new task; False when it is already here (a re-delivered launch). Checkpointed before it starts."""
        agent_id = self._agent_id()
        with self._lock:
            if run.key in self._tasks:
                return False
            if checkpoint and agent_id:
                run.checkpoint_dir = self._checkpoint.task_dir(
                    agent_id, run.framework_id, run.executor_id, run.container_id, run.task_id
                )
                self._checkpoint.save_task(run.checkpoint_dir, run.record())
                self._checkpoint_dirs[run.key] = run.checkpoint_dir
            self._tasks[run.key] = run
            return True

    def recovered(self, run: TaskRun, unacknowledged: list[dict[str, Any]]) -> None:
        """A checkpointed task the previous agent left: live or finished, with the updates still to deliver."""
        with self._lock:
            if run.checkpoint_dir is not None:
                self._checkpoint_dirs[run.key] = run.checkpoint_dir
            if run.terminal:
                self._completed.append(run)
            else:
                self._tasks[run.key] = run
        for status in unacknowledged:
            self.updates.enqueue(run.framework_id, status)

    # ------------------------------------------------------------------ state changes

    def report(
        self, run: TaskRun, state: str, reason: str | None = None, message: str | None = None, **extra: Any
    ) -> None:
        """A state change the agent itself observed (command, Docker and group tasks; executor failures)."""
        status = proto.task_status(
            run.task_id,
            state,
            agent_id=self._agent_id(),
            executor_id=run.executor_id if run.executor_id != run.task_id else None,
            source="SOURCE_EXECUTOR" if run.executor is None else "SOURCE_AGENT",
            reason=reason,
            message=message,
            **extra,
        )
        # Every update names the task's container, as Mesos' agent adds it to each (the CLI reads it from the
        # task's first status to reach the container with ``task exec``).
        status["container_status"] = self.container_status(run)
        self._record(run, status)

    def executor_update(self, run: TaskRun, status: dict[str, Any]) -> None:
        """A status update a custom executor sent (its uuid is kept: the scheduler acknowledges that one)."""
        status = dict(status)
        status["task_id"] = proto.wrap(run.task_id)
        status.setdefault("timestamp", time.time())
        status.setdefault("source", "SOURCE_EXECUTOR")
        status["executor_id"] = proto.wrap(run.executor_id)
        agent_id = self._agent_id()
        if agent_id:
            status["agent_id"] = proto.wrap(agent_id)
        if "container_status" not in status:
            status["container_status"] = self.container_status(run)
        self._record(run, status)

    def container_status(self, run: TaskRun) -> dict[str, Any]:
        container = run.container or (run.executor.container if run.executor is not None else None)
        ips = (container.ips if container is not None else []) or [self._ip]
        out: dict[str, Any] = {
            "container_id": {"value": run.container_id},
            "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": ip} for ip in ips]}],
        }
        if run.pid:
            out["executor_pid"] = run.pid
        return out

    def _record(self, run: TaskRun, status: dict[str, Any]) -> None:
        """Every state change of a task becomes an update on its stream, checkpointed first when the framework
        checkpoints (so a restarted agent resends what the scheduler has not acknowledged)."""
        with self._lock:
            if run.terminal:
                return
            run.state = str(status["state"])
            run.statuses.append({k: status[k] for k in STATUS_FIELDS if k in status})
            if run.checkpoint_dir is not None:
                self._checkpoint.append_update(run.checkpoint_dir, {"status": status})
            if run.terminal:
                run.finished = time.time()
                _touch(run.executor_directory)  # the sandbox's garbage collection delay starts now
                self._tasks.pop(run.key, None)
                self._completed.append(run)
                del self._completed[:-COMPLETED_TASKS_KEPT]
        self.updates.enqueue(run.framework_id, status)

    # ------------------------------------------------------------------ acknowledgements

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        self.updates.acknowledge(framework_id, task_id, status_uuid)

    def unacknowledged(self, framework_id: str, task_id: str) -> list[dict[str, Any]]:
        return self.updates.unacknowledged(framework_id, task_id)

    def _acknowledged(self, framework_id: str, task_id: str, status_uuid: str, remaining: int) -> None:
        with self._lock:
            task_dir = self._checkpoint_dirs.get((framework_id, task_id))
            live = (framework_id, task_id) in self._tasks
            if task_dir is None:
                return
            if not live and remaining == 0:
                # Terminal and acknowledged: nothing left to recover.
                del self._checkpoint_dirs[(framework_id, task_id)]
                self._checkpoint.remove_task(task_dir)
            else:
                self._checkpoint.append_update(task_dir, {"ack": status_uuid})


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass
