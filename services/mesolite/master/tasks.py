"""Tasks through their life on the master: launched from accepted offers, updated by their agents, killed,
acknowledged, reconciled; and the framework messages and executor shutdowns relayed to agents.

Called with the master's lock held; agent messages go out through ``AgentMessages`` (fire-and-forget), and a
launch that cannot be delivered comes back through ``on_launch_failure``, which takes the lock first.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from mesolite.core import protocol as proto
from mesolite.core.resources import Resources
from mesolite.master import calls, events, validation
from mesolite.master.agent_link import AgentMessages
from mesolite.master.model import Agent, Cluster, Framework, Task
from mesolite.master.offers import OfferBook
from mesolite.master.operator_events import OperatorEvents


class TaskLifecycle:
    def __init__(
        self,
        cluster: Cluster,
        offers: OfferBook,
        messages: AgentMessages,
        metrics: dict[str, float],
        wake: Callable[[], None],
        on_launch_failure: Callable[[Task, str], None],
        operator_events: OperatorEvents,
    ) -> None:
        self._cluster = cluster
        self._operator_events = operator_events
        self._offers = offers
        self._messages = messages
        self._metrics = metrics
        self._wake = wake
        self._on_launch_failure = on_launch_failure

    # ------------------------------------------------------------------ launching

    def accept(self, framework: Framework, call: calls.Accept) -> None:
        offers, invalid = validation.offers_error(framework, call.offer_ids, self._cluster.offers, self._cluster.agents)
        if invalid:
            for offer in offers:
                self._offers.remove(offer.id)
            lost = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            for spec in call.tasks:
                self._reject(framework, spec, lost, "REASON_INVALID_OFFERS", invalid)
            self._wake()
            return
        agent = self._cluster.agents[offers[0].agent_id]
        remaining = Resources()
        for offer in offers:
            remaining = remaining + offer.resources
            self._offers.remove(offer.id, recover=False)
        role = offers[0].role
        for launch in call.launches:
            for spec in launch.tasks:
                remaining = self._launch(framework, agent, role, spec, launch.group_executor, remaining)
        if remaining and call.refuse_seconds > 0:
            self._offers.add_filter(framework, agent.id, remaining, call.refuse_seconds)
        self._wake()

    def _launch(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        spec: calls.TaskSpec,
        group_executor: dict[str, Any] | None,
        remaining: Resources,
    ) -> Resources:
        """Launch one task if it is valid and fits in what is left of the offers; returns what is left then."""
        error, taken = validation.task_error(framework, agent, spec, group_executor, remaining)
        if error is not None:
            self._reject(framework, spec, "TASK_ERROR", "REASON_TASK_INVALID", error)
            return remaining
        executor_id = spec.executor_id or spec.task_id
        task = Task(
            id=spec.task_id,
            framework_id=framework.id,
            agent_id=agent.id,
            executor_id=executor_id,
            name=spec.name,
            resources=taken.task,
            role=role,
            info=spec.info,
            executor_info=spec.executor,
        )
        framework.tasks[task.id] = task
        framework.changed()
        agent.tasks[(framework.id, task.id)] = task
        self._operator_events.task_added(task)
        if taken.executor:
            agent.executors[(framework.id, executor_id)] = taken.executor
            if group_executor is None:
                agent.custom_executors.add((framework.id, executor_id))
        agent.changed()
        self._messages.launch(
            agent.endpoint,
            agent.id,
            framework.framework_info(),
            spec.info,
            role,
            group_executor,
            on_failure=functools.partial(self._on_launch_failure, task),
        )
        return remaining - taken.task - taken.executor

    def _reject(self, framework: Framework, spec: calls.TaskSpec, state: str, reason: str, message: str) -> None:
        status = proto.task_status(
            spec.task_id,
            state,
            agent_id=spec.agent_id,
            source="SOURCE_MASTER",
            reason=reason,
            message=message,
            with_uuid=False,
        )
        framework.send(events.update(framework, status))

    def launch_failed(self, task: Task, error: str) -> None:
        """The agent never got the task: it is lost (dropped, for partition-aware frameworks)."""
        framework = self._cluster.frameworks.get(task.framework_id)
        if framework is None or framework.tasks.get(task.id) is not task or task.state != "TASK_STAGING":
            return
        status = proto.task_status(
            task.id,
            "TASK_DROPPED" if framework.partition_aware else "TASK_LOST",
            agent_id=task.agent_id,
            source="SOURCE_MASTER",
            reason="REASON_AGENT_DISCONNECTED",
            message=f"Failed to deliver the task to its agent: {error}",
            with_uuid=False,
        )
        self.apply_status(task, status)
        self.release(task)
        self.finish(task)
        framework.send(events.update(framework, status))

    # ------------------------------------------------------------------ scheduler calls

    def kill(self, framework: Framework, call: calls.Kill) -> None:
        task = framework.tasks.get(call.task_id)
        if task is None:
            # Mesos answers a kill of an unknown task by reconciling it.
            self._reconcile_one(framework, calls.ReconcileTask(call.task_id, call.agent_id))
            return
        agent = self._cluster.active_agent(task.agent_id)
        if agent is not None:
            self._messages.kill(agent.endpoint, framework.id, call.task_id, call.kill_policy)

    def acknowledge(self, framework: Framework, call: calls.Acknowledge) -> None:
        task = framework.tasks.get(call.task_id)
        if task is not None and task.terminal_uuid == call.uuid:
            self.finish(task)
        agent = self._cluster.active_agent(call.agent_id)
        if agent is not None:
            self._messages.acknowledge(agent.endpoint, framework.id, call.task_id, call.uuid)

    def reconcile(self, framework: Framework, call: calls.Reconcile) -> None:
        if call.tasks is None:
            for task in list(framework.tasks.values()) + list(framework.unreachable_tasks.values()):
                framework.send(events.update(framework, self._reconciliation_status(task)))
            return
        for entry in call.tasks:
            self._reconcile_one(framework, entry)

    def _reconciliation_status(self, task: Task) -> dict[str, Any]:
        status = proto.task_status(
            task.id,
            task.state,
            agent_id=task.agent_id,
            executor_id=task.executor_id if task.executor_id != task.id else None,
            source="SOURCE_MASTER",
            reason="REASON_RECONCILIATION",
            with_uuid=False,
        )
        if task.last_status:
            for key in ("healthy", "container_status", "labels", "message"):
                if key in task.last_status:
                    status[key] = task.last_status[key]
        if task.unreachable_time is not None:
            status["unreachable_time"] = {"nanoseconds": int(task.unreachable_time * 1e9)}
        return status

    def _reconcile_one(self, framework: Framework, entry: calls.ReconcileTask) -> None:
        """Mesos' explicit reconciliation table (docs/reconciliation.md)."""
        task = framework.tasks.get(entry.task_id) or framework.unreachable_tasks.get(entry.task_id)
        if task is not None:
            framework.send(events.update(framework, self._reconciliation_status(task)))
            return
        agent = self._cluster.agents.get(entry.agent_id) if entry.agent_id else None
        if entry.agent_id is None and any(a.state == "RECOVERED" for a in self._cluster.agents.values()):
            return  # may be on an agent that has not re-registered yet: no answer, the scheduler asks again
        if agent is not None and agent.state == "RECOVERED":
            return
        if agent is not None and agent.active:
            state = "TASK_GONE"
        elif agent is not None and agent.state == "UNREACHABLE":
            state = "TASK_UNREACHABLE"
        else:
            state = "TASK_UNKNOWN"
        status = proto.task_status(
            entry.task_id,
            state,
            agent_id=entry.agent_id,
            source="SOURCE_MASTER",
            reason="REASON_RECONCILIATION",
            message="Reconciliation: task is unknown",
            with_uuid=False,
        )
        framework.send(events.update(framework, status))

    def message(self, framework: Framework, call: calls.Message) -> None:
        agent = self._cluster.active_agent(call.agent_id)
        if agent is None:
            self._metrics["master/dropped_messages"] += 1
            return
        self._messages.framework_message(agent.endpoint, framework.id, call.executor_id, call.data)

    def shutdown_executor(self, framework: Framework, call: calls.Shutdown) -> None:
        agent = self._cluster.active_agent(call.agent_id)
        if agent is None or not call.executor_id:
            return
        self._messages.shutdown_executor(agent.endpoint, framework.id, call.executor_id)

    # ------------------------------------------------------------------ agent reports

    def status_update(self, update: calls.StatusUpdate) -> bool:
        """A status update forwarded by an agent. Returns True when the master itself settles the update (the
        framework is gone), so the agent stops retrying it."""
        agent = self._cluster.agents.get(update.agent_id or "")
        if agent is not None:
            agent.last_seen = time.time()
        framework = self._cluster.frameworks.get(update.framework_id)
        if framework is None:
            return True
        task = framework.tasks.get(update.task_id)
        if task is not None:
            self.apply_status(task, update.status)
            if proto.is_terminal(task.state):
                self.release(task)
                if update.uuid:
                    task.terminal_uuid = update.uuid
                else:
                    self.finish(task)
        if not framework.connected:
            self._metrics["master/dropped_messages"] += 1
            return False
        framework.send(events.update(framework, update.status))
        return False

    # ------------------------------------------------------------------ transitions shared with agents/frameworks

    def apply_status(self, task: Task, status: dict[str, Any]) -> None:
        previous = task.state
        task.state = str(status.get("state", task.state))
        task.last_status = status
        entry: dict[str, Any] = {"state": task.state, "timestamp": status.get("timestamp", time.time())}
        for key in ("container_status", "healthy", "labels"):
            if key in status:
                entry[key] = status[key]
        task.statuses.append(entry)
        self._operator_events.task_updated(task, status, previous)

    def release(self, task: Task) -> None:
        """Resources of a terminal task return to the pool at once; the record waits for the acknowledgement."""
        framework = self._cluster.frameworks.get(task.framework_id)
        if framework is not None:
            framework.changed()
        agent = self._cluster.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.pop((task.framework_id, task.id), None)
            agent.changed()
            executor_key = (task.framework_id, task.executor_id)
            # A task group's executor ends with its last task; a custom executor runs on until it exits
            # (executor_exited), so its resources stay allocated until then.
            if (
                executor_key in agent.executors
                and executor_key not in agent.custom_executors
                and not any(
                    t.executor_id == task.executor_id and t.framework_id == task.framework_id
                    for t in agent.tasks.values()
                )
            ):
                del agent.executors[executor_key]
        self._wake()

    def finish(self, task: Task) -> None:
        """The task leaves its framework's active list for the completed ones."""
        framework = self._cluster.frameworks.get(task.framework_id)
        if framework is None:
            return
        framework.changed()
        if framework.tasks.pop(task.id, None) is not None:
            framework.completed_tasks.append(task)
