"""The master's state: agents, frameworks, tasks and offers, and every transition between them.

One ``Master`` object owns it all behind one lock. Request handlers (api.py) and the agent protocol call its methods;
its background loops (allocation, agent health, offer and failover timeouts) start and stop with it. Allocation
itself is the pure function in allocator.py: the master only builds its snapshot and turns the result into offers.
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.attributes import Attributes
from mesolite.core.resources import ResourceError, Resources
from mesolite.core.store import Store
from mesolite.master import allocator
from mesolite.master.agent_link import AgentLink

log = logging.getLogger(__name__)

DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 31_536_000.0
# After rescinding an offer that timed out, the same resources are held back from that framework briefly, so that
# the other frameworks get their turn instead of the hoarder being offered the same agent on the next cycle.
OFFER_TIMEOUT_REFUSE_SECONDS = 5.0
COMPLETED_TASKS_PER_FRAMEWORK = 1000
COMPLETED_FRAMEWORKS = 50


@dataclass
class MasterConfig:
    ip: str = "127.0.0.1"
    port: int = 5050
    hostname: str | None = None
    work_dir: str = "/var/lib/mesolite/master"
    allocation_interval: float = 1.0
    offer_timeout: float | None = 60.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    agent_reregister_timeout: float = 600.0
    heartbeat_interval: float = 15.0
    min_allocatable: tuple[dict[str, float], ...] = allocator.DEFAULT_MIN_ALLOCATABLE
    weights: dict[str, float] = field(default_factory=dict)
    cluster: str | None = None
    zk: str | None = None
    quorum: int = 1
    zk_session_timeout: float = 10.0

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.ip


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
    _used: Resources | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"

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

    def info_json(self) -> dict[str, Any]:
        return {
            "id": proto.wrap(self.id),
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.resources.to_v1(),
            "attributes": self.attributes.to_v1(),
        }


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

    @property
    def name(self) -> str:
        return str(self.info.get("name", ""))

    def task_allocation(self) -> dict[str, dict[str, float]]:
        """Scalars its live tasks hold, per role: the basis of its DRF share, asked every allocation cycle, so
        cached and invalidated by ``changed`` whenever a task is added or released."""
        if self._allocation is None:
            allocation: dict[str, dict[str, float]] = {}
            for task in self.tasks.values():
                if not proto.is_terminal(task.state):
                    _accumulate(allocation.setdefault(task.role, {}), task.resources.scalars())
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

    def send_update(self, status: dict[str, Any]) -> None:
        self.send({"type": "UPDATE", "update": {"status": proto.for_framework(status, self.partition_aware)}})


class CallError(Exception):
    """A call the master refuses outright, answered with ``status`` and a plain-text message as Mesos does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Master:
    def __init__(self, config: MasterConfig, store: Store, link: AgentLink | None = None, leading: bool = True) -> None:
        self.config = config
        self.store = store
        self.link = link or AgentLink()
        self.id = proto.new_id()
        self.start_time = time.time()
        self.elected_time = self.start_time
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=COMPLETED_FRAMEWORKS)
        self.offers: dict[str, Offer] = {}
        self.weights: dict[str, float] = dict(config.weights)
        self.metrics: dict[str, float] = {
            "allocator/mesos/allocation_run_ms": 0.0,
            "master/dropped_messages": 0,
        }
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._agent_seq = itertools.count(int(store.get("meta/agent_seq") or 0))
        self._framework_seq = itertools.count()
        self._offer_seq = itertools.count()
        self._rng = random.Random()
        # Without ZooKeeper this master is the only one and leads from the start; with it, leadership comes and goes
        # through become_leader()/step_down() and ``leader`` is whoever the group elected (MasterInfo JSON).
        self.leading = leading
        self.leader: dict[str, Any] | None = None
        if leading:
            self._recover()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for name, loop in (("allocator", self._allocation_loop), ("timeouts", self._timeout_loop)):
            thread = threading.Thread(target=loop, name=f"master-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            for framework in self.frameworks.values():
                if framework.subscription is not None:
                    framework.subscription.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.link.close()

    @property
    def pid(self) -> str:
        return f"master@{self.config.ip}:{self.config.port}"

    def become_leader(self) -> None:
        """Elected: the registry (in ZooKeeper) says which agents and frameworks to expect back."""
        with self._lock:
            if self.leading:
                return
            self._forget_everything()
            self._agent_seq = itertools.count(int(self.store.get("meta/agent_seq") or 0))
            self._recover()
            self.elected_time = time.time()
            self.leader = self.info_json()
            self.leading = True
            self._wake.set()

    def step_down(self) -> None:
        """Leadership lost (ZooKeeper session expired): stop acting at once. Schedulers' streams end so they look
        for the new leader; in-memory state is dropped because the next leader owns the truth now."""
        with self._lock:
            if not self.leading:
                return
            self.leading = False
            if self.leader is not None and self.leader.get("id") == self.id:
                self.leader = None
            self._forget_everything()

    def _forget_everything(self) -> None:
        for framework in self.frameworks.values():
            if framework.subscription is not None:
                framework.subscription.close()
        self.agents.clear()
        self.frameworks.clear()
        self.completed_frameworks.clear()
        self.offers.clear()

    def info_json(self) -> dict[str, Any]:
        """MasterInfo, as in SUBSCRIBED events and (later) the ZooKeeper leader znode."""
        ip_int = int.from_bytes(bytes(int(part) for part in self.config.ip.split(".")), "little")
        return {
            "id": self.id,
            "ip": ip_int,
            "port": self.config.port,
            "pid": self.pid,
            "hostname": self.config.advertised_hostname,
            "version": MESOS_VERSION,
            "address": {
                "hostname": self.config.advertised_hostname,
                "ip": self.config.ip,
                "port": self.config.port,
            },
        }

    # ------------------------------------------------------------------ registry

    def _recover(self) -> None:
        """Agents and frameworks admitted before a restart come back as 'recovered': agents until they re-register
        (or the re-register timeout passes), frameworks until they re-subscribe (or their failover timeout passes)."""
        now = time.time()
        saved_weights = self.store.get("meta/weights")
        if isinstance(saved_weights, dict):
            self.weights.update({str(role): float(weight) for role, weight in saved_weights.items()})
        for record in self.store.list("agents/").values():
            try:
                agent = Agent(
                    id=record["id"],
                    hostname=record["hostname"],
                    ip=record["ip"],
                    port=int(record["port"]),
                    resources=Resources.parse(record["resources"]),
                    attributes=Attributes.parse(record.get("attributes", "")),
                    registered_time=record.get("registered_time", now),
                    state="RECOVERED",
                    last_seen=now,
                    persisted=record,
                )
            except (KeyError, ValueError) as exc:
                log.error("ignoring unreadable registry entry for an agent: %s", exc)
                continue
            self.agents[agent.id] = agent
        for record in self.store.list("frameworks/").values():
            info = record.get("framework_info") or {}
            framework_id = proto.unwrap(info.get("id"))
            if not framework_id:
                continue
            framework = Framework(
                id=framework_id,
                info=info,
                registered_time=record.get("registered_time", now),
                active=False,
                recovered=True,
                unregistered_time=now,
                failover_deadline=now + float(info.get("failover_timeout") or 0.0),
            )
            self.frameworks[framework_id] = framework

    def _persist_agent(self, agent: Agent) -> None:
        """Write the agent's registry entry, unless it already says exactly this: after a failover every agent
        re-registers unchanged, and skipping those writes keeps re-registration off the registry's latency."""
        record = {
            "id": agent.id,
            "hostname": agent.hostname,
            "ip": agent.ip,
            "port": agent.port,
            "resources": str(agent.resources),
            "attributes": str(agent.attributes),
            "registered_time": agent.registered_time,
        }
        if agent.persisted != record:
            self.store.put(f"agents/{agent.id}", record)
            agent.persisted = record

    def _persist_framework(self, framework: Framework) -> None:
        self.store.put(
            f"frameworks/{framework.id}",
            {"framework_info": framework.info, "registered_time": framework.registered_time},
        )

    # ------------------------------------------------------------------ agent protocol

    def register_agent(self, body: dict[str, Any]) -> dict[str, Any]:
        """Registration and re-registration: an agent that presents an id keeps it, with the tasks it still runs."""
        info = body.get("agent_info")
        if not isinstance(info, dict):
            raise CallError(400, "Expecting 'agent_info' in the registration")
        try:
            hostname = str(info["hostname"])
            ip = str(info["ip"])
            port = int(info["port"])
            resources = Resources.from_v1(info.get("resources") or [])
            attributes = Attributes.from_v1(info.get("attributes") or [])
        except (KeyError, TypeError, ValueError) as exc:
            raise CallError(400, f"Invalid agent registration: {exc}") from None
        now = time.time()
        with self._lock:
            agent_id = proto.unwrap(info.get("id"))
            existing = self.agents.get(agent_id) if agent_id else None
            if agent_id and existing is None:
                # An id the registry does not know (a lost work dir on our side): admit it again under that id.
                log.info("admitting agent %s that presented an unknown id", agent_id)
            if not agent_id:
                agent_id = f"{self.id}-S{next(self._agent_seq)}"
                self.store.put("meta/agent_seq", int(agent_id.rsplit("S", 1)[1]) + 1)
            if existing is not None:
                self._drop_agent_offers(existing)
                agent = existing
                agent.hostname, agent.ip, agent.port = hostname, ip, port
                agent.resources, agent.attributes = resources, attributes
                agent.reregistered_time = now
                agent.state = "ACTIVE"
                agent.unreachable_time = None
            else:
                agent = Agent(agent_id, hostname, ip, port, resources, attributes, registered_time=now)
                self.agents[agent_id] = agent
                if proto.unwrap(info.get("id")):
                    agent.reregistered_time = now
            agent.last_seen = now
            self._persist_agent(agent)
            self._adopt_agent_tasks(agent, body.get("frameworks") or [], body.get("tasks") or [])
            self._wake.set()
            return {
                "agent_id": proto.wrap(agent.id),
                "master_info": self.info_json(),
                "heartbeat_interval_seconds": self.config.agent_ping_timeout,
            }

    def _adopt_agent_tasks(self, agent: Agent, frameworks: list[Any], tasks: list[Any]) -> None:
        """What a re-registering agent reports is the truth about its tasks (master state is soft)."""
        infos = {proto.unwrap(fw.get("id")): fw for fw in frameworks if isinstance(fw, dict)}
        reported: dict[tuple[str, str], Task] = {}
        for entry in tasks:
            if not isinstance(entry, dict):
                continue
            framework_id = proto.unwrap(entry.get("framework_id"))
            task_id = proto.unwrap(entry.get("task_id"))
            if not framework_id or not task_id:
                continue
            framework = self.frameworks.get(framework_id)
            if framework is None:
                info = infos.get(framework_id)
                if info is None:
                    continue
                now = time.time()
                framework = Framework(
                    id=framework_id,
                    info=info,
                    registered_time=now,
                    active=False,
                    recovered=True,
                    unregistered_time=now,
                    failover_deadline=now + float(info.get("failover_timeout") or 0.0),
                )
                self.frameworks[framework_id] = framework
            try:
                resources = Resources.from_v1(entry.get("resources") or [])
            except ResourceError:
                resources = Resources()
            task = framework.tasks.get(task_id) or framework.unreachable_tasks.pop(task_id, None)
            if task is None:
                task = Task(
                    id=task_id,
                    framework_id=framework_id,
                    agent_id=agent.id,
                    executor_id=proto.unwrap(entry.get("executor_id")) or task_id,
                    name=str(entry.get("name", task_id)),
                    resources=resources,
                    role=str(entry.get("role") or framework.roles[0]),
                    info=entry.get("info") or {},
                )
            task.agent_id = agent.id
            task.state = str(entry.get("state") or task.state)
            task.unreachable_time = None
            if entry.get("statuses"):
                task.statuses = list(entry["statuses"])
            framework.tasks[task_id] = task
            framework.changed()
            reported[(framework_id, task_id)] = task
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
                self._apply_status(task, status)
                self._finish_task(task)
                framework = self.frameworks.get(task.framework_id)
                if framework is not None:
                    framework.send_update(status)
        agent.tasks = reported
        agent.changed()

    def agent_heartbeat(self, agent_id: str | None) -> bool:
        """False tells the agent the master does not know it (a restart): it re-registers with its tasks."""
        with self._lock:
            agent = self.agents.get(agent_id or "")
            if agent is None or agent.state != "ACTIVE":
                return False
            agent.last_seen = time.time()
            return True

    def unregister_agent(self, agent_id: str | None) -> bool:
        """An agent leaving for good (SIGUSR1; Mesos' UnregisterSlaveMessage): it is removed, from the registry too,
        whatever it still ran is TASK_LOST (REASON_AGENT_REMOVED), and frameworks get the agent's FAILURE event."""
        with self._lock:
            agent = self.agents.get(agent_id or "")
            if agent is None:
                return False
            log.info("agent %s (%s) unregistered", agent.id, agent.endpoint)
            self._drop_agent_offers(agent)
            del self.agents[agent.id]
            self.store.delete(f"agents/{agent.id}")
            for task in list(agent.tasks.values()):
                framework = self.frameworks.get(task.framework_id)
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
                self._apply_status(task, status)
                self._finish_task(task)
                framework.send_update(status)
            for framework in self.frameworks.values():
                framework.send({"type": "FAILURE", "failure": {"agent_id": proto.wrap(agent.id)}})
            self._wake.set()
            return True

    def agent_status_update(self, body: dict[str, Any]) -> bool:
        """A status update forwarded by an agent. Returns True when the master itself settles the update (the
        framework is gone), so the agent stops retrying it."""
        status = body.get("status")
        framework_id = proto.unwrap(body.get("framework_id"))
        agent_id = proto.unwrap(body.get("agent_id"))
        if not isinstance(status, dict) or not framework_id:
            raise CallError(400, "Expecting 'framework_id' and 'status' in the status update")
        task_id = proto.unwrap(status.get("task_id"))
        if not task_id:
            raise CallError(400, "Expecting 'status.task_id' in the status update")
        with self._lock:
            agent = self.agents.get(agent_id or "")
            if agent is not None:
                agent.last_seen = time.time()
            framework = self.frameworks.get(framework_id)
            if framework is None:
                return True
            task = framework.tasks.get(task_id)
            if task is not None:
                self._apply_status(task, status)
                if proto.is_terminal(task.state):
                    self._release_task(task)
                    if status.get("uuid"):
                        task.terminal_uuid = status["uuid"]
                    else:
                        self._finish_task(task)
            if not framework.connected:
                self.metrics["master/dropped_messages"] += 1
                return False
            framework.send_update(status)
            return False

    def agent_executor_message(self, body: dict[str, Any]) -> None:
        """Executor → scheduler framework message, relayed as a MESSAGE event."""
        framework_id = proto.unwrap(body.get("framework_id"))
        with self._lock:
            framework = self.frameworks.get(framework_id or "")
            if framework is None or not framework.connected:
                self.metrics["master/dropped_messages"] += 1
                return
            framework.send(
                {
                    "type": "MESSAGE",
                    "message": {
                        "agent_id": body.get("agent_id"),
                        "executor_id": body.get("executor_id"),
                        "data": body.get("data", ""),
                    },
                }
            )

    def agent_executor_exited(self, body: dict[str, Any]) -> None:
        """A custom executor's process ended: its resources return, and its framework gets the FAILURE event that
        schedulers turn into ``executorLost``."""
        framework_id = proto.unwrap(body.get("framework_id"))
        agent_id = proto.unwrap(body.get("agent_id"))
        executor_id = proto.unwrap(body.get("executor_id"))
        if not framework_id or not agent_id or not executor_id:
            raise CallError(400, "Expecting 'framework_id', 'agent_id' and 'executor_id'")
        with self._lock:
            agent = self.agents.get(agent_id)
            if agent is not None:
                key = (framework_id, executor_id)
                agent.executors.pop(key, None)
                agent.custom_executors.discard(key)
                agent.changed()
                self._wake.set()
            framework = self.frameworks.get(framework_id)
            if framework is None:
                return
            failure: dict[str, Any] = {"agent_id": proto.wrap(agent_id), "executor_id": proto.wrap(executor_id)}
            if isinstance(body.get("status"), int):
                failure["status"] = body["status"]
            framework.send({"type": "FAILURE", "failure": failure})

    def _apply_status(self, task: Task, status: dict[str, Any]) -> None:
        task.state = str(status.get("state", task.state))
        task.last_status = status
        entry: dict[str, Any] = {"state": task.state, "timestamp": status.get("timestamp", time.time())}
        for key in ("container_status", "healthy", "labels"):
            if key in status:
                entry[key] = status[key]
        task.statuses.append(entry)

    def _release_task(self, task: Task) -> None:
        """Resources of a terminal task return to the pool at once; the record waits for the acknowledgement."""
        framework = self.frameworks.get(task.framework_id)
        if framework is not None:
            framework.changed()
        agent = self.agents.get(task.agent_id)
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
        self._wake.set()

    def _finish_task(self, task: Task) -> None:
        framework = self.frameworks.get(task.framework_id)
        if framework is not None:
            framework.changed()
        if framework is not None and framework.tasks.pop(task.id, None) is not None:
            framework.completed_tasks.append(task)

    # ------------------------------------------------------------------ scheduler calls

    def subscribe(self, call: dict[str, Any]) -> Subscription:
        subscribe = call.get("subscribe")
        if not isinstance(subscribe, dict) or not isinstance(subscribe.get("framework_info"), dict):
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present")
        info = dict(subscribe["framework_info"])
        if not isinstance(info.get("user"), str) or not isinstance(info.get("name"), str):
            raise CallError(400, "Failed to convert JSON into Call protobuf: Missing required fields")
        info_id = proto.unwrap(info.get("id"))
        call_id = proto.unwrap(call.get("framework_id"))
        if info_id and call_id and info_id != call_id:
            raise CallError(
                400,
                "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'",
            )
        try:
            failover = float(info.get("failover_timeout") or 0.0)
        except (TypeError, ValueError):
            raise CallError(400, "Failed to convert JSON into Call protobuf: bad 'failover_timeout'") from None
        now = time.time()
        with self._lock:
            framework_id = info_id or call_id
            if framework_id and any(f.id == framework_id for f in self.completed_frameworks):
                subscription = Subscription(framework_id)
                subscription.send({"type": "ERROR", "error": {"message": "Framework has been removed"}})
                subscription.close()
                return subscription
            framework = self.frameworks.get(framework_id or "")
            if framework is None:
                if not framework_id:
                    framework_id = f"{self.id}-{next(self._framework_seq):04d}"
                info["id"] = proto.wrap(framework_id)
                info.setdefault("failover_timeout", failover)
                framework = Framework(id=framework_id, info=info, registered_time=now)
                self.frameworks[framework_id] = framework
            else:
                info["id"] = proto.wrap(framework_id)
                if framework.subscription is not None and not framework.subscription.closed:
                    framework.send({"type": "ERROR", "error": {"message": "Framework failed over"}})
                    framework.subscription.close()
                # As Mesos' failoverFramework: offers made to the old connection are rescinded, not left to time out.
                for offer_id in list(framework.offers):
                    self._remove_offer(offer_id)
                framework.info = info
                framework.reregistered_time = now
            framework.active = True
            framework.recovered = False
            framework.unregistered_time = None
            framework.failover_deadline = None
            suppressed = subscribe.get("suppressed_roles") or []
            framework.suppressed_roles = {r for r in suppressed if isinstance(r, str)}
            subscription = Subscription(framework_id)
            framework.subscription = subscription
            self._persist_framework(framework)
            subscription.send(
                {
                    "type": "SUBSCRIBED",
                    "subscribed": {
                        "framework_id": proto.wrap(framework_id),
                        "heartbeat_interval_seconds": self.config.heartbeat_interval,
                        "master_info": self.info_json(),
                    },
                }
            )
            self._wake.set()
            return subscription

    def disconnected(self, subscription: Subscription) -> None:
        """The scheduler's stream broke: deactivate it and start its failover timeout."""
        with self._lock:
            subscription.close()
            framework = self.frameworks.get(subscription.framework_id)
            if framework is None or framework.subscription is not subscription:
                return
            framework.subscription = None
            framework.active = False
            framework.unregistered_time = time.time()
            framework.failover_deadline = time.time() + float(framework.info.get("failover_timeout") or 0.0)
            for offer_id in list(framework.offers):
                self._remove_offer(offer_id)
            self._wake.set()

    def subscribed_framework(self, framework_id: str | None, stream_id: str | None) -> Framework:
        """Mesos' checks for every non-SUBSCRIBE call, in its order and with its status codes."""
        if not stream_id:
            raise CallError(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        framework = self.frameworks.get(framework_id or "")
        if framework is None:
            raise CallError(400, "Framework cannot be found")
        if framework.subscription is None or framework.subscription.closed:
            raise CallError(403, "Framework is not subscribed")
        if framework.subscription.stream_id != stream_id:
            raise CallError(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
                f"associated with framework ID {framework.id}",
            )
        return framework

    def teardown(self, framework: Framework) -> None:
        with self._lock:
            self._remove_framework(framework, "Framework was torn down")

    def _remove_framework(self, framework: Framework, reason: str) -> None:
        log.info("removing framework %s: %s", framework.id, reason)
        for offer_id in list(framework.offers):
            self._remove_offer(offer_id)
        for task in list(framework.tasks.values()):
            self._release_task(task)
            if not proto.is_terminal(task.state):
                task.state = "TASK_KILLED"
            framework.completed_tasks.append(task)
        framework.tasks.clear()
        framework.changed()
        # Every active agent hears of it, as in Mesos: an executor whose tasks have all ended still runs somewhere.
        for agent in self.agents.values():
            for key in [k for k in agent.executors if k[0] == framework.id]:
                del agent.executors[key]
                agent.custom_executors.discard(key)
                agent.changed()
            if agent.state == "ACTIVE":
                self.link.send(
                    agent.endpoint, "/internal/shutdown_framework", {"framework_id": proto.wrap(framework.id)}
                )
        if framework.subscription is not None:
            framework.subscription.close()
            framework.subscription = None
        framework.active = False
        framework.unregistered_time = time.time()
        self.frameworks.pop(framework.id, None)
        self.completed_frameworks.append(framework)
        self.store.delete(f"frameworks/{framework.id}")
        self._wake.set()

    def accept(self, framework: Framework, body: dict[str, Any]) -> None:
        offer_ids = [proto.unwrap(o) for o in body.get("offer_ids") or []]
        operations = body.get("operations") or []
        refuse = _refuse_seconds(body.get("filters"))
        with self._lock:
            offers, invalid = self._take_offers(framework, offer_ids)
            launches = [op for op in operations if op.get("type") in ("LAUNCH", "LAUNCH_GROUP")]
            if invalid:
                for offer in offers:
                    self._remove_offer(offer.id)
                for task_info in _tasks_of(launches):
                    self._reject_task(
                        framework,
                        task_info,
                        "TASK_DROPPED" if framework.partition_aware else "TASK_LOST",
                        "REASON_INVALID_OFFERS",
                        invalid,
                    )
                self._wake.set()
                return
            agent = self.agents.get(offers[0].agent_id) if offers else None
            remaining = Resources()
            for offer in offers:
                remaining = remaining + offer.resources
                self._remove_offer(offer.id, recover=False)
            role = offers[0].role if offers else framework.roles[0]
            for operation in launches:
                if operation.get("type") == "LAUNCH":
                    for task_info in (operation.get("launch") or {}).get("task_infos") or []:
                        remaining = self._launch(framework, agent, role, task_info, None, remaining)
                else:
                    group = operation.get("launch_group") or {}
                    executor = group.get("executor") or {}
                    for task_info in (group.get("task_group") or {}).get("tasks") or []:
                        remaining = self._launch(framework, agent, role, task_info, executor, remaining)
            if agent is not None and remaining and refuse > 0:
                self._add_filter(framework, agent.id, remaining, refuse)
            self._wake.set()

    def decline(self, framework: Framework, body: dict[str, Any]) -> None:
        refuse = _refuse_seconds(body.get("filters"))
        with self._lock:
            for offer_id in body.get("offer_ids") or []:
                offer = self.offers.get(proto.unwrap(offer_id) or "")
                if offer is None or offer.framework_id != framework.id:
                    continue
                self._remove_offer(offer.id)
                if refuse > 0:
                    self._add_filter(framework, offer.agent_id, offer.resources, refuse)
            self._wake.set()

    def _take_offers(self, framework: Framework, offer_ids: list[str | None]) -> tuple[list[Offer], str | None]:
        """Validate the offers of an ACCEPT as Mesos does; the error text goes into the TASK_LOST message."""
        if not offer_ids:
            return [], "No offers specified"
        offers: list[Offer] = []
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id or "")
            if offer is None:
                invalid = f"Offer {offer_id} is no longer valid"
                return [
                    o for o in (self.offers.get(i or "") for i in offer_ids) if o and o.framework_id == framework.id
                ], invalid
            if offer.framework_id != framework.id:
                return [], (
                    f"Offer {offer_id} has invalid framework {offer.framework_id} "
                    f"while framework {framework.id} is expected"
                )
            offers.append(offer)
        if len(set(offer_ids)) != len(offer_ids):
            return offers, "Duplicate offer ids"
        if len({o.agent_id for o in offers}) > 1:
            return offers, "Aggregated offers must belong to one single agent"
        if len({o.role for o in offers}) > 1:
            return offers, "Aggregated offers must be allocated to the same role"
        agent = self.agents.get(offers[0].agent_id)
        if agent is None or agent.state != "ACTIVE":
            return offers, f"Agent {offers[0].agent_id} is not available"
        return offers, None

    def _launch(
        self,
        framework: Framework,
        agent: Agent | None,
        role: str,
        task_info: dict[str, Any],
        group_executor: dict[str, Any] | None,
        remaining: Resources,
    ) -> Resources:
        assert agent is not None
        error, resources, executor_resources = self._validate_task(
            framework, agent, task_info, group_executor, remaining
        )
        if error is not None:
            self._reject_task(framework, task_info, "TASK_ERROR", "REASON_TASK_INVALID", error)
            return remaining
        task_id = proto.unwrap(task_info["task_id"]) or ""
        executor = group_executor or task_info.get("executor")
        executor_id = proto.unwrap((executor or {}).get("executor_id")) or task_id
        task = Task(
            id=task_id,
            framework_id=framework.id,
            agent_id=agent.id,
            executor_id=executor_id,
            name=str(task_info.get("name", "")),
            resources=resources,
            role=role,
            info=task_info,
        )
        framework.tasks[task_id] = task
        framework.changed()
        agent.tasks[(framework.id, task_id)] = task
        if executor_resources:
            agent.executors[(framework.id, executor_id)] = executor_resources
            if group_executor is None:
                agent.custom_executors.add((framework.id, executor_id))
        agent.changed()
        message = {
            "framework_info": framework.info,
            "task": {**task_info, "agent_id": proto.wrap(agent.id)},
            "role": role,
        }
        if group_executor is not None:
            message["executor"] = group_executor
        self.link.send(
            agent.endpoint,
            "/internal/launch",
            message,
            on_failure=lambda error, t=task: self._launch_failed(t, error),
        )
        return remaining - resources - executor_resources

    def _validate_task(
        self,
        framework: Framework,
        agent: Agent,
        task_info: dict[str, Any],
        group_executor: dict[str, Any] | None,
        available: Resources,
    ) -> tuple[str | None, Resources, Resources]:
        """Mesos' TaskInfo checks (src/master/validation.cpp); the first failure is the TASK_ERROR message."""
        empty = Resources()
        task_id = proto.unwrap(task_info.get("task_id")) or ""
        id_error = _validate_id(task_id)
        if id_error:
            return f"Task ID {id_error}", empty, empty
        if task_id in framework.tasks:
            return f"Task has duplicate ID: {task_id}", empty, empty
        if proto.unwrap(task_info.get("agent_id")) != agent.id:
            return (
                f"Task uses invalid agent: {proto.unwrap(task_info.get('agent_id'))} "
                f"(the offer is for agent {agent.id})",
                empty,
                empty,
            )
        has_command = isinstance(task_info.get("command"), dict)
        has_executor = isinstance(task_info.get("executor"), dict)
        if group_executor is not None:
            if has_executor:
                return "'TaskInfo.executor' must not be set for a task in a task group", empty, empty
            if not has_command:
                return "'TaskInfo.command' must be set for a task in a task group", empty, empty
        elif has_command == has_executor:
            return (
                "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
                empty,
                empty,
            )
        try:
            resources = Resources.from_v1(task_info.get("resources") or [])
        except ResourceError as exc:
            return f"Task uses invalid resources: {exc}", empty, empty
        if not resources:
            return "Task uses no resources", empty, empty
        executor = group_executor or task_info.get("executor")
        executor_resources = empty
        if isinstance(executor, dict):
            executor_id = proto.unwrap(executor.get("executor_id"))
            if not executor_id:
                return "ExecutorInfo is missing 'executor_id'", empty, empty
            if (framework.id, executor_id) not in agent.executors:
                try:
                    executor_resources = Resources.from_v1(executor.get("resources") or [])
                except ResourceError as exc:
                    return f"Executor uses invalid resources: {exc}", empty, empty
        needed = resources + executor_resources
        if not available.contains(needed):
            return (
                f"Total resources {needed} required by task and its executor is more than available {available}",
                empty,
                empty,
            )
        return None, resources, executor_resources

    def _reject_task(
        self, framework: Framework, task_info: dict[str, Any], state: str, reason: str, message: str
    ) -> None:
        task_id = proto.unwrap(task_info.get("task_id")) or ""
        status = proto.task_status(
            task_id,
            state,
            agent_id=proto.unwrap(task_info.get("agent_id")),
            source="SOURCE_MASTER",
            reason=reason,
            message=message,
            with_uuid=False,
        )
        framework.send_update(status)

    def _launch_failed(self, task: Task, error: str) -> None:
        with self._lock:
            framework = self.frameworks.get(task.framework_id)
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
            self._apply_status(task, status)
            self._release_task(task)
            self._finish_task(task)
            framework.send_update(status)

    def kill(self, framework: Framework, body: dict[str, Any]) -> None:
        task_id = proto.unwrap(body.get("task_id"))
        if not task_id:
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'kill.task_id' to be present")
        with self._lock:
            task = framework.tasks.get(task_id)
            if task is None:
                # Mesos answers a kill of an unknown task by reconciling it.
                self._reconcile_one(framework, task_id, proto.unwrap(body.get("agent_id")))
                return
            agent = self.agents.get(task.agent_id)
            if agent is None or agent.state != "ACTIVE":
                return
            message: dict[str, Any] = {
                "framework_id": proto.wrap(framework.id),
                "task_id": proto.wrap(task_id),
            }
            if isinstance(body.get("kill_policy"), dict):
                message["kill_policy"] = body["kill_policy"]
            self.link.send(agent.endpoint, "/internal/kill", message)

    def acknowledge(self, framework: Framework, body: dict[str, Any]) -> None:
        agent_id = proto.unwrap(body.get("agent_id"))
        task_id = proto.unwrap(body.get("task_id"))
        status_uuid = body.get("uuid")
        if not agent_id or not task_id or not isinstance(status_uuid, str):
            raise CallError(
                400,
                "Failed to convert JSON into Call protobuf: Missing required fields (agent_id, task_id, uuid)",
            )
        with self._lock:
            agent = self.agents.get(agent_id)
            task = framework.tasks.get(task_id)
            if task is not None and task.terminal_uuid == status_uuid:
                self._finish_task(task)
            if agent is None or agent.state != "ACTIVE":
                return
            self.link.send(
                agent.endpoint,
                "/internal/acknowledge",
                {
                    "framework_id": proto.wrap(framework.id),
                    "task_id": proto.wrap(task_id),
                    "uuid": status_uuid,
                },
            )

    def reconcile(self, framework: Framework, body: dict[str, Any]) -> None:
        entries = body.get("tasks") or []
        with self._lock:
            if not entries:
                for task in list(framework.tasks.values()) + list(framework.unreachable_tasks.values()):
                    framework.send_update(self._reconciliation_status(task))
                return
            for entry in entries:
                if not isinstance(entry, dict):
                    continue
                task_id = proto.unwrap(entry.get("task_id"))
                if task_id:
                    self._reconcile_one(framework, task_id, proto.unwrap(entry.get("agent_id")))

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

    def _reconcile_one(self, framework: Framework, task_id: str, agent_id: str | None) -> None:
        """Mesos' explicit reconciliation table (docs/reconciliation.md)."""
        task = framework.tasks.get(task_id) or framework.unreachable_tasks.get(task_id)
        if task is not None:
            framework.send_update(self._reconciliation_status(task))
            return
        agent = self.agents.get(agent_id or "") if agent_id else None
        if agent_id is None and any(a.state == "RECOVERED" for a in self.agents.values()):
            return  # may be on an agent that has not re-registered yet: no answer, the scheduler asks again
        if agent is not None and agent.state == "RECOVERED":
            return
        if agent is not None and agent.state == "ACTIVE":
            state = "TASK_GONE"
        elif agent is not None and agent.state == "UNREACHABLE":
            state = "TASK_UNREACHABLE"
        else:
            state = "TASK_UNKNOWN"
        status = proto.task_status(
            task_id,
            state,
            agent_id=agent_id,
            source="SOURCE_MASTER",
            reason="REASON_RECONCILIATION",
            message="Reconciliation: task is unknown",
            with_uuid=False,
        )
        framework.send_update(status)

    def revive(self, framework: Framework, body: dict[str, Any] | None) -> None:
        roles = _roles_of(body, framework)
        with self._lock:
            framework.suppressed_roles -= set(roles)
            framework.filters.clear()
            self._wake.set()

    def suppress(self, framework: Framework, body: dict[str, Any] | None) -> None:
        roles = _roles_of(body, framework)
        with self._lock:
            framework.suppressed_roles |= set(roles)

    def message(self, framework: Framework, body: dict[str, Any]) -> None:
        agent = self.agents.get(proto.unwrap(body.get("agent_id")) or "")
        executor_id = proto.unwrap(body.get("executor_id"))
        if not executor_id or not isinstance(body.get("data"), str):
            raise CallError(400, "Failed to convert JSON into Call protobuf: Missing required fields")
        if agent is None or agent.state != "ACTIVE":
            self.metrics["master/dropped_messages"] += 1
            return
        self.link.send(
            agent.endpoint,
            "/internal/framework_message",
            {
                "framework_id": proto.wrap(framework.id),
                "executor_id": proto.wrap(executor_id),
                "data": body["data"],
            },
        )

    def shutdown_executor(self, framework: Framework, body: dict[str, Any]) -> None:
        agent = self.agents.get(proto.unwrap(body.get("agent_id")) or "")
        executor_id = proto.unwrap(body.get("executor_id"))
        if agent is None or not executor_id or agent.state != "ACTIVE":
            return
        self.link.send(
            agent.endpoint,
            "/internal/shutdown_executor",
            {"framework_id": proto.wrap(framework.id), "executor_id": proto.wrap(executor_id)},
        )

    def update_framework(self, framework: Framework, body: dict[str, Any]) -> None:
        info = body.get("framework_info")
        if not isinstance(info, dict):
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'update_framework.framework_info'")
        with self._lock:
            if proto.unwrap(info.get("id")) not in (None, framework.id):
                raise CallError(400, "Failed to validate scheduler::Call: framework id cannot be changed")
            for fixed in ("principal", "user", "checkpoint"):
                if fixed in info and info[fixed] != framework.info.get(fixed):
                    raise CallError(400, f"Failed to validate scheduler::Call: '{fixed}' cannot be changed")
            framework.info = {**info, "id": proto.wrap(framework.id)}
            if "suppressed_roles" in body:
                framework.suppressed_roles = set(body.get("suppressed_roles") or [])
            self._persist_framework(framework)
            for offer_id in [o for o in framework.offers if self.offers[o].role not in framework.roles]:
                self._rescind(offer_id)
            self._wake.set()

    # ------------------------------------------------------------------ offers and allocation

    def _add_filter(self, framework: Framework, agent_id: str, resources: Resources, seconds: float) -> None:
        previous = framework.filters.get(agent_id)
        expiry = time.time() + seconds
        if previous is not None and previous[1] > time.time():
            resources = resources + previous[0]
            expiry = max(expiry, previous[1])
        framework.filters[agent_id] = (resources, expiry)

    def _remove_offer(self, offer_id: str, recover: bool = True) -> Offer | None:
        offer = self.offers.pop(offer_id, None)
        if offer is None:
            return None
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.offers.discard(offer_id)
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offers.discard(offer_id)
        if recover:
            self._wake.set()
        return offer

    def _rescind(self, offer_id: str) -> None:
        offer = self._remove_offer(offer_id)
        if offer is None:
            return
        framework = self.frameworks.get(offer.framework_id)
        if framework is not None:
            framework.send({"type": "RESCIND", "rescind": {"offer_id": proto.wrap(offer_id)}})

    def _drop_agent_offers(self, agent: Agent) -> None:
        for offer_id in list(agent.offers):
            self._rescind(offer_id)

    def offered(self, agent: Agent) -> Resources:
        total = Resources()
        for offer_id in agent.offers:
            total = total + self.offers[offer_id].resources
        return total

    def snapshot(self, now: float | None = None) -> allocator.Snapshot:
        now = now or time.time()
        totals: dict[str, float] = {}
        views: list[allocator.AgentView] = []
        for agent in self.agents.values():
            if agent.state != "ACTIVE":
                continue
            for name, amount in agent.resources.scalars().items():
                totals[name] = totals.get(name, 0.0) + amount
            available = agent.resources - agent.used() - self.offered(agent)
            if available:
                views.append(allocator.AgentView(agent.id, available))
        frameworks: list[allocator.FrameworkView] = []
        for framework in self.frameworks.values():
            if not framework.active or not framework.connected:
                continue
            allocated = {role: dict(scalars) for role, scalars in framework.task_allocation().items()}
            for offer_id in framework.offers:
                offer = self.offers[offer_id]
                _accumulate(allocated.setdefault(offer.role, {}), offer.resources.scalars())
            for agent_id, (_resources, expiry) in list(framework.filters.items()):
                if expiry <= now:
                    del framework.filters[agent_id]
            frameworks.append(
                allocator.FrameworkView(
                    id=framework.id,
                    roles=framework.roles,
                    allocated=allocated,
                    suppressed_roles=frozenset(framework.suppressed_roles),
                    filters={agent_id: resources for agent_id, (resources, _) in framework.filters.items()},
                )
            )
        return allocator.Snapshot(
            agents=views,
            frameworks=frameworks,
            totals=totals,
            weights=dict(self.weights),
            min_allocatable=self.config.min_allocatable,
        )

    def allocate_once(self) -> int:
        """Run one allocation cycle and send the resulting offers; returns how many offers were made.

        The lock is held to take the snapshot and to turn allocations into offers, not while DRF runs: an
        allocation that went stale meanwhile (agent gone, framework gone, resources used) is simply dropped and
        the next cycle sees the new state."""
        started = time.perf_counter()
        with self._lock:
            if not self.leading or not any(f.active and f.connected for f in self.frameworks.values()):
                return 0
            snapshot = self.snapshot()
        if not snapshot.agents or not snapshot.frameworks:
            return 0
        allocations = allocator.allocate(snapshot, self._rng)
        made = 0
        with self._lock:
            batches: dict[str, list[dict[str, Any]]] = {}
            now = time.time()
            available: dict[str, Resources] = {}
            for allocation in allocations:
                framework = self.frameworks.get(allocation.framework_id)
                agent = self.agents.get(allocation.agent_id)
                if framework is None or agent is None or not framework.connected or agent.state != "ACTIVE":
                    continue
                if agent.id not in available:
                    available[agent.id] = agent.resources - agent.used() - self.offered(agent)
                if not available[agent.id].contains(allocation.resources):
                    continue
                available[agent.id] = available[agent.id] - allocation.resources
                offer = Offer(
                    id=f"{self.id}-O{next(self._offer_seq)}",
                    framework_id=framework.id,
                    agent_id=agent.id,
                    role=allocation.role,
                    resources=allocation.resources,
                    created=now,
                )
                self.offers[offer.id] = offer
                framework.offers.add(offer.id)
                agent.offers.add(offer.id)
                batches.setdefault(framework.id, []).append(self._offer_json(offer, agent))
                made += 1
            for framework_id, offers in batches.items():
                self.frameworks[framework_id].send({"type": "OFFERS", "offers": {"offers": offers}})
        self.metrics["allocator/mesos/allocation_run_ms"] = (time.perf_counter() - started) * 1000.0
        return made

    def _offer_json(self, offer: Offer, agent: Agent) -> dict[str, Any]:
        return {
            "id": proto.wrap(offer.id),
            "framework_id": proto.wrap(offer.framework_id),
            "agent_id": proto.wrap(agent.id),
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": agent.ip, "port": agent.port},
                "path": "/slave(1)",
            },
            "resources": offer.resources.to_v1(allocation_role=offer.role),
            "attributes": agent.attributes.to_v1(),
            "executor_ids": [
                proto.wrap(executor_id) for (fid, executor_id) in agent.executors if fid == offer.framework_id
            ],
            "allocation_info": {"role": offer.role},
        }

    def _allocation_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.allocation_interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            # Batch the events that woke us (a framework and several agents arriving together) into one cycle.
            time.sleep(min(0.05, self.config.allocation_interval))
            try:
                self.allocate_once()
            except Exception:  # noqa: BLE001 - the loop must survive any bug in one cycle
                log.exception("allocation cycle failed")

    # ------------------------------------------------------------------ timeouts

    def _timeout_loop(self) -> None:
        tick = min(1.0, self.config.agent_ping_timeout / 2)
        while not self._stop.wait(tick):
            try:
                self.check_timeouts()
            except Exception:  # noqa: BLE001
                log.exception("timeout check failed")

    def check_timeouts(self, now: float | None = None) -> None:
        now = now or time.time()
        with self._lock:
            if not self.leading:
                return
            if self.config.offer_timeout:
                for offer in list(self.offers.values()):
                    if now - offer.created >= self.config.offer_timeout:
                        framework = self.frameworks.get(offer.framework_id)
                        self._rescind(offer.id)
                        if framework is not None:
                            self._add_filter(framework, offer.agent_id, offer.resources, OFFER_TIMEOUT_REFUSE_SECONDS)
            limit = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts
            for agent in list(self.agents.values()):
                if agent.state == "ACTIVE" and now - agent.last_seen > limit:
                    self._agent_unreachable(agent, "REASON_AGENT_UNREACHABLE", "Agent stopped answering pings")
                elif agent.state == "RECOVERED" and now - agent.last_seen > self.config.agent_reregister_timeout:
                    self._agent_unreachable(agent, "REASON_AGENT_UNREACHABLE", "Agent did not re-register in time")
            for framework in list(self.frameworks.values()):
                if (
                    framework.failover_deadline is not None
                    and not framework.connected
                    and now >= framework.failover_deadline
                ):
                    self._remove_framework(framework, "failover timeout expired")

    def _agent_unreachable(self, agent: Agent, reason: str, message: str) -> None:
        log.warning("agent %s (%s) is unreachable: %s", agent.id, agent.endpoint, message)
        agent.state = "UNREACHABLE"
        agent.unreachable_time = time.time()
        self._drop_agent_offers(agent)
        for task in list(agent.tasks.values()):
            framework = self.frameworks.get(task.framework_id)
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
                unreachable_time={"nanoseconds": int(agent.unreachable_time * 1e9)},
            )
            self._apply_status(task, status)
            task.unreachable_time = agent.unreachable_time
            framework.tasks.pop(task.id, None)
            framework.changed()
            if framework.partition_aware:
                framework.unreachable_tasks[task.id] = task
            else:
                framework.completed_tasks.append(task)
            framework.send_update(status)
        agent.tasks.clear()
        agent.executors.clear()
        agent.changed()
        for framework in self.frameworks.values():
            framework.send({"type": "FAILURE", "failure": {"agent_id": proto.wrap(agent.id)}})
        self._wake.set()

    # ------------------------------------------------------------------ reads

    def locked(self) -> threading.RLock:
        return self._lock


