"""Agent recovery (Mesos' Slave::recover, docs/agent-recovery.md): take back what the previous agent process left.

With ``--recover=reconnect`` (the default) a restarted agent re-registers under the id it had, with the frameworks,
custom executors and tasks that their frameworks checkpointed: running containers are reattached, unacknowledged
status updates resent, and what ended while no agent was there is reported. Containers nobody can take back (those
of frameworks that do not checkpoint, every one after a reboot or with ``--recover=cleanup``) are destroyed.
"""

from __future__ import annotations

import logging
from typing import Any

from mesolite.agent.checkpoint import Checkpoint, destroy_container
from mesolite.agent.containerizer import Containerizer
from mesolite.agent.executors import ExecutorManager
from mesolite.agent.launcher import Launcher
from mesolite.agent.runs import STATUS_FIELDS, ExecutorRun, Frameworks, Runs, TaskRun

log = logging.getLogger(__name__)


class Recovery:
    def __init__(
        self,
        checkpoint: Checkpoint,
        frameworks: Frameworks,
        runs: Runs,
        executors: ExecutorManager,
        launcher: Launcher,
        containerizer: Containerizer,
    ) -> None:
        self._checkpoint = checkpoint
        self._frameworks = frameworks
        self._runs = runs
        self._executors = executors
        self._launcher = launcher
        self._containerizer = containerizer

    def agent_id(self, reconnect: bool) -> str | None:
        """The id to re-register with (None: register as a new agent)."""
        return self._checkpoint.recovered_agent_id() if reconnect else None

    def run(self, agent_id: str | None) -> None:
        """Take back what the agent ``agent_id`` checkpointed (None: nothing), destroy every other container."""
        records = {str(r["id"]): r for r in self._checkpoint.containers()}
        if agent_id is not None:
            self._frameworks.recovered(self._checkpoint.frameworks(agent_id))
            self._recover_executors(agent_id, records)
            self._recover_tasks(agent_id, records)
        for record in records.values():
            log.info("destroying container %s left by the previous agent (not recoverable)", record.get("id"))
            destroy_container(self._checkpoint, record)
        if agent_id is not None:
            log.info(
                "recovered agent %s: %d tasks, %d executors",
                agent_id,
                len(self._runs.active()),
                len(self._executors.all()),
            )

    def _recover_executors(self, agent_id: str, records: dict[str, dict[str, Any]]) -> None:
        for record in self._checkpoint.executors(agent_id):
            container_record = records.pop(str(record.get("container_id")), None)
            if container_record is None or not self._frameworks.known(str(record.get("framework_id"))):
                continue
            self._executors.recovered(ExecutorRun.from_record(record), container_record)

    def _recover_tasks(self, agent_id: str, records: dict[str, dict[str, Any]]) -> None:
        for task_dir, record, entries in self._checkpoint.tasks(agent_id):
            run = TaskRun.from_record(record, task_dir)
            statuses = [e["status"] for e in entries if isinstance(e.get("status"), dict)]
            acknowledged = {e["ack"] for e in entries if "ack" in e}
            unacknowledged = [s for s in statuses if s.get("uuid") not in acknowledged]
            run.started.set()
            for status in statuses:
                run.state = str(status.get("state"))
                run.statuses.append({k: status[k] for k in STATUS_FIELDS if k in status})
            if run.terminal and not unacknowledged:
                self._checkpoint.remove_task(task_dir)
                continue
            self._runs.recovered(run, unacknowledged)
            if run.terminal:
                continue
            if record.get("custom_executor"):
                self._recover_executor_task(run)
                continue
            container_id = run.container_id if not record.get("group") else f"{run.container_id}.{run.task_id}"
            container_record = records.pop(container_id, None)
            if container_record is None:
                self._launcher.report(
                    run, "TASK_FAILED", "REASON_AGENT_RESTARTED", "The agent restarted while launching the task"
                )
                continue
            container, termination = self._containerizer.recover(container_record, run)
            run.container = container
            if termination is not None:
                self._launcher.finished(run, termination)
            elif run.state == "TASK_RUNNING":
                self._launcher.start_health_checks(run)

    def _recover_executor_task(self, run: TaskRun) -> None:
        executor = self._executors.get(run.framework_id, run.executor_id)
        if executor is None:
            self._runs.report(
                run, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", "Executor terminated while the agent was down"
            )
            return
        run.executor = executor
        with executor.lock:
            executor.tasks[run.task_id] = run
            if run.state == "TASK_STAGING":
                executor.queued.append(run)
