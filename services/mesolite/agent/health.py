"""Task health checks run by the agent (``TaskInfo.health_check``: COMMAND, HTTP, TCP), as Mesos' executors do.

Semantics (docs/health-checks.md, src/checks/health_checker.cpp): the first check runs ``delay_seconds`` after the
task starts, then every ``interval_seconds``, each limited to ``timeout_seconds``. Failures within
``grace_period_seconds`` of the start are ignored until the first success. The framework hears of every change of
health (a TASK_RUNNING update with ``healthy``); after ``consecutive_failures`` failures in a row the task is killed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

log = logging.getLogger(__name__)
# HTTPS checks do not verify certificates (Mesos' curl -k): the warning would repeat every interval.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

# Mesos' defaults (include/mesos/mesos.proto HealthCheck).
DEFAULTS = {
    "delay_seconds": 15.0,
    "interval_seconds": 10.0,
    "timeout_seconds": 20.0,
    "consecutive_failures": 3,
    "grace_period_seconds": 10.0,
}

# (command, timeout) -> (healthy, detail): how a COMMAND check runs depends on where the task runs.
CommandRunner = Callable[[dict[str, Any], float], tuple[bool, str]]


@dataclass
class HealthCheckSpec:
    type: str
    delay: float
    interval: float
    timeout: float
    consecutive_failures: int
    grace_period: float
    command: dict[str, Any] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=dict)
    tcp: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, check: dict[str, Any]) -> HealthCheckSpec:
        kind = check.get("type")
        if not kind:  # pre-1.2 frameworks leave the type out and set exactly one of the kinds
            kind = "COMMAND" if check.get("command") else "HTTP" if check.get("http") else "TCP"
        kind = str(kind).upper()
        if kind not in ("COMMAND", "HTTP", "TCP"):
            raise ValueError(f"Unsupported health check type '{kind}'")
        values = {k: check.get(k, v) for k, v in DEFAULTS.items()}
        spec = cls(
            type=kind,
            delay=float(values["delay_seconds"]),
            interval=float(values["interval_seconds"]),
            timeout=float(values["timeout_seconds"]),
            consecutive_failures=max(1, int(values["consecutive_failures"])),
            grace_period=float(values["grace_period_seconds"]),
            command=dict(check.get("command") or {}),
            http=dict(check.get("http") or {}),
            tcp=dict(check.get("tcp") or {}),
        )
        if kind == "COMMAND" and not (spec.command.get("value") or spec.command.get("arguments")):
            raise ValueError("A COMMAND health check needs 'command'")
        if kind in ("HTTP", "TCP") and not (spec.http if kind == "HTTP" else spec.tcp).get("port"):
            raise ValueError(f"An {kind} health check needs a 'port'")
        return spec

    def describe(self) -> str:
        if self.type == "HTTP":
            return f"HTTP health check on port {self.http.get('port')} path {self.http.get('path') or '/'}"
        if self.type == "TCP":
            return f"TCP health check on port {self.tcp.get('port')}"
        return f"COMMAND health check '{self.command.get('value') or ' '.join(self.command.get('arguments') or [])}'"


class HealthChecker:
    def __init__(
        self,
        spec: HealthCheckSpec,
        host: str,
        run_command: CommandRunner,
        on_change: Callable[[bool, str], None],
        on_failed: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.host = host
        self._run_command = run_command
        self._on_change = on_change
        self._on_failed = on_failed
        self._stop = threading.Event()
        self.healthy: bool | None = None
        self.consecutive_failures = 0

    def start(self, name: str) -> None:
        threading.Thread(target=self._loop, name=f"health-{name}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        started = time.monotonic()
        succeeded_once = False
        if self._stop.wait(self.spec.delay):
            return
        while not self._stop.is_set():
            healthy, detail = self.check()
            if self._stop.is_set():
                return
            if healthy:
                succeeded_once = True
                self.consecutive_failures = 0
                if self.healthy is not True:
                    self.healthy = True
                    self._on_change(True, detail)
            elif succeeded_once or time.monotonic() - started >= self.spec.grace_period:
                self.consecutive_failures += 1
                if self.healthy is not False:
                    self.healthy = False
                    self._on_change(False, detail)
                if self.consecutive_failures >= self.spec.consecutive_failures:
                    self._on_failed(
                        f"{self.spec.describe()} failed {self.consecutive_failures} consecutive times: {detail}"
                    )
                    return
            if self._stop.wait(self.spec.interval):
                return

    def check(self) -> tuple[bool, str]:
        try:
            if self.spec.type == "COMMAND":
                return self._run_command(self.spec.command, self.spec.timeout)
            if self.spec.type == "HTTP":
                return self._http()
            return self._tcp()
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed check
            return False, str(exc)

    def _http(self) -> tuple[bool, str]:
        http = self.spec.http
        scheme = str(http.get("scheme") or "http")
        path = str(http.get("path") or "/")
        if not path.startswith("/"):
            path = "/" + path
        url = f"{scheme}://{self.host}:{int(http['port'])}{path}"
        statuses = {int(s) for s in http.get("statuses") or []}
        try:
            response = requests.get(url, timeout=self.spec.timeout, verify=False, allow_redirects=False)
        except requests.RequestException as exc:
            return False, f"GET {url} failed: {exc}"
        ok = response.status_code in statuses if statuses else 200 <= response.status_code < 400
        return ok, f"GET {url} returned {response.status_code}"

    def _tcp(self) -> tuple[bool, str]:
        port = int(self.spec.tcp["port"])
        try:
            with socket.create_connection((self.host, port), timeout=self.spec.timeout):
                return True, f"connected to {self.host}:{port}"
        except OSError as exc:
            return False, f"connection to {self.host}:{port} failed: {exc}"
