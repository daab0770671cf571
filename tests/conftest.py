from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster


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
