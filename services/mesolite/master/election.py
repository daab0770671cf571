"""Leader election among masters through ZooKeeper (``--zk``), the way Apache Mesos does it (see core/zk.py), run by
the HA runner every mesolite service shares (:mod:`mesolite.core.leader_runner`).

Every master contends; the elected one recovers the registry and leads, the others follow the leader's znode so
they can redirect schedulers, agents and tools to it. Unlike the frameworks, a master keeps leading through a brief
ZooKeeper disconnection, as Mesos does: it steps down (at once) when its session is lost, or when it has been cut off
for longer than the session timeout, since a client alone never hears of its own expiry.
"""

from __future__ import annotations

import logging
from typing import Any

from mesolite.core.leader_runner import Fence, LeaderRunner
from mesolite.master.state import Master

log = logging.getLogger(__name__)


class MasterTerm:
    """One leadership term as the runner's leader-only service: the ``Master`` outlives the terms (the API and the
    followers' redirects use it), electing recovers the registry into it, demotion drops what it held."""

    def __init__(self, master: Master) -> None:
        self.master = master

    def start(self) -> None:
        self.master.become_leader()

    def stop(self) -> None:
        self.master.step_down()


class MasterElection:
    def __init__(self, master: Master, client: Any, group: str) -> None:
        self.master = master
        self.client = client
        self.runner: LeaderRunner[MasterTerm] = LeaderRunner(
            client,
            group,
            master.info_json(),
            self._term,
            close_client=False,  # the master's loops may still read the registry while stopping
            step_down_when_suspended=False,
            on_leader_change=self._leader_changed,
        )

    def _term(self, _fence: Fence) -> MasterTerm:
        return MasterTerm(self.master)

    def _leader_changed(self, info: dict[str, Any] | None) -> None:
        if info is not None and info.get("id") == self.master.id:
            # This master: it names itself once it has recovered the registry (``become_leader``); until then it has
            # no leader to redirect to, and must not redirect to itself.
            return
        log.info("leading master is now %s", (info or {}).get("pid", "unknown"))
        self.master.leader = info

    def start(self) -> None:
        self.runner.start()
        self.master.start()

    def stop(self) -> None:
        self.runner.stop()
        self.master.stop()
        self.client.stop()
        self.client.close()
