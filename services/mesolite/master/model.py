"""What the master knows, as plain records: agents, frameworks, their tasks and offers, and scheduler streams.

The records carry ids as bare strings; v1's ``{"value": ...}`` wrapping happens at the edges (``calls.py`` for what
arrives, ``events.py`` and ``agent_link.py`` for what leaves). ``Cluster`` groups the collections that one master
leads over, so the parts of the state machine share one explicit object rather than reaching into each other.
"""

from __future__ import annotations

import queue
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.attributes import Attributes
from mesolite.core.resources import Resources

COMPLETED_TASKS_PER_FRAMEWORK = 1000
COMPLETED_FRAMEWORKS = 50


class Subscription:
    """One scheduler's event stream: the HTTP handler drains ``events`` while the master fills it."""

    def __init__(self, framework_id: str) -> None:
        self.framework_id = framework_id
        self.stream_id = proto.new_id()
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.closed = False

    def send(self, event: dict[str, Any]) -> None:
        if not self.closed:
            self.events.put(event)

    def close(self) -> None:
        """Ends the stream: the handler sees ``None`` and returns, which closes the HTTP response."""
        if not self.closed:
            self.closed = True
            self.events.put(None)


@dataclass
class Task:
    id: str
    framework_id: str
    agent_id: str
    executor_id: str
    name: str
    resources: Resources
    role: str
    info: dict[str, Any]
    state: str = "TASK_STAGING"
    statuses: list[dict[str, Any]] = field(default_factory=list)
    # The ExecutorInfo the task runs under (custom or task-group executor), for GET_EXECUTORS.
    executor_info: dict[str, Any] | None = None
    last_status: dict[str, Any] | None = None
    # The uuid of the terminal update not yet acknowledged: the task leaves the active list once it is.
    terminal_uuid: str | None = None
    unreachable_time: float | None = None


@dataclass
class Offer:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources
    created: float


@dataclass
class Agent:
    id: str
    hostname: str
    ip: str
    port: int
    resources: Resources
    attributes: Attributes
    registered_time: float
    version: str = MESOS_VERSION
    reregistered_time: float | None = None
    last_seen: float = 0.0
    state: str = "ACTIVE"  # ACTIVE | RECOVERED (known from the registry, not yet back) | UNREACHABLE
    tasks: dict[tuple[str, str], Task] = field(default_factory=dict)
    executors: dict[tuple[str, str], Resources] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    unreachable_time: float | None = None
    persisted: dict[str, Any] | None = None  # the registry entry as last written or read
    custom_executors: set[tuple[str, str]] = field(default_factory=set)
    # Operator state, kept in the registry: no offers while deactivated (DEACTIVATE_AGENT, or a drain), the drain
    # (``DrainInfo`` JSON: state DRAINING|DRAINED and its config) and when it started, and the unavailability of
    # the agent's machine while it is scheduled for maintenance (``Unavailability`` JSON, carried in offers).
    deactivated: bool = False
    drain_info: dict[str, Any] | None = None
    drain_start_time: float | None = None
    unavailability: dict[str, Any] | None = None
    _used: Resources | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"

    @property
    def active(self) -> bool:
        """Registered and connected (the master's ``ACTIVE`` record state), whatever the operator said."""
        return self.state == "ACTIVE"

    @property
    def offerable(self) -> bool:
        """Connected and not deactivated by the operator: only these agents' resources are offered."""
        return self.state == "ACTIVE" and not self.deactivated

    @property
    def machine(self) -> tuple[str, str]:
        """The agent's MachineID as maintenance schedules name it: its hostname (compared case-insensitively)
        and its IP."""
        return (self.hostname.lower(), self.ip)

    def used(self) -> Resources:
        """What its tasks and executors hold; cached because every allocation cycle asks it of every agent, and
        invalidated by every change to ``tasks`` or ``executors`` (see ``changed``)."""
        if self._used is None:
            total = Resources()
            for task in self.tasks.values():
                if not proto.is_terminal(task.state):
                    total = total + task.resources
            for resources in self.executors.values():
                total = total + resources
            self._used = total
        return self._used

    def changed(self) -> None:
        self._used = None


