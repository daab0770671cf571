"""The master's outbound half of the agent protocol (see docs/agent-protocol.md).

Messages to agents are fire-and-forget from the master's point of view, as libprocess messages are in Mesos: they go
out on a small thread pool so no request handler or allocation cycle ever waits on an agent; the callback reports a
delivery failure so the master can answer for the lost work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import requests

from mesolite.core import protocol as proto

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the master needs of a transport to agents (tests pass one that records instead of sending)."""

    def send(
        self, endpoint: str, path: str, body: dict[str, Any], on_failure: Callable[[str], None] | None = None
    ) -> None: ...

    def close(self) -> None: ...


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


class AgentMessages:
    """The master → agent messages of the agent protocol, encoded for the wire: the state machine names what to
    send with bare ids, and this is where they are wrapped as v1 does."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def launch(
        self,
        endpoint: str,
        agent_id: str,
        framework_info: dict[str, Any],
        task_info: dict[str, Any],
        role: str,
        group_executor: dict[str, Any] | None,
        on_failure: Callable[[str], None],
    ) -> None:
        message: dict[str, Any] = {
            "framework_info": framework_info,
            "task": {**task_info, "agent_id": proto.wrap(agent_id)},
            "role": role,
        }
        if group_executor is not None:
            message["executor"] = group_executor
        self._link.send(endpoint, "/internal/launch", message, on_failure=on_failure)

    def kill(self, endpoint: str, framework_id: str, task_id: str, kill_policy: dict[str, Any] | None) -> None:
        message: dict[str, Any] = {"framework_id": proto.wrap(framework_id), "task_id": proto.wrap(task_id)}
        if kill_policy is not None:
            message["kill_policy"] = kill_policy
        self._link.send(endpoint, "/internal/kill", message)

    def acknowledge(self, endpoint: str, framework_id: str, task_id: str, status_uuid: str) -> None:
        self._link.send(
            endpoint,
            "/internal/acknowledge",
            {"framework_id": proto.wrap(framework_id), "task_id": proto.wrap(task_id), "uuid": status_uuid},
        )

    def framework_message(self, endpoint: str, framework_id: str, executor_id: str, data: str) -> None:
        self._link.send(
            endpoint,
            "/internal/framework_message",
            {"framework_id": proto.wrap(framework_id), "executor_id": proto.wrap(executor_id), "data": data},
        )

    def shutdown_executor(self, endpoint: str, framework_id: str, executor_id: str) -> None:
        self._link.send(
            endpoint,
            "/internal/shutdown_executor",
            {"framework_id": proto.wrap(framework_id), "executor_id": proto.wrap(executor_id)},
        )

    def shutdown_framework(self, endpoint: str, framework_id: str) -> None:
        self._link.send(endpoint, "/internal/shutdown_framework", {"framework_id": proto.wrap(framework_id)})

    def drain(self, endpoint: str, config: dict[str, Any]) -> None:
        """DRAIN_AGENT: kill every task (with its grace period, capped by ``max_grace_period``) and refuse new
        ones until drained."""
        self._link.send(endpoint, "/internal/drain", {"config": config})

    def shutdown(self, endpoint: str, message: str) -> None:
        """The master removed the agent (its machine went down, or it was marked gone): kill everything."""
        self._link.send(endpoint, "/internal/shutdown", {"message": message})
