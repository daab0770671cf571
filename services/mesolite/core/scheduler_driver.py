"""A long-lived framework connection: keeps a :class:`SchedulerClient` subscribed for as long as the framework runs.

Long-running frameworks (Marathon, Chronos) must survive a master restart, a dropped stream, or a master that stops
sending heartbeats, and must come back *with the same framework id* so that the master hands back their running
tasks instead of killing them. ``SchedulerClient`` is one subscription; this driver owns the loop around it:
subscribe, watch the stream (EOF or missed heartbeats), re-subscribe with the id it was given, with capped backoff.

Events are handed to the framework on one dispatcher thread, in order, so a framework's handler may make calls back
to the master (ACCEPT, ACKNOWLEDGE) without stalling the reader of the stream.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from mesolite.core.scheduler_client import SchedulerClient, SchedulerError

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]


class NotConnected(RuntimeError):
    """A call was made while no subscription is open; the caller retries after the next SUBSCRIBED."""


class SchedulerDriver:
    """Subscribe, re-subscribe on failure with the same framework id, dispatch events on one thread."""

    def __init__(
        self,
        master: str,
        framework_info: dict[str, Any],
        on_event: EventHandler,
        on_subscribed: Callable[[str], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        *,
        missed_heartbeats: int = 5,
        max_backoff: float = 5.0,
    ) -> None:
        self.master = master
        self.framework_info = dict(framework_info)
        self._on_event = on_event
        self._on_subscribed = on_subscribed
        self._on_disconnected = on_disconnected
        self._missed_heartbeats = missed_heartbeats
        self._max_backoff = max_backoff
        self._client: SchedulerClient | None = None
        self._events: queue.Queue[tuple[int, dict[str, Any]] | None] = queue.Queue()
        self._generation = 0
        self._last_event = time.monotonic()
        self._heartbeat_interval = 15.0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._threads: list[threading.Thread] = []
        self.subscriptions = 0

    @property
    def framework_id(self) -> str | None:
        return (self.framework_info.get("id") or {}).get("value")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        for target, name in ((self._connection_loop, "driver-connection"), (self._dispatch_loop, "driver-dispatch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Drop the stream without tearing the framework down: the master keeps its tasks for failover_timeout."""
        self._stop.set()
        self._events.put(None)
        client = self._client
        if client is not None:
            client.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # ------------------------------------------------------------------ calls

    def call(self, call_type: str, body: dict[str, Any] | None = None, **extra: Any) -> None:
        client = self._require()
        client.call(call_type, body, **extra)

    def accept(self, offer_ids: list[str], operations: list[dict[str, Any]], refuse_seconds: float | None) -> None:
        self._require().accept(offer_ids, operations, refuse_seconds)

    def decline(self, offer_ids: list[str], refuse_seconds: float | None = None) -> None:
        self._require().decline(offer_ids, refuse_seconds)

    def acknowledge(self, status: dict[str, Any]) -> None:
        self._require().acknowledge(status)

    def kill(self, task_id: str, agent_id: str | None = None) -> None:
        self._require().kill(task_id, agent_id)

    def reconcile(self, tasks: list[tuple[str, str | None]] | None = None) -> None:
        self._require().reconcile(tasks)

    def revive(self) -> None:
        self._require().call("REVIVE")

    def suppress(self) -> None:
        self._require().call("SUPPRESS")

    def _require(self) -> SchedulerClient:
        client = self._client
        if client is None or not self._connected.is_set():
            raise NotConnected("not subscribed to a master")
        return client

    # ------------------------------------------------------------------ loops

    def _connection_loop(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            self._generation += 1
            generation = self._generation
            try:
                client = SchedulerClient(self.master, self.framework_info, on_event=self._receiver(generation))
            except Exception as exc:  # noqa: BLE001 - e.g. ZooKeeper (zk:// master) unreachable: keep trying
                log.info("cannot locate the master via %s (%s); retrying", self.master, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            try:
                framework_id = client.subscribe(timeout=10.0)
            except SchedulerError as exc:
                log.warning("subscribing to %s failed: %s", self.master, exc)
                if "removed" in exc.message.lower():
                    self._forget_framework_id()
                client.close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            except Exception as exc:  # noqa: BLE001 - the master may be down or restarting: keep trying
                log.info("master %s not reachable (%s); retrying", self.master, exc)
                client.close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.2
            self.framework_info["id"] = {"value": framework_id}
            self._client = client
            self._last_event = time.monotonic()
            self.subscriptions += 1
            self._connected.set()
            log.info("subscribed to %s as framework %s", self.master, framework_id)
            if self._on_subscribed is not None:
                self._events.put((generation, {"type": "_SUBSCRIBED", "framework_id": framework_id}))
            self._watch(client)
            self._connected.clear()
            self._client = None
            client.close()
            if self._on_disconnected is not None and not self._stop.is_set():
                try:
                    self._on_disconnected()
                except Exception:  # noqa: BLE001 - a handler bug must not end the connection loop
                    log.exception("disconnect handler failed")
            if not self._stop.is_set():
                log.warning("lost the subscription to %s; re-subscribing", self.master)
                self._stop.wait(0.2)

    def _receiver(self, generation: int) -> EventHandler:
        def receive(event: dict[str, Any]) -> None:
            self._last_event = time.monotonic()
            self._events.put((generation, event))

        return receive

    def _watch(self, client: SchedulerClient) -> None:
        """Return when the stream ends, the master goes quiet for several heartbeats, or we stop."""
        while not self._stop.is_set():
            if client.closed.wait(0.5):
                return
            silence = time.monotonic() - self._last_event
            if silence > self._missed_heartbeats * self._heartbeat_interval:
                log.warning("no event from the master for %.0fs; reconnecting", silence)
                return

    def _forget_framework_id(self) -> None:
        """The master removed this framework (torn down or failover timeout passed): start afresh."""
        self.framework_info.pop("id", None)

    def _dispatch_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            generation, event = item
            if generation != self._generation:
                continue  # from a stream we have already abandoned
            kind = event.get("type")
            try:
                if kind == "_SUBSCRIBED":
                    if self._on_subscribed is not None:
                        self._on_subscribed(event["framework_id"])
                    continue
                if kind == "SUBSCRIBED":
                    interval = event["subscribed"].get("heartbeat_interval_seconds")
                    if isinstance(interval, int | float) and interval > 0:
                        self._heartbeat_interval = float(interval)
                elif kind == "ERROR":
                    message = str((event.get("error") or {}).get("message", ""))
                    log.warning("master error: %s", message)
                    if "removed" in message.lower():
                        self._forget_framework_id()
                self._on_event(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the framework
                log.exception("event handler failed for %s", kind)
