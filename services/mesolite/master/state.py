"""The master's state machine: one ``Master`` owns agents, frameworks, tasks and offers behind one lock.

Requests arrive already parsed (``calls.py``) with bare ids; refusals are domain errors (``errors.py``) that
``api.py`` maps to Mesos' status codes. The transitions live in the parts the master is made of, each given its
collaborators explicitly and called with the lock held: ``AgentLifecycle`` (agents.py), ``FrameworkLifecycle``
(frameworks.py), ``TaskLifecycle`` (tasks.py) and ``OfferBook`` (offers.py). The master adds leadership, the two
loops (allocation and timeouts, loops.py), recovery from the registry (registry.py), and the read model: every
read renders a fresh document under the lock (views.py), so the API and the UI never touch the lock or the records.
Allocation itself is the pure function in allocator.py: the master only builds its snapshot and turns the result
into offers.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mesolite import MESOS_VERSION
from mesolite.core import protocol as proto
from mesolite.core.store import Store
from mesolite.master import allocator, calls, operator_calls, quota, views
from mesolite.master.agent_link import AgentLink, AgentMessages, Link
from mesolite.master.agent_ops import AgentOperations
from mesolite.master.agents import AgentLifecycle
from mesolite.master.config import MasterConfig
from mesolite.master.errors import InvalidCall
from mesolite.master.frameworks import FrameworkLifecycle
from mesolite.master.inverse_offers import InverseOfferBook
from mesolite.master.loops import Loop
from mesolite.master.maintenance import MachineID, Maintenance, Window
from mesolite.master.model import Agent, Cluster, Framework, Offer, Subscription, Task
from mesolite.master.offers import OfferBook
from mesolite.master.operator_events import OperatorEvents, OperatorSubscriber
from mesolite.master.registry import Registry
from mesolite.master.tasks import TaskLifecycle

T = TypeVar("T")

__all__ = ["Master", "MasterConfig", "Agent", "Framework", "Offer", "Subscription", "Task"]


class Master:
    def __init__(self, config: MasterConfig, store: Store, link: Link | None = None, leading: bool = True) -> None:
        self.config = config
        self.link: Link = link or AgentLink()
        self.registry = Registry(store)
        self.id = proto.new_id()
        self.start_time = time.time()
        self.elected_time = self.start_time
        self.cluster = Cluster()
        self.weights: dict[str, float] = dict(config.weights)
        self.quotas: dict[str, quota.QuotaConfig] = {}
        self.metrics: dict[str, float] = {
            "allocator/mesos/allocation_run_ms": 0.0,
            "master/dropped_messages": 0,
        }
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._allocation = Loop(
            "allocator", self.allocate_once, config.allocation_interval, settle=min(0.05, config.allocation_interval)
        )
        self._timeouts = Loop("timeouts", self.check_timeouts, min(1.0, config.agent_ping_timeout / 2))
        wake = self._allocation.wake
        messages = AgentMessages(self.link)
        self._offers = OfferBook(self.cluster, self.id, wake)
        self._inverse = InverseOfferBook(self.cluster, Maintenance(), self.id)
        self.operator_events = OperatorEvents(
            self.cluster,
            self._inverse.by_framework,
            max_subscribers=config.max_operator_event_stream_subscribers,
            heartbeat_interval=config.heartbeat_interval,
        )
        self._tasks = TaskLifecycle(
            self.cluster, self._offers, messages, self.metrics, wake, self._launch_failed, self.operator_events
        )
        self._agents = AgentLifecycle(
            self.cluster, self.registry, self._offers, self._tasks, self.metrics, wake, self.id, self.operator_events
        )
        self._agent_ops = AgentOperations(
            self.cluster,
            self.registry,
            self._offers,
            self._inverse,
            self._tasks,
            messages,
            self.operator_events,
            wake,
        )
        self._frameworks = FrameworkLifecycle(
            self.cluster,
            self.registry,
            self._offers,
            self._tasks,
            messages,
            wake,
            master_info=self.info_json(),
            heartbeat_interval=config.heartbeat_interval,
            operator_events=self.operator_events,
        )
        # Without ZooKeeper this master is the only one and leads from the start; with it, leadership comes and goes
        # through become_leader()/step_down() and ``leader`` is whoever the group elected (MasterInfo JSON).
        self.leading = leading
        self.leader: dict[str, Any] | None = None
        if leading:
            self._recover()

    # The collections, for the views and for tests; read them with the lock held.

    @property
    def agents(self) -> dict[str, Agent]:
        return self.cluster.agents

    @property
    def frameworks(self) -> dict[str, Framework]:
        return self.cluster.frameworks

    @property
    def completed_frameworks(self) -> deque[Framework]:
        return self.cluster.completed_frameworks

    @property
    def offers(self) -> dict[str, Offer]:
        return self.cluster.offers

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._allocation.start()
        self._timeouts.start()

    def stop(self) -> None:
        with self._lock:
            for framework in self.cluster.frameworks.values():
                framework.close_stream()
            self.operator_events.close_all()
        self._allocation.stop()
        self._timeouts.stop()
        self.link.close()

    @property
    def pid(self) -> str:
        return f"master@{self.config.ip}:{self.config.port}"

    def become_leader(self) -> None:
        """Elected: the registry (in ZooKeeper) says which agents and frameworks to expect back."""
        with self._lock:
            if self.leading:
                return
            self.cluster.clear()
            self.registry.reset_agent_ids()
            self._recover()
            self.elected_time = time.time()
            self.leader = self.info_json()
            self.leading = True
            self._allocation.wake()

    def step_down(self) -> None:
        """Leadership lost (ZooKeeper session expired): stop acting at once. Schedulers' streams end so they look
        for the new leader; in-memory state is dropped because the next leader owns the truth now."""
        with self._lock:
            if not self.leading:
                return
            self.leading = False
            if self.leader is not None and self.leader.get("id") == self.id:
                self.leader = None
            self.cluster.clear()
            self._inverse.clear()
            self.operator_events.close_all()

    def _recover(self) -> None:
        """Agents and frameworks admitted before a restart come back as 'recovered': agents until they re-register
        (or the re-register timeout passes), frameworks until they re-subscribe (or their failover timeout passes)."""
        now = time.time()
        self.weights.update(self.registry.weights())
        self.quotas = {role: quota.QuotaConfig.from_json(c) for role, c in self.registry.quotas().items()}
        for agent in self.registry.agents(now):
            self.cluster.agents[agent.id] = agent
        for framework in self.registry.frameworks(now):
            self.cluster.frameworks[framework.id] = framework
        self._agent_ops.recover()

    def info_json(self) -> dict[str, Any]:
        """MasterInfo, as in SUBSCRIBED events, agent registrations and the ZooKeeper leader znode."""
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

    def update_weights(self, weights: dict[str, float]) -> None:
        with self._lock:
            self.weights.update(weights)
            self.registry.save_weights(self.weights)

    # ------------------------------------------------------------------ agent protocol

    def register_agent(self, registration: calls.Registration) -> str:
        """Admit or re-admit an agent; returns its id. Raises AgentRefused for agents on DOWN machines and
        agents marked gone."""
        with self._lock:
            self._agent_ops.check_admission(registration)
            agent_id = self._agents.register(registration)
            self._agent_ops.admitted(self.cluster.agents[agent_id])
            return agent_id

    def unregister_agent(self, agent_id: str | None) -> bool:
        with self._lock:
            return self._agents.unregister(agent_id)

    def agent_heartbeat(self, agent_id: str | None) -> bool:
        """False tells the agent the master does not know it (a restart): it re-registers with its tasks."""
        with self._lock:
            return self._agents.heartbeat(agent_id)

    def agent_status_update(self, update: calls.StatusUpdate) -> bool:
        """True when the master settles the update itself (the framework is gone), so the agent stops retrying."""
        with self._lock:
            return self._tasks.status_update(update)

    def agent_executor_message(self, message: calls.ExecutorMessage) -> None:
        with self._lock:
            self._agents.executor_message(message)

    def agent_executor_exited(self, exited: calls.ExecutorExited) -> None:
        with self._lock:
            self._agents.executor_exited(exited)

    def _launch_failed(self, task: Task, error: str) -> None:
        """From the agent link's thread: the launch message never reached the agent."""
        with self._lock:
            self._tasks.launch_failed(task, error)

    # ------------------------------------------------------------------ scheduler calls

    def subscribe(self, call: calls.Subscribe) -> Subscription:
        with self._lock:
            return self._frameworks.subscribe(call)

    def disconnected(self, subscription: Subscription) -> None:
        """The scheduler's stream broke: deactivate it and start its failover timeout."""
        with self._lock:
            self._frameworks.disconnected(subscription)
            self._inverse.withdraw(subscription.framework_id)

    def authorize(self, framework_id: str, stream_id: str | None) -> None:
        """Mesos' checks before any call but SUBSCRIBE: the stream id is there, the framework is known and
        subscribed, on this stream. Raises InvalidCall, UnknownFramework or NotSubscribed."""
        with self._lock:
            self._frameworks.authorize(framework_id, stream_id)

    def teardown(self, framework_id: str) -> None:
        with self._lock:
            self._frameworks.remove(self._frameworks.get(framework_id), "Framework was torn down")

    def accept(self, framework_id: str, call: calls.Accept) -> None:
        with self._lock:
            self._tasks.accept(self._frameworks.get(framework_id), call)

    def decline(self, framework_id: str, call: calls.Decline) -> None:
        with self._lock:
            self._offers.decline(self._frameworks.get(framework_id), call.offer_ids, call.refuse_seconds)

    def revive(self, framework_id: str, call: calls.Revive) -> None:
        with self._lock:
            self._frameworks.revive(self._frameworks.get(framework_id), call)

    def suppress(self, framework_id: str, call: calls.Suppress) -> None:
        with self._lock:
            self._frameworks.suppress(self._frameworks.get(framework_id), call)

    def kill(self, framework_id: str, call: calls.Kill) -> None:
        with self._lock:
            self._tasks.kill(self._frameworks.get(framework_id), call)

    def shutdown_executor(self, framework_id: str, call: calls.Shutdown) -> None:
        with self._lock:
            self._tasks.shutdown_executor(self._frameworks.get(framework_id), call)

    def acknowledge(self, framework_id: str, call: calls.Acknowledge) -> None:
        with self._lock:
            self._tasks.acknowledge(self._frameworks.get(framework_id), call)

    def reconcile(self, framework_id: str, call: calls.Reconcile) -> None:
        with self._lock:
            self._tasks.reconcile(self._frameworks.get(framework_id), call)

    def message(self, framework_id: str, call: calls.Message) -> None:
        with self._lock:
            self._tasks.message(self._frameworks.get(framework_id), call)

    def update_framework(self, framework_id: str, call: calls.UpdateFramework) -> None:
        with self._lock:
            self._frameworks.update(self._frameworks.get(framework_id), call)

    def answer_inverse_offers(self, framework_id: str, call: calls.AnswerInverseOffers) -> None:
        with self._lock:
            framework = self._frameworks.get(framework_id)
            self._inverse.answer(framework, call.inverse_offer_ids, call.accept, call.refuse_seconds, time.time())
            self._allocation.wake()

    # ------------------------------------------------------------------ allocation and timeouts

    def snapshot(self, now: float | None = None) -> allocator.Snapshot:
        with self._lock:
            quotas = {role: allocator.RoleQuota(dict(c.guarantees), dict(c.limits)) for role, c in self.quotas.items()}
            return self._offers.snapshot(now or time.time(), self.weights, self.config.min_allocatable, quotas)

    def allocate_once(self) -> int:
        """Run one allocation cycle and send the resulting offers; returns how many offers were made.

        The lock is held to take the snapshot and to turn allocations into offers, not while DRF runs: an
        allocation that went stale meanwhile (agent gone, framework gone, resources used) is simply dropped and
        the next cycle sees the new state."""
        started = time.perf_counter()
        with self._lock:
            if not self.leading or not any(f.active and f.connected for f in self.cluster.frameworks.values()):
                return 0
            self._inverse.generate(time.time())
            snapshot = self.snapshot()
        if not snapshot.agents or not snapshot.frameworks:
            return 0
        allocations = allocator.allocate(snapshot, self._rng)
        with self._lock:
            made = self._offers.make(allocations, time.time())
        self.metrics["allocator/mesos/allocation_run_ms"] = (time.perf_counter() - started) * 1000.0
        return made

    def check_timeouts(self, now: float | None = None) -> None:
        """Offers outstanding too long, agents silent too long, frameworks past their failover timeout."""
        now = now or time.time()
        with self._lock:
            if not self.leading:
                return
            if self.config.offer_timeout:
                self._offers.expire(now, self.config.offer_timeout)
            self._agents.check_health(
                now,
                ping_limit=self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts,
                reregister_timeout=self.config.agent_reregister_timeout,
            )
            self._frameworks.expire_failovers(now)
            self._agent_ops.check_drains()

    # ------------------------------------------------------------------ operator calls (operator.py)

    def drain_agent(self, call: operator_calls.DrainAgent) -> None:
        with self._lock:
            self._agent_ops.drain(call)

    def deactivate_agent(self, agent_id: str) -> None:
        with self._lock:
            self._agent_ops.deactivate(agent_id)

    def reactivate_agent(self, agent_id: str) -> None:
        with self._lock:
            self._agent_ops.reactivate(agent_id)

    def mark_agent_gone(self, agent_id: str) -> None:
        with self._lock:
            self._agent_ops.mark_gone(agent_id)

    def update_maintenance_schedule(self, windows: Sequence[Window]) -> None:
        with self._lock:
            self._agent_ops.update_schedule(windows)

    def start_maintenance(self, machines: Sequence[MachineID]) -> None:
        with self._lock:
            self._agent_ops.start_maintenance(machines)

    def stop_maintenance(self, machines: Sequence[MachineID]) -> None:
        with self._lock:
            self._agent_ops.stop_maintenance(machines)

    def update_quota(self, configs: list[quota.QuotaConfig], force: bool) -> None:
        """UPDATE_QUOTA, all or nothing; raises QuotaError. Offers that the new quotas forbid, or that hold the
        room a guarantee needs, are rescinded (best effort, as in Mesos)."""
        with self._lock:
            quota.check_update(
                configs, force, self.quotas, self._offers.consumed(c.role for c in configs), self._capacity()
            )
            for config in configs:
                if config.is_default:
                    self.quotas.pop(config.role, None)
                else:
                    self.quotas[config.role] = config
            self._save_quotas()
            for config in configs:
                if config.limits:
                    self._offers.rescind_role(config.role)
                if config.guarantees:
                    self._offers.rescind_role(config.role, keep=True)
            self._allocation.wake()

    def set_quota(self, config: quota.QuotaConfig, force: bool) -> None:
        """The deprecated SET_QUOTA and v0 ``POST /quota``: the guarantee is also the limit."""
        with self._lock:
            quota.check_set(config, force, self.quotas, self._capacity())
            self.quotas[config.role] = config
            self._save_quotas()
            self._offers.rescind_role(config.role, keep=True)
            self._allocation.wake()

    def remove_quota(self, role: str) -> bool:
        """False when the role has no quota."""
        with self._lock:
            if self.quotas.pop(role, None) is None:
                return False
            self._save_quotas()
            self._allocation.wake()
            return True

    def _save_quotas(self) -> None:
        self.registry.save_quotas({role: c.to_json() for role, c in self.quotas.items()})

    def _capacity(self) -> dict[str, float]:
        capacity: dict[str, float] = {}
        for agent in self.cluster.agents.values():
            if agent.active:
                for name, amount in agent.resources.scalars().items():
                    capacity[name] = capacity.get(name, 0.0) + amount
        return capacity

    def subscribe_operator(self) -> OperatorSubscriber:
        """An operator event stream, opened with the state as of now."""
        with self._lock:
            if not self.leading:
                raise InvalidCall("Not the leading master")
            return self.operator_events.subscribe()

    def unsubscribe_operator(self, subscriber: OperatorSubscriber) -> None:
        with self._lock:
            self.operator_events.unsubscribe(subscriber)

    # ------------------------------------------------------------------ read model

    def read(self, render: Callable[[Master], T]) -> T:
        """Any document of the read model (the v1 operator views among them), rendered under the lock."""
        with self._lock:
            return render(self)

    @property
    def maintenance(self) -> Any:
        """The maintenance schedule and modes; read it through ``read``."""
        return self._agent_ops.maintenance

    def inverse_offers_by_framework(self) -> dict[str, list[dict[str, Any]]]:
        """Outstanding inverse offers per framework; read it through ``read``."""
        return self._inverse.by_framework()

    def state_json(self) -> dict[str, Any]:
        """``/master/state``: what Mesos-DNS, the HAProxy bridge and the web UI read."""
        with self._lock:
            return views.state_json(self)

    def state_summary_json(self) -> dict[str, Any]:
        with self._lock:
            return views.state_summary_json(self)

    def metrics_json(self) -> dict[str, float]:
        with self._lock:
            return views.metrics_json(self)

    def flags_json(self) -> dict[str, str]:
        return views.flags_json(self)

    def slaves_json(self, agent_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            return views.slaves_json(self, agent_id)

    def frameworks_json(self, framework_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            return views.frameworks_json(self, framework_id)

    def tasks_json(self, query: views.TaskQuery) -> dict[str, Any]:
        with self._lock:
            return views.tasks_json(self, query)

    def roles_json(self) -> dict[str, Any]:
        with self._lock:
            return views.roles_json(self)

    def weights_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"role": role, "weight": weight} for role, weight in sorted(self.weights.items())]

    def agent_endpoint(self, agent_id: str) -> str | None:
        """Where to reach a known agent (``host:port``), for the UI's sandbox proxy."""
        with self._lock:
            agent = self.cluster.agents.get(agent_id)
            return agent.endpoint if agent is not None else None
