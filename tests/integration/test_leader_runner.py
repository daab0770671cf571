"""``core.leader_runner`` on a real ZooKeeper, for what Marathon, Chronos and the master need beyond election and
demotion (``chronos/test_leadership.py``): a framework's leader cut off from ZooKeeper stops acting at once and leads
again once its session turns out to have survived, while a master keeps leading through it; and abdication."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mesolite.core import zk
from mesolite.core.leader_runner import Fence, FencedStore, LeaderRunner, NotLeading
from tests.cluster import wait_until
from tests.zookeeper import ZooKeeper


class Recorder:
    """A leader-only service that remembers its lifecycle and writes through its fenced store."""

    def __init__(self, store: FencedStore) -> None:
        self.store = store
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True
        self.store.put("owner", "me")

    def stop(self) -> None:
        self.stopped = True


def runner(zookeeper: ZooKeeper, name: str, group: str, built: list[Recorder], **options: Any) -> LeaderRunner[Any]:
    client = zk.connect(zookeeper.hosts, session_timeout=10.0)
    store = zk.ZooKeeperStore(client, f"{group}-state")

    def build(fence: Fence) -> Recorder:
        service = Recorder(FencedStore(store, fence))
        built.append(service)
        return service

    return LeaderRunner(client, group, {"id": name}, build, **options)


def test_cut_off_from_zookeeper_a_framework_stops_at_once_and_leads_again_while_a_master_keeps_leading(
    zookeeper: ZooKeeper,
) -> None:
    framework_built: list[Recorder] = []
    master_built: list[Recorder] = []
    framework = runner(zookeeper, "framework", "/frameworks", framework_built)
    master = runner(zookeeper, "master", "/masters", master_built, step_down_when_suspended=False)
    framework.start()
    master.start()
    try:
        first = wait_until(lambda: framework.active, timeout=15)
        assert wait_until(lambda: master.active, timeout=15) is master_built[0]

        cut_at = time.monotonic()
        zookeeper.stop()
        wait_until(lambda: first.stopped, timeout=5, what="the framework's leader to stop once SUSPENDED")
        assert framework.active is None and not framework.electing
        with pytest.raises(NotLeading):
            first.store.put("owner", "stale")
        assert master.active is master_built[0] and not master_built[0].stopped

        zookeeper.start()
        # The session survived the outage: the same znode still leads, and a fresh service takes over.
        second = wait_until(lambda: framework.active, timeout=20, what="the framework to lead again")
        assert second is framework_built[1] and second.started
        assert framework.leader == {"id": "framework"}
        # Back within the 10 s session timeout (ZooKeeper restarts in about 5 s): the master never stopped leading.
        assert time.monotonic() - cut_at < 10.0
        assert master.active is master_built[0] and not master_built[0].stopped and len(master_built) == 1
    finally:
        framework.stop()
        master.stop()


def test_abdication_hands_the_lead_to_the_next_in_line_and_re_queues(zookeeper: ZooKeeper) -> None:
    first_built: list[Recorder] = []
    second_built: list[Recorder] = []
    first = runner(zookeeper, "first", "/candidates", first_built)
    second = runner(zookeeper, "second", "/candidates", second_built)
    first.start()
    try:
        assert wait_until(lambda: first.active, timeout=15) is first_built[0]
        second.start()
        wait_until(lambda: second.leader == {"id": "first"}, timeout=15)
        assert second.abdicate() is False  # only the leader can abdicate

        assert first.abdicate() is True
        assert wait_until(lambda: second.active, timeout=15) is second_built[0]
        assert first_built[0].stopped and first.active is None
        assert wait_until(lambda: first.leader, timeout=15) == {"id": "second"}

        # Alone in the group, an abdicating leader is elected again, with a freshly built service.
        second.stop()
        assert wait_until(lambda: first.active, timeout=15) is first_built[1]
        assert first.abdicate() is True
        wait_until(lambda: len(first_built) == 3 and first.active is first_built[2], timeout=15, what="re-elected")
        assert first_built[1].stopped and not first_built[2].stopped
    finally:
        second.stop()
        first.stop()
