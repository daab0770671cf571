"""The master's outbound half of the agent protocol (see docs/agent-protocol.md).

Messages to agents are fire-and-forget from the master's point of view, as libprocess messages are in Mesos: they go
out on a small thread pool so no request handler or allocation cycle ever waits on an agent; the callback reports a
delivery failure so the master can answer for the lost work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

log = logging.getLogger(__name__)


class AgentLink:
    def __init__(self, workers: int = 16, timeout: float = 10.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agent-link")
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=workers)
        self._session.mount("http://", adapter)
        self._timeout = timeout

    def send(
        self,
        endpoint: str,
        path: str,
        body: dict[str, Any],
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._pool.submit(self._post, endpoint, path, body, on_failure)

    def _post(self, endpoint: str, path: str, body: dict[str, Any], on_failure: Callable[[str], None] | None) -> None:
        try:
            response = self._session.post(f"http://{endpoint}{path}", json=body, timeout=self._timeout)
            if response.status_code >= 400:
                raise RuntimeError(f"agent answered {response.status_code}: {response.text[:200]}")
        except Exception as exc:  # noqa: BLE001 - any failure means the message did not arrive
            log.warning("message %s to agent %s failed: %s", path, endpoint, exc)
            if on_failure is not None:
                on_failure(str(exc))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()
