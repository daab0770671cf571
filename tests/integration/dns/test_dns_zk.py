"""Leader detection from ZooKeeper: ``mesolite dns`` with ``zk`` follows real ``mesolite master --zk`` elections
through a real ZooKeeper (Debian's package), and survives ZooKeeper being down when it starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster import Cluster, wait_until
from tests.integration.dns.conftest import DNSProcess
from tests.zookeeper import ZooKeeper

pytestmark = pytest.mark.slow


def test_follows_the_elected_master(cluster: Cluster, tmp_path: Path, start_dns: Callable[..., DNSProcess]) -> None:
    zookeeper = ZooKeeper(tmp_path / "zookeeper")
    try:
        # ZooKeeper is not running yet: the detector keeps retrying and in-domain names get SERVFAIL meanwhile.
        dns = start_dns({"zk": zookeeper.url("/mesos"), "refreshSeconds": 60}, "--workers", "1", ready=False)
        assert dns.dig("leader.mesos").status == "SERVFAIL"
        zookeeper.start()
        first = cluster.start_master("--zk", zookeeper.url("/mesos"), name="master1")
        dns.wait_for("leader.mesos", timeout=30)
        assert dns.dig("_leader._tcp.mesos", "SRV").values() == {f"0 1 {first.port} leader.mesos."}
        assert dns.dig("master0.mesos").values() == {"127.0.0.1"}
        assert dns.get("/v1/services/_leader._tcp.mesos").json()[0]["port"] == str(first.port)

        second = cluster.start_master("--zk", zookeeper.url("/mesos"), name="master2")
        first.stop()
        expected = {f"0 1 {second.port} leader.mesos."}
        dns.wait_for("leader.mesos", timeout=30)
        wait_until(
            lambda: dns.dig("_leader._tcp.mesos", "SRV").values() == expected,
            timeout=40,
            interval=0.2,
            what="Mesos-DNS to follow the new leader",
        )
    finally:
        cluster.stop()
        zookeeper.stop()
