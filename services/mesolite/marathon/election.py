"""Which Marathon instance leads, and how the others find it.

Alone (no ``--zk``) an instance is its own leader. With ``--zk zk://hosts/marathon`` every instance contends in
ZooKeeper under ``/marathon/leader`` and keeps its state under ``/marathon/state``. Upstream Marathon contends with
Curator's LeaderLatch (``leader-curator``, znodes holding ``host:port``); mesolite reuses the Mesos-style contention of
:mod:`mesolite.core.zk` instead: each instance writes an ephemeral sequential ``json.info_NNNNNNNNNN`` znode holding
JSON (``id``, ``hostname``, ``port``, ``address{hostname,ip,port}``, ``version``), and the lowest sequence leads.
Nothing outside Marathon reads these znodes; clients ask any instance (``/v2/leader``, or any API call, which a
non-leader proxies).

Election and demotion are reported on ZooKeeper's event thread, which must not block; the switch itself (loading the
state, subscribing to the master, or stopping all of it) runs on this module's own thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Any, Protocol

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoNodeError

from mesolite.core import zk
from mesolite.core.store import SQLiteStore
from mesolite.marathon.service import MARATHON_VERSION, Marathon, MarathonConfig

log = logging.getLogger(__name__)


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
    marathon = Marathon(config, zk.ZooKeeperStore(client, f"{base}/state"))
    return ZooKeeperLeadership(marathon, client, f"{base}/leader")


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


class ZooKeeperLeadership:
    """Contends for leadership in ZooKeeper; leads (``Marathon.become_leader``) exactly while elected."""

    def __init__(self, marathon: Marathon, client: KazooClient, group: str) -> None:
        self.marathon = marathon
        self.client = client
        self.group = group
        config = marathon.config
        self.host_port = f"{config.hostname}:{config.http_port}"
        self.id = uuid.uuid4().hex
        self.contender = zk.LeaderContender(client, group, self.info, self._changed, self._demoted)
        self.detector = zk.LeaderDetector(client, group, lambda _info: None)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._abdicating = False
        self._suspended = False
        self._thread: threading.Thread | None = None

    def info(self) -> dict[str, Any]:
        config = self.marathon.config
        return {
            "id": self.id,
            "hostname": config.hostname,
            "port": config.http_port,
            "address": {"hostname": config.hostname, "ip": config.http_address, "port": config.http_port},
            "version": MARATHON_VERSION,
        }

    def leader(self) -> str | None:
        """``host:port`` of the leading instance as ZooKeeper says, None while nobody leads."""
        info = self.detector.leader
        if info is None:
            return None
        address = info.get("address") or {}
        host = address.get("hostname") or info.get("hostname")
        port = address.get("port") or info.get("port")
        return f"{host}:{port}" if host and port else None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.marathon.events.start()
        self.client.add_listener(self._connection_state)
        self.detector.start()
        self._thread = threading.Thread(target=self._follow, name="marathon-election", daemon=True)
        self._thread.start()
        self.contender.start()

    def stop(self) -> None:
        """Stop leading first, then withdraw (the standby is elected only once this one has stopped acting)."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.marathon.step_down()
        self.contender.stop()
        self.detector.stop()
        self.marathon.events.stop()
        self.client.stop()
        self.client.close()

    def abdicate(self) -> None:
        """``DELETE /v2/leader``: stop leading, then drop the znode so that another instance is elected; this one
        contends again at the back of the line. (Upstream Marathon exits instead and relies on its supervisor.)"""
        self._abdicating = True
        threading.Thread(target=self._abdicate, name="marathon-abdicate", daemon=True).start()

    def _abdicate(self) -> None:
        self.marathon.step_down()
        withdrawn = False
        try:
            for child in self.client.get_children(self.group):
                path = f"{self.group}/{child}"
                try:
                    data, _ = self.client.get(path)
                    if json.loads(data).get("id") == self.id:
                        self.client.delete(path)
                        withdrawn = True
                except (NoNodeError, ValueError):
                    continue
        except Exception as exc:  # noqa: BLE001 - ZooKeeper unreachable: a session expiry would demote us anyway
            log.warning("could not withdraw from the election: %s", exc)
        if not withdrawn:
            # Still holding the lead in ZooKeeper: resume it rather than leave every instance without a leader.
            self._abdicating = False
        self._wake.set()

    # ------------------------------------------------------------------ following the contender

    def _changed(self) -> None:
        self._wake.set()

    def _connection_state(self, state: str) -> None:
        """Cut off from ZooKeeper, this instance cannot know whether its session (and so its lead) still stands; the
        other instances may elect a new leader as soon as it expires. Like Curator's LeaderLatch, stop acting at
        once rather than when the expiry is noticed locally; lead again (state reloaded) if the session survived."""
        self._suspended = state != KazooState.CONNECTED
        self._wake.set()

    def _demoted(self) -> None:
        self._abdicating = False
        self._wake.set()

    def _follow(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stopped.is_set():
                return
            elected = self.contender.leading and not self._abdicating and not self._suspended
            try:
                if elected and not self.marathon.leading:
                    started = time.monotonic()
                    self.marathon.become_leader()
                    log.info("elected leader; state loaded in %.2fs", time.monotonic() - started)
                elif not elected and self.marathon.leading:
                    self.marathon.step_down()
            except Exception:  # noqa: BLE001 - e.g. ZooKeeper gone while loading: give up the term, retry later
                log.exception("leadership change failed")
                self.marathon.step_down()
                self._wake.set()
                self._stopped.wait(1.0)
