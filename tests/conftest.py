from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.zookeeper import ZooKeeper


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An empty cluster: tests start the master and agents they need, all stopped afterwards."""
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def running(cluster: Cluster) -> Cluster:
    """A master with one agent."""
    cluster.start_master()
    cluster.start_agent()
    return cluster


@pytest.fixture
def zookeeper(tmp_path: Path) -> Iterator[ZooKeeper]:
    """A real single-node ZooKeeper on a free port."""
    server = ZooKeeper(tmp_path / "zookeeper").start()
    try:
        yield server
    finally:
        server.stop()
