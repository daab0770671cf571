"""Finding the leading master and reading its state (upstream ``records/state/client/cli.go``, ``detect/``).

Masters come from config.json's ``masters`` (tried in order) or from ZooKeeper, where every Mesos master holds an
ephemeral ``json.info_<seq>`` znode with its MasterInfo and the lowest sequence leads. Either way the result is a
list "leader first, then the others", and the state is read from the first master that answers, following the
``leader`` it names when that is another master. Nothing here is fatal: an unreachable master or ZooKeeper is
retried by the caller's loop.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from mesolite.dns.config import DNSConfig, join_host_port, normalize_master
from mesolite.dns.generator import parse_upid

log = logging.getLogger(__name__)

INFO_PREFIX = "json.info_"


class StateFetcher:
    """GETs ``/master/state`` the way Mesos-DNS does (``User-Agent: Mesos-DNS``, https and basic auth if set)."""

    def __init__(self, config: DNSConfig) -> None:
        self.config = config
        self.scheme = "https" if config.MesosHTTPSOn else "http"
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "Mesos-DNS", "Content-Type": "application/json"})
        if config.MesosAuthentication == "basic":
            creds = config.MesosCredentials
            self.session.auth = (creds["Principal"], creds["Secret"])
        if config.MesosHTTPSOn:
            self.session.verify = config.CACertFile or True
            if config.CertFile:
                self.session.cert = (config.CertFile, config.KeyFile)

    def get(self, address: str, path: str, timeout: float | None = None) -> Any:
        response = self.session.get(
            f"{self.scheme}://{address}{path}", timeout=timeout or self.config.StateTimeoutSeconds
        )
        response.raise_for_status()
        return response.json()

    def load(self, masters: list[str]) -> tuple[dict[str, Any], str]:
        """(state, address of the master it came from); raises the last error when no master answered."""
        last: Exception = RuntimeError("no masters given to fetch state from")
        tried: set[str] = set()
        for master in masters:
            if not master or master in tried:
                continue
            tried.add(master)
            try:
                return self._load_following(master)
            except (requests.RequestException, ValueError) as exc:
                log.warning("failed to fetch state from %s: %s", master, exc)
                last = exc
        raise last

    def _load_following(self, address: str) -> tuple[dict[str, Any], str]:
        state = self.get(address, "/master/state")
        if not isinstance(state, dict) or not state.get("leader"):
            raise ValueError("fetched state does not contain leader information")
        leader = parse_upid(state["leader"])
        if leader is None:
            raise ValueError(f"invalid leader address: {state['leader']}")
        leader_address = normalize_master(join_host_port(*leader))
        # Upstream re-asks the leader's IP with the original port; asking the leader's own address also works when
        # several masters share a host.
        if leader_address != normalize_master(address):
            log.info("master changed to %s", leader_address)
            state = self.get(leader_address, "/master/state")
            if not isinstance(state, dict):
                raise ValueError("state is not a JSON object")
            return state, leader_address
        return state, address

    def fingerprint(self, address: str) -> str:
        """A digest of what records depend on, from the cheap ``/master/state-summary``: agents, frameworks and
        their per-state task counts. Offers and resource usage are left out: they change without any record
        changing."""
        summary = self.get(address, "/master/state-summary", timeout=min(5.0, self.config.StateTimeoutSeconds))
        agents = sorted(
            (str(s.get("id")), str(s.get("pid")), str(s.get("hostname")), _counts(s)) for s in summary.get("slaves", [])
        )
        frameworks = sorted(
            (str(f.get("id")), str(f.get("name")), str(f.get("hostname")), str(f.get("pid")), _counts(f))
            for f in summary.get("frameworks", [])
        )
        return hashlib.sha1(json.dumps([agents, frameworks]).encode()).hexdigest()  # noqa: S324 - change detection


def _counts(entry: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(entry.items()) if k.startswith("TASK_"))


class MasterDetector:
    """The current masters list, leader first; ``on_change`` is called whenever it changes."""

    def __init__(self, config: DNSConfig, on_change: Callable[[], None]) -> None:
        self.config = config
        self.on_change = on_change
        self._lock = threading.Lock()
        self._masters = list(config.Masters)
        self._zk: Any = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def masters(self) -> list[str]:
        with self._lock:
            return list(self._masters)

    def start(self) -> None:
        if self.config.Zk:
            self._thread = threading.Thread(target=self._connect_loop, name="dns-zk", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        client = self._zk
        if client is not None:
            try:
                client.stop()
                client.close()
            except Exception:  # noqa: BLE001 - shutting down
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _connect_loop(self) -> None:
        """Connect to ZooKeeper until it answers (an unreachable ZooKeeper at boot is retried, never fatal)."""
        from kazoo.client import KazooClient
        from kazoo.recipe.watchers import ChildrenWatch

        hosts, path = parse_zk(self.config.Zk)
        while not self._stopped.is_set():
            client = KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": -1, "max_delay": 2})
            try:
                client.start(timeout=10)
            except Exception as exc:  # noqa: BLE001 - kazoo raises timeouts and connection errors
                log.warning("ZooKeeper %s unreachable (%s); retrying", hosts, exc)
                client.close()
                self._stopped.wait(1.0)
                continue
            self._zk = client
            if self._stopped.is_set():
                client.stop()
                return
            # The group node may not exist yet (no master has started): a watch on a missing node is re-armed.
            client.ensure_path(path)
            ChildrenWatch(client, path, functools.partial(self._children, client, path))
            return

    def _children(self, client: Any, path: str, children: list[str]) -> bool:
        if self._stopped.is_set():
            return False
        members = sorted((c for c in children if c.startswith(INFO_PREFIX)), key=lambda c: int(c[len(INFO_PREFIX) :]))
        addresses: list[str] = []
        for member in members:
            try:
                data, _ = client.get(f"{path}/{member}")
                address = master_address(json.loads(data))
            except Exception as exc:  # noqa: BLE001 - the znode may vanish between list and get
                log.info("skipping %s: %s", member, exc)
                continue
            if address and address not in addresses:
                addresses.append(address)
        # Leader first (lowest sequence), then the others; no leader → an empty leader slot, as upstream.
        masters = addresses if addresses else [""]
        with self._lock:
            changed = masters != self._masters
            self._masters = masters
        if changed:
            log.info("masters from ZooKeeper: %s", masters)
            self.on_change()
        return True


def parse_zk(url: str) -> tuple[str, str]:
    """``zk://[user:pass@]h1:2181,h2:2181/mesos`` → (``h1:2181,h2:2181``, ``/mesos``)."""
    rest = url[len("zk://") :]
    hosts, _, path = rest.partition("/")
    return hosts.rsplit("@", 1)[-1], "/" + path.rstrip("/")


def master_address(info: dict[str, Any]) -> str:
    """``ip:port`` from a MasterInfo: ``address`` (Mesos >= 0.24) or the packed little-endian ``ip`` before it."""
    address = info.get("address")
    if isinstance(address, dict) and address.get("port"):
        host = address.get("ip") or address.get("hostname") or ""
        return join_host_port(str(host), int(address["port"]))
    if isinstance(info.get("ip"), int) and info.get("port"):
        ip = ".".join(str(b) for b in int(info["ip"]).to_bytes(4, "little"))
        return join_host_port(ip, int(info["port"]))
    return ""
