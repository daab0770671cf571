"""Real ``mesolite`` processes on free loopback ports, for integration tests and benchmarks.

Every process is started through the same CLI an operator uses, in its own session so that stopping it also stops
whatever it started, and is always stopped when the test ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# What "not yet" looks like while a service starts, restarts or hands leadership over: the connection is refused,
# reset or times out; a body that is not JSON ("No leader elected" in text); an HTTP error status other than 500 from
# ``raise_for_status`` (404 until something exists, 503 without a leader). Anything else a predicate raises is a bug
# in the service or the test (KeyError, AssertionError, a 500, ...) and fails the wait at once.
TRANSIENT: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.JSONDecodeError,
    requests.HTTPError,
)


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "",
    retry_on: tuple[type[BaseException], ...] = TRANSIENT,
) -> Any:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    A bug must not become a timeout: an exception outside ``retry_on`` (or an HTTP 500) propagates at once, and so
    does a ``ServiceProcess`` that exits while nobody stopped it (with the end of its log). The timeout names what was
    awaited and the last value (or transient error) the predicate gave."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        ServiceProcess.check_running()
        try:
            value = predicate()
        except retry_on as exc:
            if isinstance(exc, requests.HTTPError) and exc.response is not None and exc.response.status_code == 500:
                raise
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"last error: {last!r}" if isinstance(last, BaseException) else f"last value: {last!r}"
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or predicate}; {_clip(seen)}")
        time.sleep(interval)


def _clip(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


class ServiceProcess:
    # Started and not stopped: ``wait_until`` fails at once when one of them has exited by itself.
    _running: ClassVar[set[ServiceProcess]] = set()

    def __init__(self, name: str, args: list[str], port: int, log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/health") -> ServiceProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mesolite.cli", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        ServiceProcess._running.add(self)
        wait_until(
            lambda: requests.get(self.url + ready_path, timeout=1).ok,
            what=f"{self.name} to answer on {self.url}",
        )
        return self

    @classmethod
    def check_running(cls) -> None:
        """Raise if a service that nobody stopped or signalled has exited (once: it is then forgotten)."""
        for service in list(cls._running):
            if service.process is not None and service.process.poll() is not None:
                cls._running.discard(service)
                raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    @property
    def work_dir(self) -> str:
        return self.args[self.args.index("--work_dir") + 1]

    def send_signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if sig not in (signal.SIGSTOP, signal.SIGCONT):
            ServiceProcess._running.discard(self)  # it may exit now, as the test asked
        os.killpg(self.process.pid, sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        ServiceProcess._running.discard(self)
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET on the service; a 500 is never an answer a test waits for, so it fails here with the body."""
        response = requests.get(self.url + path, timeout=10, **kwargs)
        if response.status_code == 500:
            raise AssertionError(f"{self.name} answered 500 to GET {path}: {response.text[:2000]}")
        return response


class Cluster:
    """A master and its agents; tests add agents as they need them."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.services: list[ServiceProcess] = []
        self.master: ServiceProcess | None = None
        self.agents: list[ServiceProcess] = []

    def start_master(self, *flags: str, port: int | None = None, name: str = "master") -> ServiceProcess:
        port = port or free_port()
        args = [
            "master",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--work_dir",
            str(self.base / name),
            "--allocation_interval",
            "0.2",
            "--heartbeat_interval",
            "1",
            *flags,
        ]
        self.master = self._add(ServiceProcess(name, args, port, self.base))
        return self.master

    def start_agent(
        self,
        *flags: str,
        resources: str = "cpus:4;mem:4096;disk:10000;ports:[31000-31100]",
        port: int | None = None,
        wait: bool = True,
    ) -> ServiceProcess:
        assert self.master is not None
        port = port or free_port()
        name = f"agent-{port}"
        args = [
            "agent",
            "--master",
            f"127.0.0.1:{self.master.port}",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--work_dir",
            str(self.base / name),
            "--resources",
            resources,
            *flags,
        ]
        agent = self._add(ServiceProcess(name, args, port, self.base))
        self.agents.append(agent)
        if wait:
            wait_until(lambda: self.agent_id(agent), what=f"{name} to register")
        return agent

    def agent_id(self, agent: ServiceProcess) -> str | None:
        assert self.master is not None
        for slave in self.master.get("/master/slaves").json()["slaves"]:
            if slave["pid"].endswith(f":{agent.port}"):
                return str(slave["id"])
        return None

    def _add(self, service: ServiceProcess) -> ServiceProcess:
        self.services.append(service)
        return service.start()

    def stop(self) -> None:
        # Agents first, while the master is up, and explicitly with their tasks (SIGUSR1: the agent kills them and
        # leaves the cluster): a SIGTERM ends only the agent process and leaves checkpointed tasks running.
        for agent in self.agents:
            agent.stop(signal.SIGUSR1)
        for service in reversed(self.services):
            service.stop()
        # What agents a test killed (SIGKILL, SIGTERM) left behind goes as with --recover=cleanup.
        from mesolite.agent.checkpoint import destroy_containers

        for agent in self.agents:
            destroy_containers(agent.work_dir)
