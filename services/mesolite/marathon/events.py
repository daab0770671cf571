"""Marathon's event bus: Server-Sent Events on ``/v2/events`` and HTTP callbacks (``/v2/eventSubscriptions``).

Events are published from under the service lock, so publishing only appends to per-subscriber queues; SSE
responses drain their queue on their own request thread, and one sender thread POSTs to callback URLs, so a slow
consumer never holds up scheduling. Like Marathon's, delivery is at most once: a subscriber that falls too far
behind loses events (the docs tell consumers to treat events as cache invalidation and re-read state).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

import requests

from mesolite.marathon.state import iso

log = logging.getLogger(__name__)

MAX_BACKLOG = 10_000


class Subscription:
    def __init__(self, event_types: Iterable[str], remote: str) -> None:
        self.types = {t for t in event_types if t}
        self.remote = remote
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_BACKLOG)

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            log.warning("event subscriber %s is too slow; dropping %s", self.remote, event["eventType"])


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._callbacks: list[str] = []
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_BACKLOG)
        self._sender: threading.Thread | None = None
        self._session = requests.Session()
        self.published = 0

    def start(self) -> None:
        self._sender = threading.Thread(target=self._send_loop, name="event-callbacks", daemon=True)
        self._sender.start()

    def stop(self) -> None:
        self.detach_all()
        self._outbox.put(None)

    def detach_all(self) -> None:
        """End every SSE stream: on losing leadership, so that clients reconnect and get redirected to the leader."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.queue.put(None)

    def publish(self, event_type: str, **fields: Any) -> dict[str, Any]:
        event = {"eventType": event_type, "timestamp": iso(), **fields}
        with self._lock:
            self.published += 1
            subscriptions = [s for s in self._subscriptions if s.wants(event_type)]
            has_callbacks = bool(self._callbacks)
        for subscription in subscriptions:
            subscription.offer(event)
        if has_callbacks:
            try:
                self._outbox.put_nowait(event)
            except queue.Full:
                log.warning("HTTP callback backlog full; dropping %s", event_type)
        return event

    # ------------------------------------------------------------------ SSE

    def subscribe(self, event_types: Iterable[str], remote: str) -> Subscription:
        subscription = Subscription(event_types, remote)
        with self._lock:
            self._subscriptions.append(subscription)
        attached = {"eventType": "event_stream_attached", "timestamp": iso(), "remoteAddress": remote}
        if subscription.wants("event_stream_attached"):
            subscription.offer(attached)
        self.publish_others(subscription, attached)
        return subscription

    def publish_others(self, subscription: Subscription, event: dict[str, Any]) -> None:
        with self._lock:
            others = [s for s in self._subscriptions if s is not subscription and s.wants(event["eventType"])]
        for other in others:
            other.offer(event)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
        self.publish("event_stream_detached", remoteAddress=subscription.remote)

    @property
    def sse_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    # ------------------------------------------------------------------ HTTP callbacks

    def set_callbacks(self, urls: list[str]) -> None:
        with self._lock:
            self._callbacks = list(urls)

    def _send_loop(self) -> None:
        while True:
            event = self._outbox.get()
            if event is None:
                return
            with self._lock:
                urls = list(self._callbacks)
            for url in urls:
                try:
                    self._session.post(url, json=event, timeout=5)
                except requests.RequestException as exc:
                    log.info("event callback %s failed: %s", url, exc)