@dataclass
class Framework:
    id: str
    info: dict[str, Any]
    registered_time: float
    subscription: Subscription | None = None
    active: bool = True
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    failover_deadline: float | None = None
    recovered: bool = False
    tasks: dict[str, Task] = field(default_factory=dict)
    unreachable_tasks: dict[str, Task] = field(default_factory=dict)
    completed_tasks: deque[Task] = field(default_factory=lambda: deque(maxlen=COMPLETED_TASKS_PER_FRAMEWORK))
    offers: set[str] = field(default_factory=set)
    suppressed_roles: set[str] = field(default_factory=set)
    # agent id -> (declined resources, expiry)
    filters: dict[str, tuple[Resources, float]] = field(default_factory=dict)

    _allocation: dict[str, dict[str, float]] | None = field(default=None, repr=False)

    @classmethod
    def recovered_from(cls, framework_id: str, info: dict[str, Any], registered_time: float, now: float) -> Framework:
        """A framework known from the registry or from an agent's report, inactive until it re-subscribes: its
        failover timeout runs from now."""
        framework = cls(
            id=framework_id,
            info=info,
            registered_time=registered_time,
            active=False,
            recovered=True,
            unregistered_time=now,
        )
        framework.failover_deadline = now + framework.failover_timeout
        return framework

    @property
    def name(self) -> str:
        return str(self.info.get("name", ""))

    def framework_info(self) -> dict[str, Any]:
        """The FrameworkInfo as agents and the registry keep it: the master's record (kept without its id, which
        is ``self.id``) with the id put back, wrapped as v1 has it."""
        return {**self.info, "id": proto.wrap(self.id)}

    @property
    def failover_timeout(self) -> float:
        return float(self.info.get("failover_timeout") or 0.0)

    def task_allocation(self) -> dict[str, dict[str, float]]:
        """Scalars its live tasks hold, per role: the basis of its DRF share, asked every allocation cycle, so
        cached and invalidated by ``changed`` whenever a task is added or released."""
        if self._allocation is None:
            allocation: dict[str, dict[str, float]] = {}
            for task in self.tasks.values():
                if not proto.is_terminal(task.state):
                    accumulate(allocation.setdefault(task.role, {}), task.resources.scalars())
            self._allocation = allocation
        return self._allocation

    def changed(self) -> None:
        self._allocation = None

    @property
    def roles(self) -> tuple[str, ...]:
        if self.has_capability("MULTI_ROLE"):
            return tuple(self.info.get("roles") or ()) or ("*",)
        return (str(self.info.get("role") or "*"),)

    @property
    def connected(self) -> bool:
        return self.subscription is not None and not self.subscription.closed

    @property
    def partition_aware(self) -> bool:
        return self.has_capability("PARTITION_AWARE")

    def has_capability(self, name: str) -> bool:
        return any(isinstance(c, dict) and c.get("type") == name for c in self.info.get("capabilities") or ())

    def send(self, event: dict[str, Any]) -> None:
        if self.subscription is not None:
            self.subscription.send(event)

    def close_stream(self) -> None:
        if self.subscription is not None:
            self.subscription.close()


@dataclass
class Cluster:
    """The collections a leading master holds in memory; all of it is soft state, rebuilt from the registry and
    from what agents and schedulers report after a failover."""

    agents: dict[str, Agent] = field(default_factory=dict)
    frameworks: dict[str, Framework] = field(default_factory=dict)
    completed_frameworks: deque[Framework] = field(default_factory=lambda: deque(maxlen=COMPLETED_FRAMEWORKS))
    offers: dict[str, Offer] = field(default_factory=dict)

    def offered(self, agent: Agent) -> Resources:
        total = Resources()
        for offer_id in agent.offers:
            total = total + self.offers[offer_id].resources
        return total

    def available(self, agent: Agent) -> Resources:
        return agent.resources - agent.used() - self.offered(agent)

    def active_agent(self, agent_id: str | None) -> Agent | None:
        agent = self.agents.get(agent_id or "")
        return agent if agent is not None and agent.active else None

    def clear(self) -> None:
        for framework in self.frameworks.values():
            framework.close_stream()
        self.agents.clear()
        self.frameworks.clear()
        self.completed_frameworks.clear()
        self.offers.clear()


def accumulate(into: dict[str, float], scalars: dict[str, float]) -> None:
    for name, amount in scalars.items():
        into[name] = into.get(name, 0.0) + amount
