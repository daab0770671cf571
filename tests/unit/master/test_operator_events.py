"""The operator event stream's subscribers: bounded queues that cut a slow reader off instead of stalling the
master, the oldest stream closed past the subscriber limit, heartbeats on silence."""

from __future__ import annotations

from mesolite.master.model import Cluster
from mesolite.master.operator_events import OperatorEvents, OperatorSubscriber


def test_a_reader_that_falls_behind_is_cut_off() -> None:
    subscriber = OperatorSubscriber(capacity=3)
    for n in range(3):
        subscriber.send({"type": "HEARTBEAT", "n": n})
    assert not subscriber.closed
    subscriber.send({"type": "HEARTBEAT", "n": 3})  # never blocks the sender
    assert subscriber.closed and subscriber.overflowed
    assert subscriber.next(timeout=0.01) is None  # the stream ends; the reader resubscribes for a fresh state


def test_subscribed_first_then_events_and_heartbeats() -> None:
    events = OperatorEvents(Cluster(), dict, max_subscribers=2, heartbeat_interval=7.0)
    first = events.subscribe()
    subscribed = first.next(timeout=0.01)
    assert subscribed is not None and subscribed["type"] == "SUBSCRIBED"
    assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 7.0
    assert set(subscribed["subscribed"]["get_state"]) == {"get_tasks", "get_executors", "get_frameworks", "get_agents"}
    assert first.next(timeout=0.01) == {"type": "HEARTBEAT"}
    assert first.next(timeout=0.01) == {"type": "HEARTBEAT"}  # silence: a heartbeat
    events.agent_removed("S1")
    assert first.next(timeout=0.01) == {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "S1"}}}
    events.subscribe()
    events.subscribe()  # a third: the oldest stream is closed
    assert first.closed
    events.close_all()
