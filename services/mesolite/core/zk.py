"""ZooKeeper for high availability, laid out exactly as Apache Mesos lays it out, so unmodified tools follow it.

Each contender writes an ephemeral, sequential ``json.info_NNNNNNNNNN`` znode holding its JSON MasterInfo under the
group path (``zk://hosts/mesos`` → ``/mesos``); the lowest sequence leads (``src/zookeeper/detector.cpp``). pymesos
and Mesos-DNS detect the leader by reading those znodes. The registry lives beside them under ``registry/``, a name
that sorts after ``json.info_`` (pymesos takes the lexicographically smallest child).

Sessions: a contender whose session expires has lost its znode and therefore its leadership; it is told at once
(``on_demoted``) and contends again with a new znode when the session is re-established.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.recipe.watchers import ChildrenWatch

log = logging.getLogger(__name__)

INFO_PREFIX = "json.info_"
# ZooKeeper refuses znodes over 1 MB; large values are stored as numbered chunk children.
CHUNK_BYTES = 900 * 1024


def parse_zk_url(url: str) -> tuple[str, str]:
    """``zk://h1:2181,h2:2181/mesos`` → (``"h1:2181,h2:2181"``, ``"/mesos"``)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("zk", "zoo") or not parsed.netloc or not parsed.path or parsed.path == "/":
        raise ValueError(f"invalid ZooKeeper URL '{url}' (expected zk://host:port[,host:port...]/path)")
    hosts = parsed.netloc.rsplit("@", 1)[-1]
    return hosts, parsed.path.rstrip("/")


def connect(hosts: str, timeout: float = 10.0, session_timeout: float = 10.0) -> KazooClient:
    """A started client; retries forever in the background after the first connection, as Mesos does."""
    client = KazooClient(hosts=hosts, timeout=session_timeout, connection_retry={"max_tries": -1, "max_delay": 2})
    client.start(timeout=timeout)
    return client


def host_port(info: dict[str, Any] | None) -> str | None:
    """``host:port`` of a group member from its ``json.info_`` JSON: ``address`` as Mesos writes it, else the
    top-level ``hostname``/``port`` fields; None when the JSON names neither."""
    if not info:
        return None
    address = info.get("address") or {}
    host = address.get("hostname") or address.get("ip") or info.get("hostname")
    port = address.get("port") or info.get("port")
    return f"{host}:{port}" if host and port else None


def leader_of(children: list[str]) -> str | None:
    """The leading member's znode name: the lowest sequence number among ``json.info_`` children."""
    members = [c for c in children if c.startswith(INFO_PREFIX)]
    return min(members, key=lambda name: int(name[len(INFO_PREFIX) :])) if members else None


class ZooKeeperStore:
    """The registry ``Store`` on ZooKeeper: one znode per key under ``base``; values JSON, chunked past 1 MB."""

    def __init__(self, client: KazooClient, base: str) -> None:
        self._client = client
        self._base = base.rstrip("/")
        client.ensure_path(self._base)

    def _path(self, key: str) -> str:
        return f"{self._base}/{key.strip('/')}"

    def get(self, key: str) -> Any | None:
        try:
            data, _ = self._client.get(self._path(key))
        except NoNodeError:
            return None
        return self._decode(self._path(key), data)

    def _decode(self, path: str, data: bytes) -> Any | None:
        if data.startswith(b"\x00chunks:"):
            count = int(data[len(b"\x00chunks:") :])
            data = b"".join(self._client.get(f"{path}/_chunk_{i:06d}")[0] for i in range(count))
        return json.loads(data) if data else None

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        data = json.dumps(value, separators=(",", ":")).encode()
        if len(data) <= CHUNK_BYTES:
            self._set(path, data)
            return
        chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
        for index, chunk in enumerate(chunks):
            self._set(f"{path}/_chunk_{index:06d}", chunk)
        self._set(path, b"\x00chunks:" + str(len(chunks)).encode())

    def _set(self, path: str, data: bytes) -> None:
        try:
            self._client.set(path, data)
        except NoNodeError:
            try:
                self._client.create(path, data, makepath=True)
            except NodeExistsError:
                self._client.set(path, data)

    def delete(self, key: str) -> None:
        try:
            self._client.delete(self._path(key), recursive=True)
        except NoNodeError:
            pass

    def list(self, prefix: str) -> dict[str, Any]:
        """Keys under ``prefix`` (a directory-like prefix such as ``agents/``), at any depth."""
        directory = prefix.rstrip("/")
        found: dict[str, Any] = {}
        self._walk(directory, found)
        return {key: value for key, value in sorted(found.items()) if key.startswith(prefix)}

    def _walk(self, key: str, found: dict[str, Any]) -> None:
        path = self._path(key) if key else self._base
        try:
            children = self._client.get_children(path)
        except NoNodeError:
            return
        for child in children:
            if child.startswith("_chunk_"):
                continue
            child_key = f"{key}/{child}" if key else child
            data, _ = self._client.get(self._path(child_key))
            if data:
                found[child_key] = self._decode(self._path(child_key), data)
            self._walk(child_key, found)


