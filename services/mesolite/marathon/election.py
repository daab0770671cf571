"""Which Marathon instance leads, and how the others find it.

Alone (no ``--zk``) an instance is its own leader. With ``--zk zk://hosts/marathon`` every instance contends in
ZooKeeper under ``/marathon/leader`` and keeps its state under ``/marathon/state``, through the HA runner every
mesolite service shares (:mod:`mesolite.core.leader_runner`). Upstream Marathon contends with Curator's LeaderLatch
(``leader-curator``, znodes holding ``host:port``); mesolite uses the Mesos-style contention instead: each instance
writes an ephemeral sequential ``json.info_NNNNNNNNNN`` znode holding JSON (``id``, ``hostname``, ``port``,
``address{hostname,ip,port}``, ``version``), and the lowest sequence leads. Nothing outside Marathon reads these
znodes; clients ask any instance (``/v2/leader``, or any API call, which a non-leader proxies).

The ``Marathon`` object outlives the terms (the API holds it); a term is ``become_leader`` … ``step_down``, which the
runner carries out on its own thread: on election, on demotion, at once when the ZooKeeper connection is SUSPENDED
(and again, state reloaded, if the session survived), and on abdication.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any, Protocol

from kazoo.client import KazooClient

from mesolite.core import zk
from mesolite.core.leader_runner import Fence, FencedStore, LeaderRunner, LeadingFence
from mesolite.core.store import SQLiteStore
from mesolite.marathon.errors import NotLeading
from mesolite.marathon.service import MARATHON_VERSION, Marathon, MarathonConfig

NOT_LEADING = "Marathon is not the leader; retry against the current leader"


class Leadership(Protocol):
    """What the API needs to know about the election (the service object the runner starts and stops)."""

    marathon: Marathon

    @property
    def host_port(self) -> str: ...

    def leader(self) -> str | None: ...

    def abdicate(self) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def build_leadership(config: MarathonConfig) -> SoleLeadership | ZooKeeperLeadership:
    """The service and its election: state in ``--work_dir`` alone, or in ZooKeeper under ``<zk path>/state``."""
    if not config.zk:
        if not config.work_dir:
            raise ValueError("either --zk or --work_dir is needed to keep Marathon's state")
        os.makedirs(config.work_dir, exist_ok=True)
        return SoleLeadership(Marathon(config, SQLiteStore(os.path.join(config.work_dir, "marathon.db"))))
    hosts, base = zk.parse_zk_url(config.zk)
    client = zk.connect(hosts, timeout=config.zk_timeout, session_timeout=config.zk_session_timeout)
    return ZooKeeperLeadership(config, client, base)


class SoleLeadership:
    """No ZooKeeper: this instance leads from start to stop. Abdicating restarts the leadership in place (state
    reloaded, framework re-subscribed): there is nobody to hand over to."""

    def __init__(self, marathon: Marathon) -> None:
        self.marathon = marathon
        self.host_port = f"{marathon.config.hostname}:{marathon.config.http_port}"

    def leader(self) -> str | None:
        return self.host_port

    def abdicate(self) -> None:
        def again() -> None:
            self.marathon.step_down()
            self.marathon.become_leader()

        threading.Thread(target=again, name="marathon-abdicate", daemon=True).start()

    def start(self) -> None:
        self.marathon.start()

    def stop(self) -> None:
        self.marathon.stop()


class LeaderTerm:
    """One leadership term, as the runner's leader-only service: the state is reloaded from ZooKeeper when it starts
    and forgotten when it stops."""

    def __init__(self, marathon: Marathon) -> None:
        self.marathon = marathon

    def start(self) -> None:
        self.marathon.become_leader()

    def stop(self) -> None:
        self.marathon.step_down()


class ZooKeeperLeadership:
    """Contends for leadership in ZooKeeper; leads (``Marathon.become_leader``) exactly while elected.

    The state's writes are fenced: once this instance has lost the lead (before its term has even stopped), a write
    is refused with ``NotLeading`` (the 503 an API call gets from an instance that does not lead), so a late write can
    never overwrite what the new leader wrote."""

    def __init__(self, config: MarathonConfig, client: KazooClient, base: str) -> None:
        self.host_port = f"{config.hostname}:{config.http_port}"
        self.id = uuid.uuid4().hex
        self.runner: LeaderRunner[LeaderTerm] = LeaderRunner(
            client, f"{base}/leader", self._info(config), self._term, retry_delay=1.0
        )
        fence = LeadingFence(self.runner, lambda: NotLeading(NOT_LEADING))
        self.marathon = Marathon(config, FencedStore(zk.ZooKeeperStore(client, f"{base}/state"), fence))

    def _info(self, config: MarathonConfig) -> dict[str, Any]:
        return {
            "id": self.id,
            "hostname": config.hostname,
            "port": config.http_port,
            "address": {"hostname": config.hostname, "ip": config.http_address, "port": config.http_port},
            "version": MARATHON_VERSION,
        }

    def _term(self, _fence: Fence) -> LeaderTerm:
        return LeaderTerm(self.marathon)

    def leader(self) -> str | None:
        """``host:port`` of the leading instance as ZooKeeper says, None while nobody leads."""
        return zk.host_port(self.runner.leader)

    def start(self) -> None:
        self.marathon.events.start()
        self.runner.start()

    def stop(self) -> None:
        """Stop leading first, then withdraw (the standby is elected only once this one has stopped acting)."""
        self.runner.stop()
        self.marathon.step_down()
        self.marathon.events.stop()

    def abdicate(self) -> None:
        """``DELETE /v2/leader``: stop leading, then drop the znode so that another instance is elected; this one
        contends again at the back of the line. (Upstream Marathon exits instead and relies on its supervisor.)"""
        self.runner.abdicate()
