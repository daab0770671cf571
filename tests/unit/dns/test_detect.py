"""Finding the leader: following the ``leader`` a master names, trying masters in order, MasterInfo parsing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from mesolite.dns.config import parse_config
from mesolite.dns.detect import StateFetcher, master_address, parse_zk
from tests.cluster import free_port
from tests.integration.dns.conftest import FakeMaster


@pytest.fixture
def masters() -> Iterator[tuple[FakeMaster, FakeMaster]]:
    leader = FakeMaster({"slaves": [], "frameworks": [{"name": "from-leader"}]}).start()
    standby = FakeMaster({"slaves": [], "frameworks": []}).start()
    standby.doc["leader"] = leader.doc["leader"]  # a standby's state names the leader, as Mesos' does
    try:
        yield leader, standby
    finally:
        leader.stop()
        standby.stop()


def test_the_state_comes_from_the_leader_a_standby_names(masters: tuple[FakeMaster, FakeMaster]) -> None:
    leader, standby = masters
    fetcher = StateFetcher(parse_config({"masters": [standby.address]}))
    state, address = fetcher.load([standby.address])
    assert address == leader.address and state["frameworks"] == [{"name": "from-leader"}]
    assert leader.requests["/master/state"] == 1 and standby.requests["/master/state"] == 1


def test_masters_are_tried_in_order(masters: tuple[FakeMaster, FakeMaster]) -> None:
    leader, _ = masters
    dead = f"127.0.0.1:{free_port()}"
    fetcher = StateFetcher(parse_config({"masters": [dead, leader.address]}))
    assert fetcher.load(["", dead, leader.address])[1] == leader.address
    with pytest.raises(requests.RequestException):
        fetcher.load([dead])


def test_the_fingerprint_changes_with_task_states_only(masters: tuple[FakeMaster, FakeMaster]) -> None:
    leader, _ = masters
    fetcher = StateFetcher(parse_config({"masters": [leader.address]}))
    before = fetcher.fingerprint(leader.address)
    assert fetcher.fingerprint(leader.address) == before
    leader.update(lambda doc: doc["frameworks"][0].setdefault("tasks", []).append({"state": "TASK_RUNNING"}))
    assert fetcher.fingerprint(leader.address) != before


def test_zk_urls_and_master_info() -> None:
    assert parse_zk("zk://user:pw@h1:2181,h2:2181/mesos") == ("h1:2181,h2:2181", "/mesos")
    info = {"address": {"ip": "10.0.0.5", "hostname": "m1", "port": 5050}, "ip": 1, "port": 1}
    assert master_address(info) == "10.0.0.5:5050"
    # Mesos < 0.24: only the packed, little-endian IPv4 address.
    assert master_address({"ip": int.from_bytes(bytes([10, 0, 0, 6]), "little"), "port": 5051}) == "10.0.0.6:5051"
    assert master_address({}) == ""