def _accumulate(into: dict[str, float], scalars: dict[str, float]) -> None:
    for name, amount in scalars.items():
        into[name] = into.get(name, 0.0) + amount


def _refuse_seconds(filters: Any) -> float:
    if isinstance(filters, dict) and "refuse_seconds" in filters:
        try:
            value = float(filters["refuse_seconds"])
        except (TypeError, ValueError):
            return DEFAULT_REFUSE_SECONDS
        return max(0.0, min(value, MAX_REFUSE_SECONDS))
    return DEFAULT_REFUSE_SECONDS


def _roles_of(body: dict[str, Any] | None, framework: Framework) -> list[str]:
    roles = (body or {}).get("roles") or []
    if isinstance(body, dict) and isinstance(body.get("role"), str):
        roles = [body["role"]]
    return [r for r in roles if isinstance(r, str)] or list(framework.roles)


def _tasks_of(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for operation in operations:
        if operation.get("type") == "LAUNCH":
            tasks.extend((operation.get("launch") or {}).get("task_infos") or [])
        else:
            tasks.extend(((operation.get("launch_group") or {}).get("task_group") or {}).get("tasks") or [])
    return [t for t in tasks if isinstance(t, dict)]


def _validate_id(value: str) -> str | None:
    """Ids become directory names in the agent's sandbox path, so Mesos restricts them."""
    if not value:
        return "must not be empty"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    if "/" in value or "\\" in value:
        return f"'{value}' contains invalid characters"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return f"'{value}' contains invalid characters"
    return None
