"""Following the leading master's operator event stream (``SUBSCRIBE`` on ``/api/v1``), so that a task change
reaches the DNS records as it happens rather than at the next poll.

The follower holds one RecordIO stream open to the leader and calls ``on_change`` for every event that can change
the records (a task added or updated, an agent or a framework added, updated or removed) and when the stream
(re)opens, since anything may have changed while it was down; the service answers with a full ``/master/state``
load, so the records are always built from one consistent state. While the stream is not open (a master without the
operator API answers SUBSCRIBE with an error, or the leader moved) ``following`` is False and the service polls as
before; the follower keeps trying to (re)subscribe in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from mesolite.core.protocol import RecordIODecoder

log = logging.getLogger(__name__)

CHANGES = frozenset(
    {
        "TASK_ADDED",
        "TASK_UPDATED",
        "AGENT_ADDED",
        "AGENT_REMOVED",
        "FRAMEWORK_ADDED",
        "FRAMEWORK_UPDATED",
        "FRAMEWORK_REMOVED",
    }
)
RETRY = 1.0  # after a dropped stream
UNSUPPORTED_RETRY = 30.0  # after a master that does not offer the stream: it may be upgraded meanwhile
READ_TIMEOUT = 75.0  # five missed heartbeats of Mesos' 15 s


class StateFollower:
    def __init__(
        self,
        session: requests.Session,
        scheme: str,
        leader: Callable[[], str | None],
        on_change: Callable[[], None],
    ) -> None:
        self._session = session
        self._scheme = scheme
        self._leader = leader
        self._on_change = on_change
        self._following = threading.Event()
        self._stopped = threading.Event()
        self._response: requests.Response | None = None
        self._address: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def following(self) -> bool:
        """Whether the stream is open: changes arrive as events, no polling needed."""
        return self._following.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dns-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def retarget(self, address: str | None) -> None:
        """The leader is now ``address``: drop a stream open to another master."""
        with self._lock:
            stale = self._address is not None and self._address != address
        if stale:
            self._close()

    def _close(self) -> None:
        self._following.clear()
        with self._lock:
            response = self._response
        if response is not None:
            response.close()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            address = self._leader()
            if not address:
                self._stopped.wait(0.2)
                continue
            wait = RETRY
            try:
                wait = self._follow(address)
            except (requests.RequestException, ValueError, AttributeError, OSError) as exc:
                if not self._stopped.is_set():
                    log.info("operator event stream from %s ended: %s", address, exc)
            finally:
                followed = self.following
                self._following.clear()
                with self._lock:
                    self._response, self._address = None, None
            if followed and not self._stopped.is_set():
                self._on_change()  # back to polling: reload once now rather than at the next poll
            self._stopped.wait(wait)

    def _follow(self, address: str) -> float:
        """Read one stream to its end; returns how long to wait before the next attempt."""
        response = self._session.post(
            f"{self._scheme}://{address}/api/v1",
            json={"type": "SUBSCRIBE"},
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            stream=True,
            timeout=(5.0, READ_TIMEOUT),
        )
        with self._lock:
            self._response, self._address = response, address
        if response.status_code != 200:
            log.info("master %s offers no operator event stream (%d): polling instead", address, response.status_code)
            response.close()
            return UNSUPPORTED_RETRY
        decoder = RecordIODecoder()
        for chunk in response.iter_content(chunk_size=None):
            for event in decoder.feed(chunk):
                self._handle(event)
            if self._stopped.is_set():
                break
        return RETRY

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "SUBSCRIBED":
            log.info("following the operator event stream of %s", self._address)
            self._following.set()
            self._on_change()
        elif kind in CHANGES:
            self._on_change()
