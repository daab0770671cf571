"""What an operator decides about agents and machines: drain, deactivate, reactivate, mark gone, the maintenance
schedule and machines going down and up, and who is refused at registration.

Mesos' semantics (``src/master/http.cpp``, ``master.cpp``):
- DEACTIVATE_AGENT: no more offers (and offers out are rescinded), tasks keep running; REACTIVATE_AGENT undoes it.
- DRAIN_AGENT: deactivated, and the agent kills every task (each with its kill policy's grace period, capped by
  ``max_grace_period``); ``drain_info.state`` is DRAINING until the master has no task left there (each leaves once
  its terminal update is acknowledged), then DRAINED — or, with ``mark_gone``, the agent is marked gone. Drains
  cannot be cancelled; REACTIVATE_AGENT after DRAINED lets offers flow again.
- MARK_AGENT_GONE: the agent is shut down for good; its tasks become TASK_GONE_BY_OPERATOR (TASK_LOST for frameworks
  that are not partition-aware) and its id is refused ever after.
- A machine brought DOWN has its agents removed at once (every task TASK_LOST, ``AGENT_REMOVED`` on the operator
  stream), and agents on it are refused until it comes UP.
All of it is written to the registry first, so a new leader carries it on. Called with the master's lock held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from mesolite.core import protocol as proto
from mesolite.master import calls, events
from mesolite.master.agent_link import AgentMessages
from mesolite.master.errors import AgentRefused, Conflict, InvalidCall, NotFound
from mesolite.master.inverse_offers import InverseOfferBook
from mesolite.master.maintenance import MachineID, Maintenance, MaintenanceError, Window
from mesolite.master.model import Agent, Cluster, Task
from mesolite.master.offers import OfferBook
from mesolite.master.operator_calls import DrainAgent
from mesolite.master.operator_events import OperatorEvents
from mesolite.master.registry import Registry
from mesolite.master.tasks import TaskLifecycle

log = logging.getLogger(__name__)

MACHINE_DOWN = "Operator initiated 'Machine DOWN'"
MARKED_GONE = "Agent has been marked gone"


class AgentOperations:
    def __init__(
        self,
        cluster: Cluster,
        registry: Registry,
        offers: OfferBook,
        inverse_offers: InverseOfferBook,
        tasks: TaskLifecycle,
        messages: AgentMessages,
        operator_events: OperatorEvents,
        wake: Callable[[], None],
    ) -> None:
        self._cluster = cluster
        self._registry = registry
        self._offers = offers
        self._inverse = inverse_offers
        self._tasks = tasks
        self._messages = messages
        self._operator_events = operator_events
        self._wake = wake
        self.maintenance = Maintenance()
        self._inverse.use_maintenance(self.maintenance)
        self.gone: set[str] = set()

    def recover(self) -> None:
        """A new term: the schedule, the DOWN machines and the gone agents come from the registry."""
        self.maintenance = Maintenance.from_record(self._registry.maintenance())
        self._inverse.use_maintenance(self.maintenance)
        self.gone = self._registry.gone_agents()
        for agent in self._cluster.agents.values():
            self._apply_unavailability(agent)

    # ------------------------------------------------------------------ registration

    def check_admission(self, registration: calls.Registration) -> None:
        """Agents on DOWN machines and gone agents get Mesos' ShutdownMessage instead of a registration."""
        if registration.agent_id and registration.agent_id in self.gone:
            raise AgentRefused(MARKED_GONE)
        if self.maintenance.mode(MachineID.of_agent(registration.hostname, registration.ip)) == "DOWN":
            raise AgentRefused("Machine is `DOWN`")

    def admitted(self, agent: Agent) -> None:
        """After (re-)registration: the machine's unavailability, and a drain in progress is sent again."""
        self._apply_unavailability(agent)
        if agent.drain_info is not None and agent.drain_info.get("state") == "DRAINING":
            self._messages.drain(agent.endpoint, dict(agent.drain_info.get("config") or {}))

    def _apply_unavailability(self, agent: Agent) -> bool:
        unavailability = self.maintenance.unavailability(MachineID.of_agent(agent.hostname, agent.ip))
        wanted = unavailability.to_json() if unavailability is not None else None
        if agent.unavailability == wanted:
            return False
        agent.unavailability = wanted
        return True

    # ------------------------------------------------------------------ agents

    def _known(self, agent_id: str) -> Agent:
        agent = self._cluster.agents.get(agent_id)
        if agent is None:
            raise InvalidCall("Unknown agent")
        return agent

    def drain(self, call: DrainAgent) -> None:
        agent = self._known(call.agent_id)
        machine = MachineID.of_agent(agent.hostname, agent.ip)
        if self.maintenance.mode(machine) != "UP":
            raise InvalidCall(
                f"Agent {agent.id} is part of a maintenance schedule under Machine {machine.hostname}@{machine.ip}"
            )
        config: dict[str, Any] = {"mark_gone": call.mark_gone}
        if call.max_grace_period is not None:
            config["max_grace_period"] = {"nanoseconds": int(call.max_grace_period * 1e9)}
        agent.drain_info = {"state": "DRAINING", "config": config}
        agent.drain_start_time = time.time()
        agent.deactivated = True
        self._registry.save_agent(agent)
        self._offers.rescind_agent(agent)
        self._inverse.rescind_agent(agent.id)
        if agent.active:
            self._messages.drain(agent.endpoint, config)
        self.check_drained(agent)

    def deactivate(self, agent_id: str) -> None:
        agent = self._known(agent_id)
        agent.deactivated = True
        self._registry.save_agent(agent)
        self._offers.rescind_agent(agent)
        self._inverse.rescind_agent(agent.id)

    def reactivate(self, agent_id: str) -> None:
        agent = self._known(agent_id)
        if not agent.deactivated:
            raise InvalidCall("Agent is not deactivated")
        if agent.drain_info is not None and agent.drain_info.get("state") == "DRAINING":
            raise InvalidCall("Agent is still in the DRAINING state")
        agent.deactivated = False
        agent.drain_info = None
        agent.drain_start_time = None
        self._registry.save_agent(agent)
        self._wake()
        if not agent.active:
            raise Conflict("Agent removed while processing the call")

    def check_drains(self) -> None:
        for agent in list(self._cluster.agents.values()):
            if agent.drain_info is not None and agent.drain_info.get("state") == "DRAINING":
                self.check_drained(agent)

    def check_drained(self, agent: Agent) -> None:
        """DRAINED once the master holds no task on the agent; or, with ``mark_gone``, gone."""
        if any(t.agent_id == agent.id for f in self._cluster.frameworks.values() for t in self._tasks_of(f)):
            return
        assert agent.drain_info is not None
        if agent.drain_info.get("config", {}).get("mark_gone"):
            self.mark_gone(agent.id)
            return
        agent.drain_info = {**agent.drain_info, "state": "DRAINED"}
        self._registry.save_agent(agent)
        log.info("agent %s is drained", agent.id)

    @staticmethod
    def _tasks_of(framework: Any) -> list[Task]:
        return list(framework.tasks.values()) + list(framework.unreachable_tasks.values())

    def mark_gone(self, agent_id: str) -> None:
        if agent_id in self.gone:
            return
        agent = self._cluster.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"Agent '{agent_id}' not found")
        self._registry.mark_gone(agent.id, time.time())
        self.gone.add(agent.id)
        self._remove(agent, MARKED_GONE, gone=True)

    # ------------------------------------------------------------------ maintenance

    def update_schedule(self, windows: Sequence[Window]) -> None:
        try:
            self.maintenance.update_schedule(windows)
        except MaintenanceError as exc:
            raise InvalidCall(str(exc)) from None
        self._registry.save_maintenance(self.maintenance.to_record())
        for agent in self._cluster.agents.values():
            if self._apply_unavailability(agent):
                self._offers.rescind_agent(agent)
                self._inverse.rescind_agent(agent.id)
        self._wake()

    def start_maintenance(self, machines: Sequence[MachineID]) -> None:
        """Machines DOWN: their agents are removed and told to shut down."""
        try:
            self.maintenance.start(machines)
        except MaintenanceError as exc:
            raise InvalidCall(str(exc)) from None
        self._registry.save_maintenance(self.maintenance.to_record())
        down = set(machines)
        for agent in list(self._cluster.agents.values()):
            if MachineID.of_agent(agent.hostname, agent.ip) in down:
                self._remove(agent, MACHINE_DOWN, gone=False)

    def stop_maintenance(self, machines: Sequence[MachineID]) -> None:
        try:
            self.maintenance.stop(machines)
        except MaintenanceError as exc:
            raise InvalidCall(str(exc)) from None
        self._registry.save_maintenance(self.maintenance.to_record())
        for agent in self._cluster.agents.values():
            self._apply_unavailability(agent)

    # ------------------------------------------------------------------ removal

    def _remove(self, agent: Agent, message: str, gone: bool) -> None:
        """Mesos' ``_removeSlave`` (machine DOWN) and ``__removeSlave`` (gone): the agent leaves the cluster, its
        tasks end, every framework hears of the lost agent, the agent is told to shut down."""
        log.warning("removing agent %s (%s): %s", agent.id, agent.endpoint, message)
        self._offers.rescind_agent(agent)
        self._inverse.rescind_agent(agent.id)
        for framework in self._cluster.frameworks.values():
            for task in self._tasks_of(framework):
                if task.agent_id == agent.id:
                    self._end_task(framework, task, agent, message, gone)
        agent.tasks.clear()
        agent.executors.clear()
        agent.custom_executors.clear()
        agent.changed()
        del self._cluster.agents[agent.id]
        if not gone:
            self._registry.forget_agent(agent.id)
            self._operator_events.agent_removed(agent.id)
        if agent.active:
            self._messages.shutdown(agent.endpoint, message)
        for framework in self._cluster.frameworks.values():
            framework.send(events.failure(agent.id))
        self._wake()

    def _end_task(self, framework: Any, task: Task, agent: Agent, message: str, gone: bool) -> None:
        framework.unreachable_tasks.pop(task.id, None)
        if not proto.is_terminal(task.state):
            if gone and framework.partition_aware:
                state, reason = "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"
            else:
                state, reason = "TASK_LOST", "REASON_AGENT_REMOVED"
            status = proto.task_status(
                task.id,
                state,
                agent_id=agent.id,
                source="SOURCE_MASTER",
                reason=reason,
                message=f"Agent {agent.hostname} removed: {message}",
                with_uuid=False,
            )
            self._tasks.apply_status(task, status)
            self._tasks.release(task)
            framework.send(events.update(framework, status))
        framework.tasks.pop(task.id, None)
        framework.completed_tasks.append(task)
        framework.changed()
