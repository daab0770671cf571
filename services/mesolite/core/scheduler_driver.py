"""The framework driver of mesolite's own frameworks (Marathon, Chronos): keeps one subscription to the master alive for
as long as the framework runs, under the same framework id.

``SchedulerClient`` is one subscription; a long-running framework also needs what a Mesos scheduler driver does around
it: remember the framework id across restarts and failovers (in the framework's ``Store``, so a restarted or newly
elected instance comes back as the same framework and the master hands back its running tasks instead of killing
them), re-subscribe with capped back-off when the stream breaks, the master fails over (``zk://`` masters are looked
up afresh on every subscription, a 307 from a non-leading master is followed) or the master goes quiet for several
heartbeats, and start afresh with a new id only when the master says the framework was removed.

Events are handed to the framework on one dispatcher thread, in order, so a handler may make calls back to the master
(ACCEPT, ACKNOWLEDGE) without stalling the reader of the stream. Calls made while no subscription is open fail fast
with ``NotConnected``, and calls the master refuses or that do not reach it with ``CallFailed``, so callers keep their
work and retry after the next SUBSCRIBED.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from mesolite.core.scheduler_client import SchedulerClient, SchedulerError
from mesolite.core.store import Store

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
FRAMEWORK_ID_KEY = "framework/id"
MISSED_HEARTBEATS = 5
CALL_ERRORS = (SchedulerError, requests.RequestException, OSError)


class CallFailed(RuntimeError):
    """A call did not reach the master or was refused; callers keep their work and try again later."""


class NotConnected(CallFailed):
    """No subscription right now; the call can be retried after the next SUBSCRIBED."""


class SchedulerDriver:
    """Subscribe, re-subscribe on failure with the stored framework id, dispatch events on one thread.

    ``on_subscribed(framework_id)`` runs on the dispatcher before the SUBSCRIBED event itself reaches ``on_event``,
    after the id has been stored; the driver is connected by then, so it may reconcile at once.
    """

    def __init__(
        self,
        master: str,
        framework_info: dict[str, Any],
        store: Store,
        on_event: EventHandler,
        on_subscribed: Callable[[str], None] | None = None,
        *,
        backoff: tuple[float, float] = (0.2, 5.0),
        missed_heartbeats: int = MISSED_HEARTBEATS,
    ) -> None:
        """``master``: ``host:port``, ``http://host:port`` or ``zk://hosts/path``; ``store`` keeps the framework id
        under ``framework/id``."""
        self.master = master
        self.framework_info = {k: v for k, v in framework_info.items() if k != "id"}
        self.store = store
        self._on_event = on_event
        self._on_subscribed = on_subscribed
        self._backoff = backoff
        self._missed_heartbeats = missed_heartbeats
        self._heartbeat_interval = 15.0
        self._client: SchedulerClient | None = None
        self._events: queue.Queue[tuple[int, dict[str, Any]] | None] = queue.Queue()
        self._generation = 0
        self._last_event = time.monotonic()
        self._removed = False
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def framework_id(self) -> str | None:
        value = self.store.get(FRAMEWORK_ID_KEY)
        return value if isinstance(value, str) else None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        for target, name in ((self._connection_loop, "driver-connection"), (self._dispatch_loop, "driver-dispatch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Drop the stream without tearing the framework down: the master keeps its tasks for failover_timeout."""
        self._stop.set()
        self._connected.clear()
        self._events.put(None)
        client = self._client
        if client is not None:
            client.close()
        for thread in self._threads:
            thread.join(timeout=10)

    # ----------------------------------------------------------------------------------------------- calls

    def _require(self) -> SchedulerClient:
        client = self._client
        if client is None or not self._connected.is_set():
            raise NotConnected("not subscribed to the master")
        return client

    def _call(self, action: Callable[[SchedulerClient], Any], what: str) -> None:
        """One call on the current subscription; a refused call or a broken connection is a CallFailed."""
        client = self._require()
        try:
            action(client)
        except CALL_ERRORS as exc:
            raise CallFailed(f"{what}: {exc}") from exc

    def call(self, call_type: str, body: dict[str, Any] | None = None, **extra: Any) -> None:
        self._call(lambda client: client.call(call_type, body, **extra), call_type)

    def accept(self, offer_ids: list[str], operations: list[dict[str, Any]], refuse_seconds: float | None) -> None:
        self._call(lambda client: client.accept(offer_ids, operations, refuse_seconds), "ACCEPT")

    def launch(self, offer: dict[str, Any], tasks: list[dict[str, Any]], refuse_seconds: float | None = None) -> None:
        self._call(lambda client: client.launch(offer, tasks, refuse_seconds), "ACCEPT")

    def decline(self, offer_ids: list[str], refuse_seconds: float | None = None) -> None:
        self._call(lambda client: client.decline(offer_ids, refuse_seconds), "DECLINE")

    def acknowledge(self, status: dict[str, Any]) -> None:
        self._call(lambda client: client.acknowledge(status), "ACKNOWLEDGE")

    def kill(self, task_id: str, agent_id: str | None = None) -> None:
        self._call(lambda client: client.kill(task_id, agent_id), "KILL")

    def reconcile(self, tasks: list[tuple[str, str | None]] | None = None) -> None:
        self._call(lambda client: client.reconcile(tasks), "RECONCILE")

    def revive(self) -> None:
        self.call("REVIVE")

    def suppress(self) -> None:
        self.call("SUPPRESS")

    # ----------------------------------------------------------------------------------------- connection

    def _connection_loop(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            outcome = self._subscribe_once()
            if outcome == "removed":
                log.warning("the master removed framework %s; subscribing as a new framework", self.framework_id)
                self._forget_framework_id()
                self._stop.wait(self._backoff[0])
                continue
            if outcome == "failed":
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            if not self._stop.is_set():
                log.warning("lost the subscription to %s; re-subscribing", self.master)
                self._stop.wait(self._backoff[0])

    def _subscribe_once(self) -> str:
        """One subscription, watched until it ends: "ended" after it was up, "failed" or "removed" if it never was."""
        self._generation += 1
        info = dict(self.framework_info)
        framework_id = self.framework_id
        if framework_id:
            info["id"] = {"value": framework_id}
        try:
            client = SchedulerClient(self.master, info, on_event=self._receiver(self._generation))
        except Exception as exc:  # noqa: BLE001 - e.g. ZooKeeper (zk:// master) unreachable: keep trying
            log.info("cannot locate the master via %s (%s); retrying", self.master, exc)
            return "failed"
        self._removed = False
        # Current before SUBSCRIBED arrives: the first offers follow it on the stream at once, often before
        # subscribe() returns, and must be answerable (an offer left unanswered holds its resources).
        self._client = client
        try:
            if self._stop.is_set():
                return "failed"
            try:
                subscribed_as = client.subscribe(timeout=10.0)
            except Exception as exc:  # noqa: BLE001 - refused, or the master is down or restarting: keep trying
                removed = self._removed or (isinstance(exc, SchedulerError) and "removed" in exc.message.lower())
                log.info("subscribing to %s failed: %s", self.master, exc)
                return "removed" if removed and not self._stop.is_set() else "failed"
            log.info("subscribed to %s as framework %s", self.master, subscribed_as)
            self._watch(client)
            return "ended"
        finally:
            self._connected.clear()
            self._client = None
            client.close()

    def _receiver(self, generation: int) -> EventHandler:
        """On the stream's reader thread: note liveness and connection state at once, queue the rest in order."""

        def receive(event: dict[str, Any]) -> None:
            if generation != self._generation:
                return  # from a stream already abandoned
            self._last_event = time.monotonic()
            kind = event.get("type")
            if kind == "SUBSCRIBED":
                interval = event["subscribed"].get("heartbeat_interval_seconds")
                if isinstance(interval, int | float) and interval > 0:
                    self._heartbeat_interval = float(interval)
                self._connected.set()
            elif kind == "ERROR":
                message = str((event.get("error") or {}).get("message", ""))
                log.warning("master error: %s", message)
                if "removed" in message.lower():
                    self._removed = True
            self._events.put((generation, event))

        return receive

    def _watch(self, client: SchedulerClient) -> None:
        """Return when the stream ends, the master goes quiet for several heartbeats (a half-open connection), or
        the driver stops."""
        self._last_event = time.monotonic()
        while not self._stop.is_set():
            if client.closed.wait(0.5):
                return
            silence = time.monotonic() - self._last_event
            if silence > self._missed_heartbeats * self._heartbeat_interval:
                log.warning("no event from %s for %.0fs; reconnecting", self.master, silence)
                return

    def _forget_framework_id(self) -> None:
        """The master removed this framework (torn down, or its failover timeout passed): start afresh."""
        try:
            self.store.delete(FRAMEWORK_ID_KEY)
        except Exception:  # e.g. no longer the leader: the next subscription tries again
            log.exception("could not forget the framework id")

    # ------------------------------------------------------------------------------------------- dispatch

    def _dispatch_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            generation, event = item
            if generation != self._generation:
                continue  # from a stream already abandoned
            kind = event.get("type")
            try:
                if kind == "SUBSCRIBED" and not self._subscribed(event, generation):
                    continue
                self._on_event(event)
            except Exception:  # one bad event must not stop the framework
                log.exception("event handler failed for %s", kind)

    def _subscribed(self, event: dict[str, Any], generation: int) -> bool:
        """Store the framework id before anything is launched under it (a restarted or newly elected instance must
        come back as this framework, or the master would hand its tasks to nobody); if it cannot be stored, drop the
        subscription and try again rather than run under an id nobody will remember."""
        framework_id = event["subscribed"]["framework_id"]["value"]
        try:
            if framework_id != self.framework_id:
                self.store.put(FRAMEWORK_ID_KEY, framework_id)
        except Exception:  # e.g. the store is fenced (no longer the leader) or unreachable
            log.exception("could not store framework id %s; re-subscribing", framework_id)
            self._connected.clear()
            client = self._client
            if client is not None and generation == self._generation:
                client.disconnect()
            return False
        if self._on_subscribed is not None:
            self._on_subscribed(framework_id)
        return True
