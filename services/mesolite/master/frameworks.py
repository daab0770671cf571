"""Frameworks through their life on the master: subscribed (or failed over to a new stream), checked on every call,
disconnected, updated, torn down or timed out after their failover timeout.

Called with the master's lock held.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from mesolite.core import protocol as proto
from mesolite.master import calls, events, validation
from mesolite.master.agent_link import AgentMessages
from mesolite.master.errors import InvalidCall, NotSubscribed, UnknownFramework
from mesolite.master.model import Cluster, Framework, Subscription
from mesolite.master.offers import OfferBook
from mesolite.master.operator_events import OperatorEvents
from mesolite.master.registry import Registry
from mesolite.master.tasks import TaskLifecycle

log = logging.getLogger(__name__)


class FrameworkLifecycle:
    def __init__(
        self,
        cluster: Cluster,
        registry: Registry,
        offers: OfferBook,
        tasks: TaskLifecycle,
        messages: AgentMessages,
        wake: Callable[[], None],
        master_info: dict[str, Any],
        heartbeat_interval: float,
        operator_events: OperatorEvents,
    ) -> None:
        self._cluster = cluster
        self._operator_events = operator_events
        self._registry = registry
        self._offers = offers
        self._tasks = tasks
        self._messages = messages
        self._wake = wake
        self._master_info = master_info
        self._heartbeat_interval = heartbeat_interval
        self._seq = itertools.count()

    def subscribe(self, call: calls.Subscribe) -> Subscription:
        """A new framework (ids are ``<master id>-NNNN`` as in Mesos), or a known one failing over to a new
        stream."""
        now = time.time()
        framework_id = call.framework_id
        if framework_id and any(f.id == framework_id for f in self._cluster.completed_frameworks):
            subscription = Subscription(framework_id)
            subscription.send(events.error("Framework has been removed"))
            subscription.close()
            return subscription
        info = dict(call.framework_info)
        framework = self._cluster.frameworks.get(framework_id or "")
        added = framework is None
        if framework is None:
            framework_id = framework_id or f"{self._master_info['id']}-{next(self._seq):04d}"
            info.setdefault("failover_timeout", call.failover_timeout)
            framework = Framework(id=framework_id, info=info, registered_time=now)
            self._cluster.frameworks[framework_id] = framework
        else:
            if framework.connected:
                framework.send(events.error("Framework failed over"))
                framework.close_stream()
            # As Mesos' failoverFramework: offers made to the old connection are rescinded, not left to time out.
            self._offers.withdraw(framework)
            framework.info = info
            framework.reregistered_time = now
        framework.active = True
        framework.recovered = False
        framework.unregistered_time = None
        framework.failover_deadline = None
        framework.suppressed_roles = set(call.suppressed_roles)
        subscription = Subscription(framework.id)
        framework.subscription = subscription
        self._registry.save_framework(framework)
        subscription.send(events.subscribed(framework.id, self._heartbeat_interval, self._master_info))
        if added:
            self._operator_events.framework_added(framework)
        else:
            self._operator_events.framework_updated(framework)
        self._wake()
        return subscription

    def disconnected(self, subscription: Subscription) -> None:
        """The scheduler's stream broke: deactivate it and start its failover timeout."""
        subscription.close()
        framework = self._cluster.frameworks.get(subscription.framework_id)
        if framework is None or framework.subscription is not subscription:
            return
        framework.subscription = None
        framework.active = False
        framework.unregistered_time = time.time()
        framework.failover_deadline = time.time() + framework.failover_timeout
        self._offers.withdraw(framework)
        self._wake()

    def authorize(self, framework_id: str, stream_id: str | None) -> Framework:
        """Mesos' checks for every non-SUBSCRIBE call, in its order."""
        if not stream_id:
            raise InvalidCall("All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        framework = self.get(framework_id)
        if not framework.connected:
            raise NotSubscribed()
        assert framework.subscription is not None
        if framework.subscription.stream_id != stream_id:
            raise InvalidCall(
                f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
                f"associated with framework ID {framework.id}"
            )
        return framework

    def get(self, framework_id: str) -> Framework:
        framework = self._cluster.frameworks.get(framework_id)
        if framework is None:
            raise UnknownFramework()
        return framework

    def update(self, framework: Framework, call: calls.UpdateFramework) -> None:
        error = validation.framework_update_error(framework.info, call.framework_info)
        if error:
            raise InvalidCall(error)
        framework.info = dict(call.framework_info)
        if call.suppressed_roles is not None:
            framework.suppressed_roles = set(call.suppressed_roles)
        self._registry.save_framework(framework)
        self._offers.rescind_roles_left(framework)
        self._operator_events.framework_updated(framework)
        self._wake()

    def revive(self, framework: Framework, call: calls.Revive) -> None:
        framework.suppressed_roles -= set(call.roles or framework.roles)
        framework.filters.clear()
        self._wake()

    def suppress(self, framework: Framework, call: calls.Suppress) -> None:
        framework.suppressed_roles |= set(call.roles or framework.roles)

    def expire_failovers(self, now: float) -> None:
        for framework in list(self._cluster.frameworks.values()):
            if (
                framework.failover_deadline is not None
                and not framework.connected
                and now >= framework.failover_deadline
            ):
                self.remove(framework, "failover timeout expired")

    def remove(self, framework: Framework, reason: str) -> None:
        """Teardown, or a failover timeout that passed: its tasks are killed, its executors shut down everywhere,
        and it moves to the completed frameworks."""
        log.info("removing framework %s: %s", framework.id, reason)
        self._offers.withdraw(framework)
        for task in list(framework.tasks.values()):
            self._tasks.release(task)
            if not proto.is_terminal(task.state):
                killed = proto.task_status(
                    task.id,
                    "TASK_KILLED",
                    agent_id=task.agent_id,
                    source="SOURCE_MASTER",
                    reason="REASON_FRAMEWORK_REMOVED",
                    message="Framework was removed",
                    with_uuid=False,
                )
                self._tasks.apply_status(task, killed)
            framework.completed_tasks.append(task)
        framework.tasks.clear()
        framework.changed()
        # Every active agent hears of it, as in Mesos: an executor whose tasks have all ended still runs somewhere.
        for agent in self._cluster.agents.values():
            for key in [k for k in agent.executors if k[0] == framework.id]:
                del agent.executors[key]
                agent.custom_executors.discard(key)
                agent.changed()
            if agent.active:
                self._messages.shutdown_framework(agent.endpoint, framework.id)
        framework.close_stream()
        framework.subscription = None
        framework.active = False
        framework.unregistered_time = time.time()
        self._cluster.frameworks.pop(framework.id, None)
        self._cluster.completed_frameworks.append(framework)
        self._registry.forget_framework(framework.id)
        self._operator_events.framework_removed(framework)
        self._wake()
