"""Custom executors: the executor half of "framework = scheduler + executor", over the v1 executor HTTP API.

A task whose TaskInfo carries an ``ExecutorInfo`` is run by that executor, which the agent starts (in its own
sandbox and container, with the ``MESOS_*`` environment) the first time one of its tasks arrives; later tasks of the
same executor go to the running one. The executor subscribes at ``POST /api/v1/executor`` and gets a RecordIO event
stream: SUBSCRIBED, then LAUNCH / LAUNCH_GROUP for its tasks, KILL, ACKNOWLEDGED (once the agent has taken an update
in charge), MESSAGE (from the scheduler), SHUTDOWN, ERROR. Its UPDATE calls become the tasks' status updates, its
MESSAGE calls go to the scheduler through the master.

Failure handling follows Mesos (src/slave/slave.cpp): an executor that does not subscribe within
``--executor_registration_timeout`` is destroyed and its tasks fail with REASON_EXECUTOR_REGISTRATION_TIMEOUT; one
that exits leaves its unfinished tasks TASK_FAILED with REASON_EXECUTOR_TERMINATED; SHUTDOWN is followed by a
destroy after ``--executor_shutdown_grace_period``.

The manager is given what it works with when it is built: the runs (its tasks' status updates), the frameworks, the
sandboxes (directories and environment), the containerizer, the checkpoint, the master link (the agent's identity,
messages and exits to the master), the launcher's command builder and the fetcher cache.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mesolite.agent.checkpoint import Checkpoint
from mesolite.agent.containerizer import Container, Containerizer, LaunchError, Termination
from mesolite.agent.fetcher import FetcherCache, FetchError, fetch_all
from mesolite.agent.runs import ExecutorRun, Frameworks, Runs, TaskRun
from mesolite.agent.sandbox import Sandboxes
from mesolite.core import protocol as proto

log = logging.getLogger(__name__)


class ExecutorCallError(Exception):
    """A refused executor call; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MasterMessages(Protocol):
    """What executors need of the master link: the agent's identity, and their messages and exits passed on."""

    agent_id: str | None

    def agent_info(self) -> dict[str, Any]: ...
    def executor_message(self, framework_id: str, executor_id: str, data: str) -> None: ...
    def executor_exited(self, framework_id: str, executor_id: str, status: int | None) -> None: ...


# (CommandInfo, environment, sandbox, user) -> what the supervisor runs (Launcher.command_spec).
CommandSpec = Callable[[dict[str, Any], dict[str, str], str, str | None, dict[str, Any] | None], dict[str, Any]]


@dataclass(frozen=True)
class ExecutorTimeouts:
    registration: float = 60.0  # --executor_registration_timeout
    reregistration: float = 2.0  # --executor_reregistration_timeout
    shutdown_grace: float = 5.0  # --executor_shutdown_grace_period


