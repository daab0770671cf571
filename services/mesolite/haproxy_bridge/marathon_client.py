"""What the bridge reads from Marathon: ``/v2/apps?embed=apps.tasks`` (marathon-lb's one call), the legacy
``/v2/tasks`` text/plain list (haproxy-marathon-bridge's), and the ``/v2/events`` Server-Sent Events stream.

Several Marathons may be given (as haproxy-marathon-bridge took them): each request tries them in order, starting
with the last one that answered. The event stream has a read timeout well above Marathon's 15 s keep-alive, so a
stream that silently stalls (marathon-lb#238) is noticed and replaced instead of trusted forever.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import requests

log = logging.getLogger(__name__)


class MarathonUnavailable(Exception):
    pass


class MarathonClient:
    def __init__(self, urls: list[str], timeout: float = 10.0) -> None:
        if not urls:
            raise ValueError("at least one Marathon URL is needed")
        self.urls = [u.rstrip("/") if "://" in u else "http://" + u.rstrip("/") for u in urls]
        self.timeout = timeout
        self._preferred = 0
        self._local = threading.local()

    @property
    def url(self) -> str:
        return self.urls[self._preferred]

    def _session(self) -> requests.Session:
        """One session per thread: the sync loop and the event stream never share a connection pool."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _order(self) -> list[int]:
        return [(self._preferred + i) % len(self.urls) for i in range(len(self.urls))]

    def get(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        errors = []
        for index in self._order():
            try:
                response = self._session().get(self.urls[index] + path, headers=headers, timeout=self.timeout)
                response.raise_for_status()
            except requests.RequestException as exc:
                errors.append(f"{self.urls[index]}: {exc}")
                continue
            self._preferred = index
            return response
        raise MarathonUnavailable("; ".join(errors))

    def apps(self) -> list[dict[str, Any]]:
        response = self.get("/v2/apps?embed=apps.tasks", headers={"Accept": "application/json"})
        try:
            apps = response.json()["apps"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MarathonUnavailable(f"{response.url}: not an app list ({exc})") from None
        if not isinstance(apps, list):
            raise MarathonUnavailable(f"{response.url}: 'apps' is not a list")
        return [a for a in apps if isinstance(a, dict)]

    def tasks_text(self) -> str:
        return self.get("/v2/tasks", headers={"Accept": "text/plain"}).text

    def events(self, event_types: tuple[str, ...], read_timeout: float = 60.0) -> EventStream:
        """Open the stream on the first Marathon that accepts it."""
        params: list[tuple[str, str]] = [("plan-format", "light")] + [("event_type", t) for t in event_types]
        errors = []
        for index in self._order():
            try:
                response = requests.get(
                    self.urls[index] + "/v2/events",
                    params=params,
                    headers={"Accept": "text/event-stream"},
                    stream=True,
                    timeout=(self.timeout, read_timeout),
                )
                response.raise_for_status()
            except requests.RequestException as exc:
                errors.append(f"{self.urls[index]}: {exc}")
                continue
            self._preferred = index
            return EventStream(response)
        raise MarathonUnavailable("; ".join(errors))


class EventStream:
    """An open ``/v2/events`` response, read as ``(event type, data)`` pairs; ``close()`` from another thread ends
    a blocked read at once."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.url = response.url

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        event_type = ""
        data: list[str] = []
        for raw in self._lines():
            line = raw.decode("utf-8", errors="replace")
            if not line:
                if data:
                    try:
                        payload = json.loads("\n".join(data))
                    except ValueError:
                        payload = {}
                    yield event_type or str(payload.get("eventType", "message")), payload
                event_type, data = "", []
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                event_type = value
            elif key == "data":
                data.append(value)

    def _lines(self) -> Iterator[bytes]:
        """Lines as soon as they arrive: ``read1`` returns what is there (a whole chunk of a chunked response, or
        whatever bytes came on a close-delimited one), where ``read(n)`` would wait for n bytes."""
        buffer = b""
        while True:
            chunk = self.response.raw.read1(65536)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r")

    def close(self) -> None:
        connection = getattr(self.response.raw, "_connection", None) or getattr(self.response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()
