"""Leader election among masters through ZooKeeper (``--zk``), the way Apache Mesos does it (see core/zk.py).

Every master contends; the elected one recovers the registry and leads, the others follow the leader's znode so
they can redirect schedulers, agents and tools to it. Losing the ZooKeeper session demotes a leader at once.
"""

from __future__ import annotations

import logging
from typing import Any

from mesolite.core import zk
from mesolite.master.state import Master

log = logging.getLogger(__name__)


class MasterElection:
    def __init__(self, master: Master, client: Any, group: str) -> None:
        self.master = master
        self.client = client
        self.contender = zk.LeaderContender(client, group, master.info_json, master.become_leader, master.step_down)
        self.detector = zk.LeaderDetector(client, group, self._leader_changed)

    def _leader_changed(self, info: dict[str, Any] | None) -> None:
        if info is None or info.get("id") != self.master.id:
            log.info("leading master is now %s", (info or {}).get("pid", "unknown"))
        self.master.leader = info

    def start(self) -> None:
        self.detector.start()
        self.contender.start()
        self.master.start()

    def stop(self) -> None:
        self.contender.stop()
        self.detector.stop()
        self.master.stop()
        self.client.stop()
        self.client.close()
