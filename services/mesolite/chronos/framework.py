"""Keeps a framework subscribed to the master for as long as the service runs, under the same framework id.

``core.scheduler_client.SchedulerClient`` is one subscription; a long-running framework also needs what a Mesos
scheduler driver does around it: remember the framework id across restarts (checkpointed tasks then stay ours),
re-subscribe when the stream breaks or the master restarts, notice a silent stream through missed heartbeats, and
start afresh only when the master says the framework was removed. Calls made while disconnected fail fast with
``NotConnected`` so callers can keep their work queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from mesolite.core.scheduler_client import SchedulerClient, SchedulerError
from mesolite.core.store import Store

log = logging.getLogger(__name__)

FRAMEWORK_ID_KEY = "framework/id"
MISSED_HEARTBEATS = 5


class CallFailed(RuntimeError):
    """A call did not reach the master or was refused; callers keep their work and try again later."""


class NotConnected(CallFailed):
    """No subscription right now; the call can be retried after the next SUBSCRIBED."""


class FrameworkDriver:
    def __init__(
        self,
        master: str,
        framework_info: dict[str, Any],
        store: Store,
        on_event: Callable[[dict[str, Any]], None],
        backoff: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        self.master = master
        self.framework_info = dict(framework_info)
        self.store = store
        self.on_event = on_event
        self.backoff = backoff
        self.connected = threading.Event()
        self._client: SchedulerClient | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_event = time.monotonic()
        self._heartbeat = 15.0
        self._removed = False

    @property
    def framework_id(self) -> str | None:
        value = self.store.get(FRAMEWORK_ID_KEY)
        return value if isinstance(value, str) else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="chronos-framework", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Disconnect without tearing down: the master keeps the framework and its tasks for failover_timeout."""
        self._stop.set()
        client = self._client
        if client is not None:
            client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=15)

    # ------------------------------------------------------------------------------------------------ loop

    def _loop(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            info = dict(self.framework_info)
            framework_id = self.framework_id
            if framework_id:
                info["id"] = {"value": framework_id}
            client = SchedulerClient(self.master, info, on_event=self._dispatch)
            self._removed = False
            # Current before SUBSCRIBED arrives: the first offers follow it on the stream at once, often before
            # subscribe() returns, and must be answerable (an offer left unanswered holds its resources).
            self._client = client
            try:
                new_id = client.subscribe(timeout=10)
            except (SchedulerError, requests.RequestException, TimeoutError, OSError) as exc:
                self.connected.clear()
                self._client = None
                client.close()
                if self._removed:
                    log.warning("master removed framework %s; subscribing as a new framework", framework_id)
                    self.store.delete(FRAMEWORK_ID_KEY)
                    continue
                log.info("cannot subscribe to %s (%s); retrying in %.1fs", self.master, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]
            self._last_event = time.monotonic()
            log.info("subscribed to %s as framework %s", self.master, new_id)
            try:
                self._watch(client)
            finally:
                self.connected.clear()
                self._client = None
                client.close()
            if not self._stop.is_set():
                log.warning("lost the subscription to %s; re-subscribing", self.master)
                self._stop.wait(self.backoff[0])

    def _watch(self, client: SchedulerClient) -> None:
        """Until the stream closes, the service stops, or heartbeats stop arriving (a half-open connection)."""
        while not self._stop.is_set() and not client.closed.is_set():
            if time.monotonic() - self._last_event > MISSED_HEARTBEATS * self._heartbeat:
                log.warning("no heartbeat from %s for %.0fs", self.master, MISSED_HEARTBEATS * self._heartbeat)
                client.disconnect()
                return
            client.closed.wait(0.5)

    def _dispatch(self, event: dict[str, Any]) -> None:
        self._last_event = time.monotonic()
        kind = event.get("type")
        if kind == "SUBSCRIBED":
            subscribed = event["subscribed"]
            self._heartbeat = float(subscribed.get("heartbeat_interval_seconds") or 15.0)
            framework_id = subscribed["framework_id"]["value"]
            # Stored before anything is launched under it: a restarted or newly elected instance must come back
            # as this framework, or the master would hand its tasks to nobody.
            if framework_id != self.framework_id:
                self.store.put(FRAMEWORK_ID_KEY, framework_id)
            self.connected.set()
        elif kind == "ERROR":
            message = (event.get("error") or {}).get("message", "")
            log.warning("master error: %s", message)
            if "removed" in message.lower():
                self._removed = True
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - one bad event must not kill the stream reader
            log.exception("error handling %s event", kind)

    # ----------------------------------------------------------------------------------------------- calls

    def _current(self) -> SchedulerClient:
        client = self._client
        if client is None or not self.connected.is_set():
            raise NotConnected("not subscribed to the master")
        return client

    def _call(self, method: str, *args: Any) -> None:
        """One call on the current subscription; a refused call or a broken connection is a CallFailed."""
        client = self._current()
        try:
            getattr(client, method)(*args)
        except (SchedulerError, requests.RequestException, OSError) as exc:
            raise CallFailed(f"{method}: {exc}") from exc

    def launch(self, offer: dict[str, Any], tasks: list[dict[str, Any]], refuse_seconds: float | None = None) -> None:
        self._call("launch", offer, tasks, refuse_seconds)

    def decline(self, offer_ids: list[str], refuse_seconds: float | None = None) -> None:
        self._call("decline", offer_ids, refuse_seconds)

    def acknowledge(self, status: dict[str, Any]) -> None:
        self._call("acknowledge", status)

    def kill(self, task_id: str, agent_id: str | None) -> None:
        self._call("kill", task_id, agent_id)

    def reconcile(self, tasks: list[tuple[str, str | None]]) -> None:
        self._call("reconcile", tasks)

    def revive(self) -> None:
        self._call("call", "REVIVE", {})
