"""Leader contention, detection and the registry store against a real ZooKeeper."""

from __future__ import annotations

import json
import threading

from mesolite.core import zk
from tests.cluster import wait_until
from tests.zookeeper import ZooKeeper


def test_lowest_sequence_leads_and_the_next_takes_over(zookeeper: ZooKeeper) -> None:
    hosts, group = zk.parse_zk_url(zookeeper.url("mesos"))
    assert group == "/mesos"
    clients = [zk.connect(hosts) for _ in range(3)]
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def contender(i: int) -> zk.LeaderContender:
        def note(kind: str) -> None:
            with lock:
                events.append((kind, f"m{i}"))

        info = {"id": f"m{i}", "address": {"ip": "127.0.0.1", "port": 5050 + i, "hostname": f"m{i}"}}
        return zk.LeaderContender(clients[i], group, lambda: info, lambda: note("elected"), lambda: note("demoted"))

    seen: list[str | None] = []
    detector = zk.LeaderDetector(clients[2], group, lambda info: seen.append(info["id"] if info else None))
    detector.start()
    first = contender(0)
    first.start()
    wait_until(lambda: first.leading)
    second = contender(1)
    second.start()
    wait_until(lambda: len(clients[2].get_children(group)) == 2)
    assert not second.leading
    wait_until(lambda: seen and seen[-1] == "m0")
    # The leader's session ends (a crashed master): the next lowest sequence leads.
    clients[0].stop()
    wait_until(lambda: second.leading, timeout=20)
    wait_until(lambda: seen[-1] == "m1", timeout=20)
    znodes = clients[2].get_children(group)
    assert len(znodes) == 1 and znodes[0].startswith("json.info_")
    data, _ = clients[2].get(f"{group}/{znodes[0]}")
    assert json.loads(data)["address"]["port"] == 5051
    assert ("elected", "m0") in events and ("elected", "m1") in events
    second.stop()
    assert events[-1] == ("demoted", "m1")
    for client in clients[1:]:
        client.stop()


def test_store_round_trips_lists_and_chunks_large_values(zookeeper: ZooKeeper) -> None:
    client = zk.connect(zookeeper.hosts)
    try:
        store = zk.ZooKeeperStore(client, "/mesos/registry")
        store.put("agents/a1", {"id": "a1"})
        store.put("agents/a2", {"id": "a2"})
        store.put("meta/seq", 3)
        big = {"blob": "x" * (2 * zk.CHUNK_BYTES)}
        store.put("frameworks/big", big)
        assert store.get("agents/a1") == {"id": "a1"} and store.get("missing") is None
        assert store.list("agents/") == {"agents/a1": {"id": "a1"}, "agents/a2": {"id": "a2"}}
        assert store.get("frameworks/big") == big
        assert list(store.list("frameworks/")) == ["frameworks/big"]
        store.delete("agents/a1")
        assert list(store.list("agents/")) == ["agents/a2"]
        # The registry sorts after the json.info_ znodes, so pymesos' min(children) still finds the leader.
        assert sorted(["json.info_0000000001", "registry"])[0].startswith("json.info_")
    finally:
        client.stop()


def test_bad_urls_are_refused() -> None:
    for url in ("http://h:2181/mesos", "zk://h:2181", "zk:///mesos"):
        try:
            zk.parse_zk_url(url)
        except ValueError as exc:
            assert url in str(exc)
        else:
            raise AssertionError(f"{url} accepted")
