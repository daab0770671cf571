"""The agent's status update manager: reliable, ordered delivery of task status updates to the master.

Mesos semantics (src/slave/task_status_update_manager.cpp): each task has its own stream; only the head of a stream
is in flight, re-sent with exponential backoff (10 s, doubling, up to 10 min) until the scheduler's acknowledgement
comes back; only then does the next update of that task flow. Updates therefore survive a master restart or a
scheduler failover, and arrive in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RETRY_MIN = 10.0
RETRY_MAX = 600.0

# (framework_id, status) -> None when sent (acknowledgement will follow), True when the master settled it itself,
# raises when it could not be delivered.
Sender = Callable[[str, dict[str, Any]], bool]
# (framework_id, task_id, uuid, updates still pending on the stream): an update left the stream for good.
Acknowledged = Callable[[str, str, str, int], None]


@dataclass
class _Stream:
    framework_id: str
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    next_send: float = 0.0
    backoff: float = RETRY_MIN
    delivered: bool = False  # the head reached the master (its acknowledgement may still be due)


class StatusUpdateManager:
    def __init__(
        self,
        send: Sender,
        retry_min: float = RETRY_MIN,
        retry_max: float = RETRY_MAX,
        on_acknowledged: Acknowledged | None = None,
    ) -> None:
        self._send = send
        self._on_acknowledged = on_acknowledged
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = True
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="status-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def pause(self) -> None:
        """No master to talk to (not registered yet): hold everything."""
        self._paused = True

    def resume(self) -> None:
        """(Re)registered: send every stream's head now rather than waiting out its backoff."""
        with self._lock:
            for stream in self._streams.values():
                stream.next_send = 0.0
                stream.backoff = self._retry_min
        self._paused = False
        self._wake.set()

    def enqueue(self, framework_id: str, status: dict[str, Any]) -> None:
        task_id = status["task_id"]["value"]
        with self._lock:
            stream = self._streams.setdefault((framework_id, task_id), _Stream(framework_id))
            stream.pending.append(status)
            if len(stream.pending) == 1:
                stream.next_send = 0.0
                stream.delivered = False
        self._wake.set()

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> bool:
        with self._lock:
            stream = self._streams.get((framework_id, task_id))
            if stream is None or not stream.pending or stream.pending[0].get("uuid") != status_uuid:
                return False
            remaining = self._advance(framework_id, task_id, stream)
        self._wake.set()
        if self._on_acknowledged is not None:
            self._on_acknowledged(framework_id, task_id, status_uuid, remaining)
        return True

    def unacknowledged(self, framework_id: str, task_id: str) -> list[dict[str, Any]]:
        with self._lock:
            stream = self._streams.get((framework_id, task_id))
            return list(stream.pending) if stream else []

    def flush(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until every stream's last update has reached the master (acknowledgements of
        the earlier ones coming back meanwhile): an agent leaving for good sends what it has before it goes. False
        when something could not go (a master or a scheduler not answering, or no master known)."""
        deadline = time.monotonic() + timeout
        while not self._paused:
            with self._lock:
                waiting = any(
                    stream.pending and (len(stream.pending) > 1 or not stream.delivered)
                    for stream in self._streams.values()
                )
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.02)
        return False

    def forget_framework(self, framework_id: str) -> None:
        with self._lock:
            for key in [k for k in self._streams if k[0] == framework_id]:
                del self._streams[key]

    def _advance(self, framework_id: str, task_id: str, stream: _Stream) -> int:
        stream.pending.popleft()
        stream.next_send = 0.0
        stream.delivered = False
        stream.backoff = self._retry_min
        if not stream.pending:
            del self._streams[(framework_id, task_id)]
        return len(stream.pending)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            if self._paused:
                continue
            now = time.monotonic()
            with self._lock:
                due = [
                    (key, stream, stream.pending[0])
                    for key, stream in self._streams.items()
                    if stream.pending and stream.next_send <= now
                ]
                for _key, stream, _status in due:
                    stream.next_send = now + stream.backoff
                    stream.backoff = min(stream.backoff * 2, self._retry_max)
            for key, stream, status in due:
                try:
                    settled = self._send(stream.framework_id, status)
                except Exception as exc:  # noqa: BLE001 - retried on the stream's backoff
                    log.info("status update for task %s not delivered yet: %s", key[1], exc)
                    continue
                remaining = None
                with self._lock:
                    if stream.pending and stream.pending[0] is status:
                        stream.delivered = True
                        if settled:
                            remaining = self._advance(key[0], key[1], stream)
                if settled:
                    self._wake.set()
                    if remaining is not None and self._on_acknowledged is not None:
                        self._on_acknowledged(key[0], key[1], str(status.get("uuid")), remaining)
