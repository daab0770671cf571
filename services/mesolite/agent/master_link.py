"""The agent's half of the agent protocol towards the master (docs/agent-protocol.md), mirroring the master's
``agent_link.py``: register and re-register, heartbeat, forward status updates, executor messages and exits, and
unregister when the agent shuts down for good.

The leading master is fixed by ``--master host:port`` or followed in ZooKeeper with ``--master zk://``. A master
that answers 404 to a heartbeat or an update no longer knows this agent (it restarted, or removed it): the link
re-registers, reporting the frameworks and tasks the agent runs, which the master takes as the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from mesolite import MESOS_VERSION
from mesolite.agent.checkpoint import Checkpoint
from mesolite.core import protocol as proto
from mesolite.core.scheduler_client import MasterLocator, SchedulerError

log = logging.getLogger(__name__)

# How long an agent the master refused waits before it asks again.
REFUSED_BACKOFF = 5.0


class Refused(Exception):
    """The master answered a registration with a shutdown."""


def _shutdown_message(response: requests.Response) -> str | None:
    if response.status_code != 403:
        return None
    try:
        shutdown = response.json().get("shutdown")
    except (ValueError, AttributeError):
        return None
    return str(shutdown.get("message", "")) if isinstance(shutdown, dict) else None


# What a (re-)registration reports besides the agent itself: {"frameworks": [...], "tasks": [...]}.
Registration = Callable[[], dict[str, list[dict[str, Any]]]]


class MasterLink:
    def __init__(
        self,
        master: str,
        info: dict[str, Any],
        checkpoint: Checkpoint,
        registration: Registration,
        on_registered: Callable[[str], None],
        on_disconnected: Callable[[], None],
        registration_backoff: float = 1.0,
        on_shutdown: Callable[[str], None] | None = None,
    ) -> None:
        """``info`` is the AgentInfo without its id: hostname, ip, port, resources, attributes (v1 JSON)."""
        self.master = master
        self.agent_id: str | None = None
        self.master_info: dict[str, Any] | None = None
        self._info = info
        self._checkpoint = checkpoint
        self._registration = registration
        self._on_registered = on_registered
        self._on_disconnected = on_disconnected
        self._on_shutdown = on_shutdown
        self._backoff = registration_backoff
        self.refused: str | None = None  # why the master refused the last registration (Mesos' ShutdownMessage)
        self._heartbeat_interval = 15.0
        self._session = requests.Session()
        self._locator: MasterLocator | None = None
        self._registered = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="agent-master-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more heartbeats or registrations (updates and messages can still be sent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        if self._locator is not None:
            self._locator.close()

    def current_id(self) -> str | None:
        """The agent id as of now (recovered, then given by the master), for the parts that stamp it on what they
        write."""
        return self.agent_id

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    def wait_registered(self, timeout: float) -> bool:
        return self._registered.wait(timeout)

    def agent_info(self) -> dict[str, Any]:
        """The AgentInfo executors are told about (SUBSCRIBED)."""
        return {
            **({"id": proto.wrap(self.agent_id)} if self.agent_id else {}),
            **{k: v for k, v in self._info.items() if k != "ip"},
        }

    # ------------------------------------------------------------------ registration and heartbeats

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._registered.is_set():
                try:
                    self._register()
                except Refused as exc:
                    log.warning("master %s refuses this agent: %s", self.master, exc)
                    self._stop.wait(max(self._backoff, REFUSED_BACKOFF))
                    continue
                except Exception as exc:  # noqa: BLE001 - keep trying until a master answers
                    log.info("registration with %s failed: %s", self.master, exc)
                    self._stop.wait(self._backoff)
                    continue
            if self._stop.wait(self._heartbeat_interval / 3):
                return
            try:
                response = self._session.post(
                    f"{self.master_url()}/master/internal/heartbeat",
                    json={"agent_id": proto.wrap(self.agent_id or "")},
                    timeout=10,
                )
            except requests.RequestException as exc:
                log.info("master %s unreachable: %s", self.master, exc)
                continue
            if response.status_code == 404:
                log.warning("master no longer knows agent %s: re-registering", self.agent_id)
                self._registered.clear()
                self._on_disconnected()

    def _register(self) -> None:
        info = {
            **({"id": proto.wrap(self.agent_id)} if self.agent_id else {}),
            **self._info,
            "version": MESOS_VERSION,
        }
        body: dict[str, Any] = {"agent_info": info, **self._registration()}
        response = self._session.post(f"{self.master_url()}/master/internal/register", json=body, timeout=10)
        refusal = _shutdown_message(response)
        if refusal is not None:
            # The master will not have this agent (its machine is DOWN, or it was marked gone): whatever it still
            # runs is killed, and registration is tried again later (a machine comes back UP).
            self.refused = refusal
            if self._on_shutdown is not None:
                self._on_shutdown(refusal)
            raise Refused(refusal)
        self.refused = None
        if response.status_code != 200:
            raise RuntimeError(f"master answered {response.status_code}: {response.text[:200]}")
        answer = response.json()
        agent_id = str(answer["agent_id"]["value"])
        self.agent_id = agent_id
        self.master_info = answer.get("master_info")
        self._heartbeat_interval = float(answer.get("heartbeat_interval_seconds", 15.0))
        self._checkpoint.save_agent(agent_id, info)
        log.info("registered with master %s as agent %s", self.master, agent_id)
        self._registered.set()
        self._on_registered(agent_id)

    def unregister(self) -> bool:
        """Tell the master this agent is leaving for good (Mesos' UnregisterSlaveMessage): it removes the agent,
        and what the agent still runs is lost. One try: a master that is not there learns from the missed pings."""
        if not self.agent_id:
            return False
        try:
            response = self._session.post(
                f"{self.master_url()}/master/internal/unregister",
                json={"agent_id": proto.wrap(self.agent_id)},
                timeout=5,
            )
        except requests.RequestException as exc:
            log.warning("could not tell master %s that agent %s leaves: %s", self.master, self.agent_id, exc)
            return False
        self._registered.clear()
        return response.status_code < 400

    # ------------------------------------------------------------------ messages to the master

    def send_update(self, framework_id: str, status: dict[str, Any]) -> bool:
        """The status update manager's sender: True when the master settled the update itself."""
        response = self._session.post(
            f"{self.master_url()}/master/internal/status",
            json={
                "framework_id": proto.wrap(framework_id),
                "agent_id": proto.wrap(self.agent_id or ""),
                "status": status,
            },
            timeout=10,
        )
        if response.status_code == 404:
            self._registered.clear()
            raise RuntimeError("master does not know this agent")
        if response.status_code >= 400:
            raise RuntimeError(f"master answered {response.status_code}: {response.text[:200]}")
        return bool(response.json().get("acknowledged"))

    def executor_message(self, framework_id: str, executor_id: str, data: str) -> None:
        """Executor → scheduler: through the master, which relays it as a MESSAGE event."""
        try:
            self._session.post(
                f"{self.master_url()}/master/internal/message",
                json={
                    "framework_id": proto.wrap(framework_id),
                    "agent_id": proto.wrap(self.agent_id or ""),
                    "executor_id": proto.wrap(executor_id),
                    "data": data,
                },
                timeout=10,
            )
        except requests.RequestException as exc:  # framework messages are best effort in Mesos too
            log.info("dropping a message of executor %s: %s", executor_id, exc)

    def executor_exited(self, framework_id: str, executor_id: str, status: int | None) -> None:
        """Tell the master a custom executor ended (its resources free, the scheduler's ``executorLost``)."""
        body: dict[str, Any] = {
            "framework_id": proto.wrap(framework_id),
            "agent_id": proto.wrap(self.agent_id or ""),
            "executor_id": proto.wrap(executor_id),
        }
        if status is not None:
            body["status"] = status

        def send() -> None:
            for attempt in range(3):
                try:
                    self._session.post(f"{self.master_url()}/master/internal/executor_exited", json=body, timeout=10)
                    return
                except requests.RequestException as exc:
                    log.info("executor exit of %s not delivered (%s), attempt %d", executor_id, exc, attempt + 1)
                    time.sleep(1 + attempt)

        threading.Thread(target=send, name="executor-exited", daemon=True).start()

    def master_url(self) -> str:
        """The leading master. No known leader reads as a connection failure, which every caller already retries."""
        try:
            if self._locator is None:
                # Built on first use, in the serving process (a ZooKeeper session must not be forked); ZooKeeper
                # not answering yet is retried like any unreachable master.
                self._locator = MasterLocator(self.master)
            return self._locator.url()
        except SchedulerError as exc:
            raise requests.ConnectionError(exc.message) from None
        except Exception as exc:  # noqa: BLE001 - e.g. kazoo's timeout when ZooKeeper is not up yet
            raise requests.ConnectionError(f"cannot reach ZooKeeper for {self.master}: {exc}") from None
