"""Chronos with ``--zk``: several instances, one leader, everything it knows in ZooKeeper.

Layout under the ZooKeeper path (``zk://hosts/chronos`` → ``/chronos``; upstream's ``--zk_path /chronos/state`` gives
``/chronos/state/...`` as Chronos did): ``candidate/`` holds one ephemeral sequential ``json.info_`` znode per
instance (the lowest leads; its JSON names the leader's ``host:port``), ``state/`` the store: jobs, queued and
launched runs, dependency progress, run history and the framework id (``state.py`` lists the keys).

Upstream Chronos kept running tasks and dependency counters in memory and lost them on failover (duplicate or lost
runs, #411, #811); here the elected instance rebuilds exactly what the last leader had persisted, re-subscribes with
the same framework id, and reconciles the runs it inherits.
"""

from __future__ import annotations

import uuid

from mesolite.chronos.config import ChronosConfig
from mesolite.chronos.scheduler import ChronosService
from mesolite.chronos.state import ChronosState
from mesolite.core import zk
from mesolite.core.leader_runner import Fence, FencedStore, LeaderRunner


def zk_paths(url: str) -> tuple[str, str, str]:
    """(hosts, election group, store base) for a ``zk://`` URL."""
    hosts, base = zk.parse_zk_url(url)
    return hosts, f"{base}/candidate", f"{base}/state"


def leader_runner(config: ChronosConfig) -> LeaderRunner[ChronosService]:
    """Connects to ZooKeeper now (an unreachable ZooKeeper fails the start, as in Chronos); elects on start()."""
    assert config.zk
    hosts, group, base = zk_paths(config.zk)
    client = zk.connect(hosts, session_timeout=config.zk_session_timeout)
    store = zk.ZooKeeperStore(client, base)

    def build(fence: Fence) -> ChronosService:
        # Read only now: until this moment the previous leader was still changing what is stored.
        state = ChronosState(FencedStore(store, fence), config.state_config())
        return ChronosService(state, config.framework_config(), config.notifier())

    return LeaderRunner(client, group, config.leader_info(uuid.uuid4().hex), build)