class ExecutorManager:
    def __init__(
        self,
        runs: Runs,
        frameworks: Frameworks,
        sandboxes: Sandboxes,
        containerizer: Containerizer,
        checkpoint: Checkpoint,
        master: MasterMessages,
        command_spec: CommandSpec,
        fetcher_cache: FetcherCache | None = None,
        timeouts: ExecutorTimeouts = ExecutorTimeouts(),
    ) -> None:
        self._runs = runs
        self._frameworks = frameworks
        self._sandboxes = sandboxes
        self._containerizer = containerizer
        self._checkpoint = checkpoint
        self._master = master
        self._command_spec = command_spec
        self._cache = fetcher_cache
        self._timeouts = timeouts
        self.executors: dict[tuple[str, str], ExecutorRun] = {}
        self._lock = threading.RLock()

    def get(self, framework_id: str, executor_id: str) -> ExecutorRun | None:
        with self._lock:
            return self.executors.get((framework_id, executor_id))

    def all(self) -> list[ExecutorRun]:
        with self._lock:
            return list(self.executors.values())

    # ------------------------------------------------------------------ launch

    def executor_for(self, framework_id: str, info: dict[str, Any], role: str, user: str | None) -> ExecutorRun:
        """The live executor with this id, or a new one (started on a worker thread)."""
        executor_id = proto.unwrap(info.get("executor_id")) or ""
        with self._lock:
            executor = self.executors.get((framework_id, executor_id))
            if executor is not None and executor.state in ("REGISTERING", "RUNNING"):
                return executor
            directory = self._sandboxes.new_run(framework_id, executor_id)
            executor = ExecutorRun(
                framework_id=framework_id,
                executor_id=executor_id,
                info=info,
                container_id=os.path.basename(directory),
                directory=directory,
                role=role,
                checkpoint=self._frameworks.checkpointing(framework_id),
                user=user,
            )
            self.executors[executor.key] = executor
        agent_id = self._master.agent_id
        if executor.checkpoint and agent_id:
            self._checkpoint.save_executor(agent_id, framework_id, executor_id, executor.record())
        threading.Thread(target=self._start, args=(executor,), name=f"executor-{executor_id}", daemon=True).start()
        return executor

    def _start(self, executor: ExecutorRun) -> None:
        command = executor.info.get("command") or {}
        try:
            fetch_all([u for u in command.get("uris") or [] if isinstance(u, dict)], executor.directory, self._cache)
        except FetchError as exc:
            self._fail_tasks(executor, "REASON_FETCHER_FAILED", f"Failed to fetch all URIs for executor: {exc}")
            return
        if (executor.info.get("container") or {}).get("type") == "DOCKER":
            self._fail_tasks(
                executor, "REASON_CONTAINER_LAUNCH_FAILED", "Custom executors in Docker containers are not supported"
            )
            return
        resources = executor.resources()
        container = Container(
            id=executor.container_id,
            kind="executor",
            framework_id=executor.framework_id,
            executor_id=executor.executor_id,
            task_id=None,
            directory=executor.directory,
            checkpoint=executor.checkpoint,
            cpus=resources.scalar("cpus"),
            mem=resources.scalar("mem"),
            owner=executor,
        )
        env = self._sandboxes.executor_env(
            executor.framework_id, executor.executor_id, executor.directory, executor.container_id, executor.role
        )
        try:
            container_info = executor.info.get("container")
            spec = self._command_spec(command, env, executor.directory, executor.user, container_info)
            self._containerizer.launch(container, spec)
        except (LaunchError, OSError, ValueError, KeyError) as exc:
            self._fail_tasks(executor, "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch executor: {exc}")
            return
        executor.container = container
        timeout = self._timeouts.registration
        threading.Timer(timeout, self._registration_timeout, args=(executor, timeout)).start()

    def launch(self, executor: ExecutorRun, run: TaskRun, group: bool) -> None:
        with executor.lock:
            executor.tasks[run.task_id] = run
            if executor.state != "RUNNING":
                executor.queued.append(run)
                return
        if executor.container is not None:
            resources = executor.resources()
            self._containerizer.update(executor.container, resources.scalar("cpus"), resources.scalar("mem"))
        self._deliver(executor, [run], group)

    def _deliver(self, executor: ExecutorRun, runs: list[TaskRun], group: bool) -> None:
        if group:
            executor.send({"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": [r.info for r in runs]}}})
        else:
            for run in runs:
                executor.send({"type": "LAUNCH", "launch": {"task": run.info}})

    def _registration_timeout(self, executor: ExecutorRun, timeout: float) -> None:
        with executor.lock:
            if executor.state != "REGISTERING":
                return
            executor.state = "TERMINATING"
            executor.termination = (
                "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
                f"Executor did not register within {timeout:g} secs",
            )
        log.warning("executor %s did not subscribe within %s s: destroying it", executor.executor_id, timeout)
        if executor.container is not None:
            self._containerizer.destroy(executor.container)

    def recovered(self, executor: ExecutorRun, container_record: dict[str, Any]) -> None:
        """An executor the previous agent left: its container is reattached, and it has
        ``--executor_reregistration_timeout`` to subscribe again; one that ended meanwhile fails its tasks."""
        with self._lock:
            self.executors[executor.key] = executor
        container, termination = self._containerizer.recover(container_record, executor)
        executor.container = container
        if termination is None:
            timeout = self._timeouts.reregistration
            threading.Timer(timeout, self._reregistration_timeout, args=(executor, timeout)).start()
        else:
            executor.termination = None
            threading.Thread(target=self.exited, args=(executor, termination), daemon=True).start()

    def _reregistration_timeout(self, executor: ExecutorRun, timeout: float) -> None:
        """After an agent restart, an executor that does not come back in time is destroyed (Mesos)."""
        with executor.lock:
            if executor.state != "REGISTERING":
                return
            executor.state = "TERMINATING"
            executor.termination = (
                "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
                f"Executor did not re-register within {timeout:g} secs",
            )
        if executor.container is not None:
            self._containerizer.destroy(executor.container)

    # ------------------------------------------------------------------ the executor API

    def subscribe(self, call: dict[str, Any]) -> tuple[ExecutorRun, queue.Queue[dict[str, Any] | None]]:
        executor = self._caller(call)
        subscribe = call.get("subscribe") or {}
        stream: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with executor.lock:
            if executor.state not in ("REGISTERING", "RUNNING"):
                raise ExecutorCallError(403, "Executor is terminating")
            if executor.stream is not None:
                executor.stream.put(None)  # a re-subscription replaces the old connection
            executor.stream = stream
            executor.state = "RUNNING"
            queued, executor.queued = executor.queued, []
        framework_info = self._frameworks.get(executor.framework_id)
        stream.put(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "executor_info": executor.info,
                    "framework_info": framework_info,
                    "agent_info": self._master.agent_info(),
                    "container_id": {"value": executor.container_id},
                },
            }
        )
        # Updates the executor sent but never saw acknowledged (the agent restarted meanwhile) are taken again.
        known = {
            s.get("uuid") for r in executor.tasks.values() for s in self._runs.unacknowledged(r.framework_id, r.task_id)
        }
        for status in subscribe.get("unacknowledged_updates") or []:
            status = (status or {}).get("status") or status
            if isinstance(status, dict) and status.get("uuid") not in known:
                try:
                    self._update(executor, status)
                except ExecutorCallError as exc:
                    log.info("dropping an unacknowledged update of executor %s: %s", executor.executor_id, exc)
        if executor.container is not None:
            resources = executor.resources()
            self._containerizer.update(executor.container, resources.scalar("cpus"), resources.scalar("mem"))
        group = (executor.info.get("type") or "") == "DEFAULT" or any(r.group is not None for r in queued)
        if queued:
            self._deliver(executor, queued, group)
        return executor, stream

    def disconnected(self, executor: ExecutorRun, stream: queue.Queue[dict[str, Any] | None]) -> None:
        with executor.lock:
            if executor.stream is stream:
                executor.stream = None

    def call(self, call: dict[str, Any]) -> None:
        """UPDATE, MESSAGE, HEARTBEAT (SUBSCRIBE has its own path: it answers with a stream)."""
        executor = self._caller(call)
        kind = call.get("type")
        if kind == "UPDATE":
            status = (call.get("update") or {}).get("status")
            if not isinstance(status, dict):
                raise ExecutorCallError(400, "Expecting 'update.status' to be present")
            self._update(executor, status)
        elif kind == "MESSAGE":
            data = (call.get("message") or {}).get("data")
            if not isinstance(data, str):
                raise ExecutorCallError(400, "Expecting 'message.data' to be present")
            self._master.executor_message(executor.framework_id, executor.executor_id, data)
        elif kind == "HEARTBEAT":
            return
        else:
            raise ExecutorCallError(400, f"Failed to validate executor::Call: unknown call type '{kind}'")

    def _caller(self, call: dict[str, Any]) -> ExecutorRun:
        framework_id = proto.unwrap(call.get("framework_id"))
        executor_id = proto.unwrap(call.get("executor_id"))
        if not isinstance(call.get("type"), str) or not framework_id or not executor_id:
            raise ExecutorCallError(400, "Failed to convert JSON into Call protobuf: Missing required fields")
        if not self._frameworks.known(framework_id):
            raise ExecutorCallError(400, "Framework cannot be found")
        executor = self.get(framework_id, executor_id)
        if executor is None:
            raise ExecutorCallError(400, "Executor cannot be found")
        if executor.state == "TERMINATED":
            raise ExecutorCallError(403, "Executor has terminated")
        return executor

    def _update(self, executor: ExecutorRun, status: dict[str, Any]) -> None:
        task_id = proto.unwrap(status.get("task_id"))
        if not task_id or not isinstance(status.get("state"), str):
            raise ExecutorCallError(400, "Failed to convert JSON into Call protobuf: Missing required fields")
        if not status.get("uuid"):
            raise ExecutorCallError(400, "Failed to validate executor::Call: Expecting 'uuid' to be present")
        if status["state"] == "TASK_STAGING":
            raise ExecutorCallError(400, "Failed to validate executor::Call: 'TASK_STAGING' is not a valid state")
        run = executor.tasks.get(task_id)
        if run is None:
            raise ExecutorCallError(400, f"Task '{task_id}' is not known to this executor")
        self._runs.executor_update(run, status)
        executor.send({"type": "ACKNOWLEDGED", "acknowledged": {"task_id": {"value": task_id}, "uuid": status["uuid"]}})
        if proto.is_terminal(status["state"]) and executor.container is not None:
            resources = executor.resources()
            self._containerizer.update(executor.container, resources.scalar("cpus"), resources.scalar("mem"))

    # ------------------------------------------------------------------ kill, messages, shutdown, exit

    def kill_task(self, run: TaskRun, kill_policy: Any) -> None:
        executor = run.executor
        assert executor is not None
        with executor.lock:
            queued = run in executor.queued
            if queued:
                executor.queued.remove(run)
        if queued or executor.state not in ("RUNNING",):
            # The executor never saw the task: the agent answers for it (Mesos does the same).
            self._runs.report(run, "TASK_KILLED", None, "Killed before delivery to the executor")
            return
        kill: dict[str, Any] = {"task_id": {"value": run.task_id}}
        policy = kill_policy or run.info.get("kill_policy")
        if policy:
            kill["kill_policy"] = policy
        executor.send({"type": "KILL", "kill": kill})

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> bool:
        executor = self.get(framework_id, executor_id)
        return executor is not None and executor.send({"type": "MESSAGE", "message": {"data": data}})

    def shutdown(self, executor: ExecutorRun, reason: str | None = None) -> None:
        """SHUTDOWN now, destroy after the grace period if it is still there."""
        with executor.lock:
            if executor.state in ("TERMINATING", "TERMINATED"):
                return
            subscribed = executor.state == "RUNNING"
            executor.state = "TERMINATING"
            if reason:
                executor.termination = (reason, "Executor shut down")
        if executor.container is None:
            self._fail_tasks(executor, reason or "REASON_EXECUTOR_TERMINATED", "Executor shut down")
            return
        if subscribed and executor.send({"type": "SHUTDOWN"}):
            grace = self._timeouts.shutdown_grace
            container = executor.container

            def escalate() -> None:
                if not container.exited.wait(grace):
                    self._containerizer.destroy(container)

            threading.Thread(target=escalate, daemon=True).start()
        else:
            self._containerizer.destroy(executor.container)

    def destroy(self, executor: ExecutorRun) -> Container | None:
        """Kill it at once, without SHUTDOWN (the agent is going away); answers the container to wait for."""
        with executor.lock:
            if executor.state != "TERMINATED":
                executor.state = "TERMINATING"
        if executor.container is not None:
            self._containerizer.destroy(executor.container)
        return executor.container

    def exited(self, executor: ExecutorRun, termination: Termination) -> None:
        """The executor's container ended: its unfinished tasks fail with the reason."""
        with executor.lock:
            executor.state = "TERMINATED"
            if executor.stream is not None:
                executor.stream.put(None)
                executor.stream = None
        reason, message = executor.termination or (
            "REASON_EXECUTOR_TERMINATED",
            f"Executor terminated: {termination.describe()}",
        )
        if termination.oom:
            reason = "REASON_CONTAINER_LIMITATION_MEMORY"
            message = "Memory limit exceeded by the executor's container"
        self._fail_tasks(executor, reason, message)
        with self._lock:
            if self.executors.get(executor.key) is executor:
                del self.executors[executor.key]
        self._master.executor_exited(executor.key[0], executor.key[1], termination.wait_status())

    def _fail_tasks(self, executor: ExecutorRun, reason: str, message: str) -> None:
        with executor.lock:
            executor.state = "TERMINATED"
            runs = [r for r in executor.tasks.values() if not r.terminal]
            executor.queued = []
        for run in runs:
            state = "TASK_KILLED" if run.kill_requested else "TASK_FAILED"
            self._runs.report(run, state, reason, message)
        with self._lock:
            if self.executors.get(executor.key) is executor and executor.container is None:
                del self.executors[executor.key]
