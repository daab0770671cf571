"""The operator event stream (SUBSCRIBE on ``/api/v1``): who follows the cluster and what they are told.

A subscriber first gets SUBSCRIBED with the whole GET_STATE, taken under the master's lock at the moment it is
registered, so the events that follow are exactly the changes after that snapshot: TASK_ADDED, TASK_UPDATED,
AGENT_ADDED, AGENT_REMOVED, FRAMEWORK_ADDED, FRAMEWORK_UPDATED, FRAMEWORK_REMOVED (HEARTBEATs come from the stream
itself). The lifecycles call ``OperatorEvents`` with the lock held, and it never blocks: each subscriber has a
bounded queue, and a reader too slow to keep up is cut off (its stream ends; it resubscribes and gets a fresh
snapshot) rather than stall the master or silently miss events. Past ``--max_operator_event_stream_subscribers``
the oldest stream is closed, as in Mesos. Nothing is rendered when nobody listens.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from mesolite.core import protocol as proto
from mesolite.master import operator_views
from mesolite.master.model import Agent, Cluster, Framework, Task

log = logging.getLogger(__name__)

DEFAULT_QUEUE_CAPACITY = 10_000
# Reasons that make a same-state update worth a TASK_UPDATED (Mesos: check and health results).
STATUS_REASONS = frozenset({"REASON_TASK_CHECK_STATUS_UPDATED", "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"})


class OperatorSubscriber:
    """One SUBSCRIBE stream's queue: filled by the master, drained by the HTTP response."""

    def __init__(self, capacity: int) -> None:
        self._events: deque[dict[str, Any]] = deque()
        self._capacity = capacity
        self._ready = threading.Condition()
        self.closed = False
        self.overflowed = False

    def send(self, event: dict[str, Any]) -> None:
        with self._ready:
            if self.closed:
                return
            if len(self._events) >= self._capacity:
                log.warning("operator event subscriber fell %d events behind: closing its stream", self._capacity)
                self.overflowed = True
                self.closed = True
                self._events.clear()
            else:
                self._events.append(event)
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify()

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event; ``{"type": "HEARTBEAT"}`` after ``timeout`` seconds of silence; None once closed."""
        with self._ready:
            if not self._events and not self.closed:
                self._ready.wait(timeout)
            if self._events:
                return self._events.popleft()
            if self.closed:
                return None
            return {"type": "HEARTBEAT"}


class OperatorEvents:
    def __init__(
        self,
        cluster: Cluster,
        inverse_offers: Callable[[], dict[str, list[dict[str, Any]]]],
        max_subscribers: int = 1000,
        capacity: int = DEFAULT_QUEUE_CAPACITY,
        heartbeat_interval: float = 15.0,
    ) -> None:
        self._cluster = cluster
        self._inverse_offers = inverse_offers
        self._max = max_subscribers
        self._capacity = capacity
        self._heartbeat_interval = heartbeat_interval
        self._subscribers: list[OperatorSubscriber] = []

    def subscribe(self) -> OperatorSubscriber:
        """A new stream, opened with SUBSCRIBED (the state as of now) and a HEARTBEAT, as Mesos does."""
        while len(self._subscribers) >= self._max:
            oldest = self._subscribers.pop(0)
            log.info("closing the oldest operator event stream: %d subscribers at most", self._max)
            oldest.close()
        subscriber = OperatorSubscriber(self._capacity)
        state = operator_views.get_state(self._cluster, self._inverse_offers())
        subscriber.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {"get_state": state, "heartbeat_interval_seconds": self._heartbeat_interval},
            }
        )
        subscriber.send({"type": "HEARTBEAT"})
        self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: OperatorSubscriber) -> None:
        subscriber.close()
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def close_all(self) -> None:
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()

    def _publish(self, build: Callable[[], dict[str, Any]]) -> None:
        if not self._subscribers:
            return
        event = build()
        for subscriber in list(self._subscribers):
            subscriber.send(event)
            if subscriber.closed:
                self._subscribers.remove(subscriber)

    # ------------------------------------------------------------------ what the lifecycles report

    def task_added(self, task: Task) -> None:
        self._publish(lambda: {"type": "TASK_ADDED", "task_added": {"task": operator_views.task_v1(task)}})

    def task_updated(self, task: Task, status: dict[str, Any], previous_state: str) -> None:
        """A status the master applied to a task: reported when the state changed or the update carries a
        check or health result."""
        if status.get("state") == previous_state and status.get("reason") not in STATUS_REASONS:
            return
        self._publish(
            lambda: {
                "type": "TASK_UPDATED",
                "task_updated": {
                    "framework_id": proto.wrap(task.framework_id),
                    "status": status,
                    "state": task.state,
                },
            }
        )

    def agent_added(self, agent: Agent) -> None:
        self._publish(
            lambda: {"type": "AGENT_ADDED", "agent_added": {"agent": operator_views.agent_v1(self._cluster, agent)}}
        )

    def agent_removed(self, agent_id: str) -> None:
        self._publish(lambda: {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": proto.wrap(agent_id)}})

    def framework_added(self, framework: Framework) -> None:
        self._publish(
            lambda: {
                "type": "FRAMEWORK_ADDED",
                "framework_added": {"framework": operator_views.framework_v1(self._cluster, framework)},
            }
        )

    def framework_updated(self, framework: Framework) -> None:
        self._publish(
            lambda: {
                "type": "FRAMEWORK_UPDATED",
                "framework_updated": {"framework": operator_views.framework_v1(self._cluster, framework)},
            }
        )

    def framework_removed(self, framework: Framework) -> None:
        self._publish(
            lambda: {"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info": framework.framework_info()}}
        )
