"""A client for the Mesos v1 scheduler HTTP API: what mesolite's own frameworks (Marathon, Chronos) use to talk to
a master, and what the tests and benchmarks drive it with.

It holds the SUBSCRIBE stream open on a reader thread, decodes RecordIO, and hands every event to a callback (or a
queue the caller drains); calls go out on a separate connection carrying the ``Mesos-Stream-Id`` header.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import requests

from mesolite.core.protocol import RecordIODecoder

EventHandler = Callable[[dict[str, Any]], None]


class SchedulerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class SchedulerClient:
    def __init__(self, master: str, framework_info: dict[str, Any], on_event: EventHandler | None = None) -> None:
        """``master`` is ``host:port``, ``http://host:port``, or ``zk://hosts/path`` to follow the elected leader."""
        self._locator = MasterLocator(master)
        self.framework_info = dict(framework_info)
        self.framework_id: str | None = (framework_info.get("id") or {}).get("value")
        self.stream_id: str | None = None
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._on_event = on_event or self.events.put
        self._session = requests.Session()
        self._response: requests.Response | None = None
        self._reader: threading.Thread | None = None
        self._subscribed = threading.Event()
        self.closed = threading.Event()
        self.last_error: str | None = None

    @property
    def master(self) -> str:
        return self._locator.url()

    @property
    def url(self) -> str:
        return f"{self.master}/api/v1/scheduler"

    def subscribe(self, timeout: float = 10.0, suppressed_roles: list[str] | None = None) -> str:
        """Open the event stream; returns the framework id once SUBSCRIBED arrives."""
        info = dict(self.framework_info)
        call: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.framework_id:
            info["id"] = {"value": self.framework_id}
            call["framework_id"] = {"value": self.framework_id}
        if suppressed_roles:
            call["subscribe"]["suppressed_roles"] = suppressed_roles
        # Start from the configured master (or ZooKeeper) on every subscription: the old leader may be gone.
        self._locator.forget_redirect()
        for _ in range(3):
            response = requests.post(
                self.url,
                json=call,
                headers={"Accept": "application/json"},
                stream=True,
                timeout=(timeout, None),
                allow_redirects=False,
            )
            if response.status_code != 307:
                break
            # A master that is not the leader names the one that is (protocol-relative, as Mesos does).
            self._locator.redirected(response.headers.get("Location", ""))
            response.close()
        if response.status_code != 200:
            raise SchedulerError(response.status_code, response.text)
        self._response = response
        self.stream_id = response.headers.get("Mesos-Stream-Id")
        self.closed.clear()
        self._subscribed.clear()
        self._reader = threading.Thread(target=self._read, args=(response,), name="scheduler-stream", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._subscribed.wait(0.05):
            if self.closed.is_set():
                # The master answered with an ERROR (e.g. the framework was removed) and ended the stream.
                raise SchedulerError(
                    200, f"subscription ended before SUBSCRIBED: {self.last_error or 'no reason given'}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("no SUBSCRIBED event")
        assert self.framework_id is not None
        return self.framework_id

    def _read(self, response: requests.Response) -> None:
        decoder = RecordIODecoder()
        try:
            for chunk in response.raw.stream(4096, decode_content=False):
                for event in decoder.feed(chunk):
                    if event.get("type") == "ERROR":
                        self.last_error = str((event.get("error") or {}).get("message", ""))
                    if event.get("type") == "SUBSCRIBED":
                        self.framework_id = event["subscribed"]["framework_id"]["value"]
                        self._subscribed.set()
                    self._on_event(event)
        except Exception:  # noqa: BLE001 - a broken stream is reported through ``closed``
            pass
        finally:
            self.closed.set()

    def call(self, call_type: str, body: dict[str, Any] | None = None, **extra: Any) -> requests.Response:
        """Send one call; raises SchedulerError on a non-2xx answer."""
        call: dict[str, Any] = {"type": call_type, "framework_id": {"value": self.framework_id}, **extra}
        if body is not None:
            call[call_type.lower()] = body
        response = self._session.post(
            self.url,
            json=call,
            headers={"Mesos-Stream-Id": self.stream_id or ""},
            timeout=10,
        )
        if response.status_code >= 300:
            raise SchedulerError(response.status_code, response.text)
        return response

    # Convenience wrappers for the calls frameworks make most.

    def accept(
        self, offer_ids: list[str], operations: list[dict[str, Any]], refuse_seconds: float | None = None
    ) -> None:
        body: dict[str, Any] = {"offer_ids": [{"value": o} for o in offer_ids], "operations": operations}
        if refuse_seconds is not None:
            body["filters"] = {"refuse_seconds": refuse_seconds}
        self.call("ACCEPT", body)

    def launch(self, offer: dict[str, Any], tasks: list[dict[str, Any]], refuse_seconds: float | None = None) -> None:
        self.accept([offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": tasks}}], refuse_seconds)

    def decline(self, offer_ids: list[str], refuse_seconds: float | None = None) -> None:
        body: dict[str, Any] = {"offer_ids": [{"value": o} for o in offer_ids]}
        if refuse_seconds is not None:
            body["filters"] = {"refuse_seconds": refuse_seconds}
        self.call("DECLINE", body)

    def acknowledge(self, status: dict[str, Any]) -> None:
        if "uuid" in status:
            self.call(
                "ACKNOWLEDGE",
                {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]},
            )

    def kill(self, task_id: str, agent_id: str | None = None) -> None:
        body: dict[str, Any] = {"task_id": {"value": task_id}}
        if agent_id:
            body["agent_id"] = {"value": agent_id}
        self.call("KILL", body)

    def reconcile(self, tasks: list[tuple[str, str | None]] | None = None) -> None:
        entries = []
        for task_id, agent_id in tasks or []:
            entry: dict[str, Any] = {"task_id": {"value": task_id}}
            if agent_id:
                entry["agent_id"] = {"value": agent_id}
            entries.append(entry)
        self.call("RECONCILE", {"tasks": entries})

    def next_event(
        self,
        event_type: str | None = None,
        timeout: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Wait for the next queued event of a type (others are dropped); only for the queue mode."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event_type or 'event'} within {timeout}s")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if (event_type is None or event.get("type") == event_type) and (where is None or where(event)):
                return event

    def disconnect(self) -> None:
        """Drop the stream without tearing down (a scheduler failover)."""
        if self._response is not None:
            try:
                # Shut the socket so the master notices at once, not at its next heartbeat write.
                raw = self._response.raw
                connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._response.close()
        if self._reader is not None:  # a subscription that never opened has no reader to wait for
            self.closed.wait(5)

    def close(self) -> None:
        self.disconnect()
        self._session.close()
        self._locator.close()


class MasterLocator:
    """Where the leading master is: a fixed address, the target of the last redirect, or ZooKeeper's answer."""

    def __init__(self, master: str) -> None:
        self._fixed: str | None = None
        self._redirect: str | None = None
        self._detector: Any = None
        self._client: Any = None
        self._close_lock = threading.Lock()
        if master.startswith(("zk://", "zoo://")):
            from mesolite.core import zk

            hosts, group = zk.parse_zk_url(master)
            self._client = zk.connect(hosts)
            self._detector = zk.LeaderDetector(self._client, group, lambda info: None)
            self._detector.start()
        else:
            self._fixed = master.rstrip("/") if master.startswith("http") else f"http://{master.rstrip('/')}"

    def url(self) -> str:
        if self._redirect:
            return self._redirect
        if self._fixed:
            return self._fixed
        info = self._detector.leader if self._detector else None
        address = (info or {}).get("address") or {}
        if not address:
            raise SchedulerError(503, "No leading master found in ZooKeeper")
        return f"http://{address.get('hostname') or address.get('ip')}:{address['port']}"

    def forget_redirect(self) -> None:
        self._redirect = None

    def redirected(self, location: str) -> None:
        parsed = urlparse(location if "//" in location else f"//{location}")
        if parsed.netloc:
            self._redirect = f"http://{parsed.netloc}"

    def close(self) -> None:
        # Idempotent and thread-safe: a driver stopping and its connection loop may both close the same client.
        with self._close_lock:
            detector, self._detector = self._detector, None
            if detector is not None:
                detector.stop()
                self._client.stop()
                self._client.close()
