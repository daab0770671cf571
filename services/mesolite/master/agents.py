"""Agents through their life on the master: admitted (or re-admitted with the tasks they still run), kept alive by
heartbeats, declared unreachable when they stop answering; and what their executors report.

Called with the master's lock held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mesolite.core import protocol as proto
from mesolite.master import calls, events
from mesolite.master.model import Agent, Cluster, Framework, Task
from mesolite.master.offers import OfferBook
from mesolite.master.operator_events import OperatorEvents
from mesolite.master.registry import Registry
from mesolite.master.tasks import TaskLifecycle

log = logging.getLogger(__name__)


class AgentLifecycle:
    def __init__(
        self,
        cluster: Cluster,
        registry: Registry,
        offers: OfferBook,
        tasks: TaskLifecycle,
        metrics: dict[str, float],
        wake: Callable[[], None],
        master_id: str,
        operator_events: OperatorEvents,
    ) -> None:
        self._cluster = cluster
        self._operator_events = operator_events
        self._registry = registry
        self._offers = offers
        self._tasks = tasks
        self._metrics = metrics
        self._wake = wake
        self._master_id = master_id

    def register(self, registration: calls.Registration) -> str:
        """Registration and re-registration: an agent that presents an id keeps it, with the tasks it still runs.
        Returns the agent's id."""
        now = time.time()
        agent_id = registration.agent_id
        existing = self._cluster.agents.get(agent_id) if agent_id else None
        if agent_id and existing is None:
            # An id the registry does not know (a lost work dir on our side): admit it again under that id.
            log.info("admitting agent %s that presented an unknown id", agent_id)
        if not agent_id:
            agent_id = self._registry.new_agent_id(self._master_id)
        if existing is not None:
            self._offers.rescind_agent(existing)
            agent = existing
            agent.hostname, agent.ip, agent.port = registration.hostname, registration.ip, registration.port
            agent.resources, agent.attributes = registration.resources, registration.attributes
            agent.reregistered_time = now
            agent.state = "ACTIVE"
            agent.unreachable_time = None
        else:
            agent = Agent(
                agent_id,
                registration.hostname,
                registration.ip,
                registration.port,
                registration.resources,
                registration.attributes,
                registered_time=now,
            )
            self._cluster.agents[agent_id] = agent
            if registration.agent_id:
                agent.reregistered_time = now
        agent.last_seen = now
        self._registry.save_agent(agent)
        self._operator_events.agent_added(agent)
        self._adopt_tasks(agent, registration)
        self._wake()
        return agent.id

    def _adopt_tasks(self, agent: Agent, registration: calls.Registration) -> None:
        """What a re-registering agent reports is the truth about its tasks (master state is soft)."""
        reported: dict[tuple[str, str], Task] = {}
        for entry in registration.tasks:
            framework = self._framework_of(entry.framework_id, registration)
            if framework is None:
                continue
            task = framework.tasks.get(entry.task_id) or framework.unreachable_tasks.pop(entry.task_id, None)
            learned = task is None
            if task is None:
                task = Task(
                    id=entry.task_id,
                    framework_id=entry.framework_id,
                    agent_id=agent.id,
                    executor_id=entry.executor_id,
                    name=entry.name,
                    resources=entry.resources,
                    role=entry.role or framework.roles[0],
                    info=entry.info,
                )
            task.agent_id = agent.id
            task.state = entry.state or task.state
            task.unreachable_time = None
            if entry.statuses:
                task.statuses = list(entry.statuses)
            framework.tasks[entry.task_id] = task
            framework.changed()
            reported[(entry.framework_id, entry.task_id)] = task
            if learned:
                self._operator_events.task_added(task)
        # Tasks the master believed were on this agent but that it no longer has are gone.
        for key, task in list(agent.tasks.items()):
            if key not in reported and not proto.is_terminal(task.state):
                status = proto.task_status(
                    task.id,
                    "TASK_GONE",
                    agent_id=agent.id,
                    source="SOURCE_MASTER",
                    reason="REASON_AGENT_RESTARTED",
                    message="Task was not found on the re-registered agent",
                    with_uuid=False,
                )
                self._tasks.apply_status(task, status)
                self._tasks.finish(task)
                framework = self._cluster.frameworks.get(task.framework_id)
                if framework is not None:
                    framework.send(events.update(framework, status))
        agent.tasks = reported
        agent.changed()

    def _framework_of(self, framework_id: str, registration: calls.Registration) -> Framework | None:
        """The framework of a reported task; one the master does not know comes back as recovered, from the
        FrameworkInfo the agent reports with it."""
        framework = self._cluster.frameworks.get(framework_id)
        if framework is None:
            info = registration.frameworks.get(framework_id)
            if info is None:
                return None
            now = time.time()
            framework = Framework.recovered_from(framework_id, dict(info), now, now)
            self._cluster.frameworks[framework_id] = framework
            self._operator_events.framework_added(framework)
        return framework

    def unregister(self, agent_id: str | None) -> bool:
        """An agent leaving for good (SIGUSR1; Mesos' UnregisterSlaveMessage): it is removed, from the registry too,
        whatever it still ran is TASK_LOST (REASON_AGENT_REMOVED), and frameworks get the agent's FAILURE event.
        False for an agent the master does not know."""
        agent = self._cluster.agents.get(agent_id or "")
        if agent is None:
            return False
        log.info("agent %s (%s) unregistered", agent.id, agent.endpoint)
        self._offers.rescind_agent(agent)
        del self._cluster.agents[agent.id]
        self._registry.forget_agent(agent.id)
        for task in list(agent.tasks.values()):
            framework = self._cluster.frameworks.get(task.framework_id)
            if framework is None or proto.is_terminal(task.state):
                continue
            status = proto.task_status(
                task.id,
                "TASK_LOST",
                agent_id=agent.id,
                source="SOURCE_MASTER",
                reason="REASON_AGENT_REMOVED",
                message=f"Agent {agent.hostname} removed: the agent unregistered",
                with_uuid=False,
            )
            self._tasks.apply_status(task, status)
            self._tasks.finish(task)
            framework.send(events.update(framework, status))
        for framework in self._cluster.frameworks.values():
            framework.send(events.failure(agent.id))
        self._operator_events.agent_removed(agent.id)
        self._wake()
        return True

    def heartbeat(self, agent_id: str | None) -> bool:
        """False tells the agent the master does not know it (a restart): it re-registers with its tasks."""
        agent = self._cluster.active_agent(agent_id)
        if agent is None:
            return False
        agent.last_seen = time.time()
        return True

    def executor_message(self, message: calls.ExecutorMessage) -> None:
        """Executor → scheduler framework message, relayed as a MESSAGE event."""
        framework = self._cluster.frameworks.get(message.framework_id or "")
        if framework is None or not framework.connected:
            self._metrics["master/dropped_messages"] += 1
            return
        framework.send(events.message(message.agent_id, message.executor_id, message.data))

    def executor_exited(self, exited: calls.ExecutorExited) -> None:
        """A custom executor's process ended: its resources return, and its framework gets the FAILURE event that
        schedulers turn into ``executorLost``."""
        agent = self._cluster.agents.get(exited.agent_id)
        if agent is not None:
            key = (exited.framework_id, exited.executor_id)
            agent.executors.pop(key, None)
            agent.custom_executors.discard(key)
            agent.changed()
            self._wake()
        framework = self._cluster.frameworks.get(exited.framework_id)
        if framework is not None:
            framework.send(events.failure(exited.agent_id, exited.executor_id, exited.status))

    def check_health(self, now: float, ping_limit: float, reregister_timeout: float) -> None:
        """Agents silent for ``ping_limit`` seconds, and recovered ones that did not come back within
        ``reregister_timeout``, are unreachable."""
        for agent in list(self._cluster.agents.values()):
            if agent.active and now - agent.last_seen > ping_limit:
                self.unreachable(agent, "REASON_AGENT_UNREACHABLE", "Agent stopped answering pings")
            elif agent.state == "RECOVERED" and now - agent.last_seen > reregister_timeout:
                self.unreachable(agent, "REASON_AGENT_UNREACHABLE", "Agent did not re-register in time")

    def unreachable(self, agent: Agent, reason: str, message: str) -> None:
        """Its tasks become unreachable (lost, for frameworks that are not partition-aware) and every framework
        hears of the agent's failure."""
        log.warning("agent %s (%s) is unreachable: %s", agent.id, agent.endpoint, message)
        agent.state = "UNREACHABLE"
        unreachable_time = agent.unreachable_time = time.time()
        self._offers.rescind_agent(agent)
        for task in list(agent.tasks.values()):
            framework = self._cluster.frameworks.get(task.framework_id)
            if framework is None:
                continue
            status = proto.task_status(
                task.id,
                "TASK_UNREACHABLE",
                agent_id=agent.id,
                source="SOURCE_MASTER",
                reason=reason,
                message=message,
                with_uuid=False,
                unreachable_time={"nanoseconds": int(unreachable_time * 1e9)},
            )
            self._tasks.apply_status(task, status)
            task.unreachable_time = unreachable_time
            framework.tasks.pop(task.id, None)
            framework.changed()
            if framework.partition_aware:
                framework.unreachable_tasks[task.id] = task
            else:
                framework.completed_tasks.append(task)
            framework.send(events.update(framework, status))
        agent.tasks.clear()
        agent.executors.clear()
        agent.changed()
        for framework in self._cluster.frameworks.values():
            framework.send(events.failure(agent.id))
        self._wake()
