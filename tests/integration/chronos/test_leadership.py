"""``core.leader_runner`` and Chronos' state on a real ZooKeeper: who runs the leader-only service, fencing of a
demoted leader's writes, and keys that are not plain ZooKeeper node names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mesolite.chronos.state import ChronosState
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


def runner(zookeeper: ZooKeeper, name: str, built: list[Recorder]) -> LeaderRunner[Recorder]:
    client = zk.connect(zookeeper.hosts)
    store = zk.ZooKeeperStore(client, "/test/state")

    def build(fence: Fence) -> Recorder:
        service = Recorder(FencedStore(store, fence))
        built.append(service)
        return service

    return LeaderRunner(client, "/test/candidate", {"id": name, "leader": name}, build)


def test_one_runs_the_service_and_a_demoted_leader_can_no_longer_write(zookeeper: ZooKeeper) -> None:
    first_built: list[Recorder] = []
    second_built: list[Recorder] = []
    first = runner(zookeeper, "first", first_built)
    first.start()
    assert wait_until(lambda: first.active, timeout=15) is first_built[0]
    second = runner(zookeeper, "second", second_built)
    second.start()
    try:
        wait_until(lambda: second.leader == {"id": "first", "leader": "first"}, timeout=15)
        assert second.active is None and second_built == []

        # The first loses its znode (as when its session expires): it steps down and queues up behind the second.
        admin = zk.connect(zookeeper.hosts)
        try:
            for child in admin.get_children("/test/candidate"):
                if json.loads(admin.get(f"/test/candidate/{child}")[0])["id"] == "first":
                    admin.delete(f"/test/candidate/{child}")
        finally:
            admin.stop()
            admin.close()
        assert wait_until(lambda: second.active, timeout=15) is second_built[0]
        wait_until(lambda: first_built[0].stopped, timeout=15, what="the demoted leader's service to stop")
        assert first.active is None
        assert wait_until(lambda: first.leader, timeout=15) == {"id": "second", "leader": "second"}
        with pytest.raises(NotLeading):
            first_built[0].store.put("owner", "stale")
        assert first_built[0].store.get("owner") == "me"  # the second's write; reads still work

        # Stopping leaves the group at once: the first leads again well within its 10 s session timeout.
        second.stop()
        assert second_built[0].stopped
        assert wait_until(lambda: first.active, timeout=5) is first_built[1]
    finally:
        second.stop()
        first.stop()
    assert first_built[1].stopped


def test_chronos_state_round_trips_awkward_names_through_zookeeper(zookeeper: ZooKeeper) -> None:
    client = zk.connect(zookeeper.hosts)
    try:
        now = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
        state = ChronosState(zk.ZooKeeperStore(client, "/chronos/state"), clock=lambda: now)
        big: dict[str, Any] = {"name": "..", "command": "x" * 100, "schedule": "R/2100-01-01T00:00:00Z/P1D"}
        state.put_job(big, "scheduled")
        state.put_job({**big, "name": "a.b", "parents": [".."]}, "dependent")
        state.run_now("..", "--from a/b --to ./c")
        state.run_now("a.b", "x/y")

        restarted = ChronosState(zk.ZooKeeperStore(client, "/chronos/state"), clock=lambda: now)
        assert [job["name"] for job in restarted.list_jobs()] == ["..", "a.b"]
        assert sorted(run.arguments or "" for run in restarted.runs.values()) == ["--from a/b --to ./c", "x/y"]
        restarted.delete_job("a.b")
        restarted.delete_job("..")
        assert zk.ZooKeeperStore(client, "/chronos/state").list("") == {}
    finally:
        client.stop()
        client.close()