class LeaderDetector:
    """Follows the group's leader: calls ``on_change(info | None)`` whenever the leading znode or its data changes."""

    def __init__(self, client: KazooClient, group: str, on_change: Callable[[dict[str, Any] | None], None]) -> None:
        self._client = client
        self._group = group
        self._on_change = on_change
        self._leader: tuple[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        self._client.ensure_path(self._group)
        ChildrenWatch(self._client, self._group, self._children_changed)

    def stop(self) -> None:
        self._stopped = True

    @property
    def leader(self) -> dict[str, Any] | None:
        with self._lock:
            return self._leader[1] if self._leader else None

    def _children_changed(self, children: list[str]) -> bool:
        if self._stopped:
            return False
        name = leader_of(children)
        info: dict[str, Any] | None = None
        if name is not None:
            try:
                data, _ = self._client.get(f"{self._group}/{name}")
                info = json.loads(data)
            except (NoNodeError, ValueError):
                info = None
        with self._lock:
            changed = (self._leader[0] if self._leader else None) != (name if info else None)
            self._leader = (name, info) if (name and info) else None
        if changed:
            self._on_change(info)
        return True


class LeaderContender:
    """Contends for leadership with a JSON MasterInfo-style znode; calls back on election and on losing it."""

    def __init__(
        self,
        client: KazooClient,
        group: str,
        info: Callable[[], dict[str, Any]],
        on_elected: Callable[[], None],
        on_demoted: Callable[[], None],
        session_timeout: float | None = None,
    ) -> None:
        self._client = client
        self._session_timeout = session_timeout or client._session_timeout / 1000.0
        self._suspended_timer: threading.Timer | None = None
        self._expired_locally = False
        self._stale_znode: str | None = None
        self._watching = False
        self._group = group
        self._info = info
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._znode: str | None = None
        self._leading = False
        self._lock = threading.RLock()
        self._stopped = False
        self._recontend = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return self._leading

    def start(self) -> None:
        self._client.add_listener(self._session_state)
        self._thread = threading.Thread(target=self._contend_loop, name="zk-contender", daemon=True)
        self._thread.start()
        self._recontend.set()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._recontend.set()
            znode, self._znode = self._znode, None
        if znode:
            try:
                self._client.delete(znode)
            except Exception:  # noqa: BLE001 - the session may already be gone; the znode then is too
                pass
        self._demote()

    def withdraw(self) -> bool:
        """Delete this contender's znode so that the next in line is elected (abdication). The children watch then
        sees it gone, demotes, and contends again with a new znode at the back of the line. False if the znode could
        not be deleted (ZooKeeper unreachable): this contender still holds its place."""
        with self._lock:
            znode = self._znode
        if znode is None:
            return False
        try:
            self._client.delete(znode)
        except NoNodeError:
            pass  # gone with the session already: the watch demotes us the same way
        except Exception as exc:  # noqa: BLE001 - e.g. not connected: report it, the caller keeps leading
            log.warning("could not withdraw from the election: %s", exc)
            return False
        return True

    def _session_state(self, state: str) -> None:
        # Runs on kazoo's event thread, which must not block: hand the work to the contender thread.
        if state == KazooState.LOST:
            self._cancel_timer()
            with self._lock:
                self._znode = None
            self._demote()
        elif state == KazooState.SUSPENDED:
            # The server decides when a session expires, and a client cut off from every server never hears it.
            # Like Mesos' group, treat a disconnection longer than the session timeout as expiry: by then another
            # contender may lead, so this one must not.
            self._cancel_timer()
            self._suspended_timer = threading.Timer(self._session_timeout, self._suspended_too_long)
            self._suspended_timer.daemon = True
            self._suspended_timer.start()
        elif state == KazooState.CONNECTED:
            self._cancel_timer()
            self._recontend.set()

    def _cancel_timer(self) -> None:
        if self._suspended_timer is not None:
            self._suspended_timer.cancel()
            self._suspended_timer = None

    def _suspended_too_long(self) -> None:
        with self._lock:
            stale, self._znode = self._znode, None
            self._expired_locally = stale is not None
            self._stale_znode = stale
        self._demote()

    def _contend_loop(self) -> None:
        while True:
            self._recontend.wait()
            self._recontend.clear()
            with self._lock:
                if self._stopped:
                    return
                if self._znode is not None:
                    continue
                stale = self._stale_znode if self._expired_locally else None
            try:
                if stale is not None:
                    # The session survived our local timeout: drop the old znode so we queue up afresh.
                    self._client.delete(stale)
                    with self._lock:
                        self._expired_locally = False
                        self._stale_znode = None
            except NoNodeError:
                with self._lock:
                    self._expired_locally = False
                    self._stale_znode = None
            except Exception as exc:  # noqa: BLE001 - retried on the next CONNECTED event
                log.warning("could not remove the stale contender znode: %s", exc)
                continue
            try:
                self._client.ensure_path(self._group)
                znode = self._client.create(
                    f"{self._group}/{INFO_PREFIX}",
                    json.dumps(self._info()).encode(),
                    ephemeral=True,
                    sequence=True,
                )
            except Exception as exc:  # noqa: BLE001 - not connected yet: the CONNECTED event retries
                log.warning("could not create the contender znode: %s", exc)
                continue
            with self._lock:
                self._znode = znode
                first = not self._watching
                self._watching = True
            log.info("contending for leadership as %s", znode)
            if first:
                ChildrenWatch(self._client, self._group, self._children_changed)
            else:
                self._children_changed(self._client.get_children(self._group))

    def _children_changed(self, children: list[str]) -> bool:
        with self._lock:
            znode = self._znode
            if self._stopped:
                return False
            if znode is None:
                return True
            mine = znode.rsplit("/", 1)[-1]
            if mine not in children:
                # Our znode vanished (session expired under us): leadership is gone.
                self._znode = None
                self._recontend.set()
                elected = None
            else:
                elected = leader_of(children) == mine
        if elected is None:
            self._demote()
            return True
        if elected:
            self._elect()
        return True

    def _elect(self) -> None:
        with self._lock:
            if self._leading:
                return
            self._leading = True
        log.info("elected leader")
        self._on_elected()

    def _demote(self) -> None:
        with self._lock:
            if not self._leading:
                return
            self._leading = False
        log.warning("lost leadership")
        self._on_demoted()
