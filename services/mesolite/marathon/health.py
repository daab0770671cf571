"""Marathon-executed health checks (HTTP, HTTPS, TCP) and readiness checks, probing each task's host:port.

Mesos-executed checks (COMMAND, MESOS_HTTP, MESOS_TCP, and every pod container's check) are not run here: they
travel in the TaskInfo and their verdict comes back as ``healthy`` in status updates. Marathon-side results are in
memory only, as in Marathon (after a restart health is unknown until re-checked).

The kill rule is Marathon's ``HealthCheckActor``: failures during the grace period are ignored until the first
success; once ``consecutiveFailures`` reaches ``maxConsecutiveFailures`` (> 0) the task is killed and, the app
being short an instance, replaced.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import urllib3

from mesolite.marathon import instances, runspec
from mesolite.marathon.appdef import port_names
from mesolite.marathon.state import State, Task, iso

log = logging.getLogger(__name__)
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

MARATHON_PROTOCOLS = ("HTTP", "HTTPS", "TCP")


class Result:
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.alive = False
        self.consecutive_failures = 0
        self.first_success: str | None = None
        self.last_success: str | None = None
        self.last_failure: str | None = None
        self.last_failure_cause: str | None = None
        self.known = False

    def json(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "consecutiveFailures": self.consecutive_failures,
            "firstSuccess": self.first_success,
            "lastSuccess": self.last_success,
            "lastFailure": self.last_failure,
            "lastFailureCause": self.last_failure_cause,
            "taskId": self.task_id,
        }


def check_port(check: dict[str, Any], task: Task) -> int | None:
    if "port" in check:
        return int(check["port"])
    index = int(check.get("portIndex", 0))
    return task.ports[index] if index < len(task.ports) else None


def probe(protocol: str, host: str, port: int, path: str, timeout: float, ignore_1xx: bool = False) -> str | None:
    """None when healthy, else the failure cause."""
    if protocol == "TCP":
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
    scheme = "https" if protocol == "HTTPS" else "http"
    try:
        response = requests.get(f"{scheme}://{host}:{port}{path}", timeout=timeout, verify=False, allow_redirects=False)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    status = response.status_code
    if 200 <= status < 400 or (ignore_1xx and 100 <= status < 200):
        return None
    return f"{status} {response.reason}"


class HealthChecker:
    """Schedules probes on a pool; results are applied under the service lock."""

    def __init__(
        self,
        state: State,
        lock: threading.RLock,
        publish: Callable[..., Any],
        kill: Callable[[Task, str], None],
        in_deployment: Callable[[str], bool],
        health_changed: Callable[[Task], None] = lambda task: None,
        max_concurrent: int = 64,
    ) -> None:
        self.state = state
        self.lock = lock
        self.publish = publish
        self.kill = kill
        self.in_deployment = in_deployment
        self.health_changed = health_changed
        self.results: dict[tuple[str, int], Result] = {}
        self._due: dict[tuple[str, int], float] = {}
        self._inflight: set[tuple[str, int]] = set()
        self._ready_due: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="health")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.readiness: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="health-checks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ queries (under the lock)

    def task_results(self, task: Task, app: dict[str, Any] | None) -> list[dict[str, Any]]:
        if app is None:
            return []
        out = []
        for index, check in enumerate(app.get("healthChecks") or []):
            if check["protocol"] in MARATHON_PROTOCOLS:
                result = self.results.get((task.id, index))
                if result is not None and result.known:
                    out.append(result.json())
            elif task.mesos_healthy is not None and index == 0:
                out.append(
                    {
                        "alive": task.mesos_healthy,
                        "consecutiveFailures": 0 if task.mesos_healthy else 1,
                        "firstSuccess": None,
                        "lastSuccess": None,
                        "lastFailure": None,
                        "lastFailureCause": None,
                        "taskId": task.id,
                    }
                )
        return out

    def healthy(self, task: Task, app: dict[str, Any]) -> bool | None:
        """True/False once known, None while unknown; apps without checks are healthy when running."""
        if runspec.is_pod(app):
            return instances.pod_healthy(task, app)
        checks = app.get("healthChecks") or []
        if not checks:
            return task.running
        verdicts: list[bool | None] = []
        for index, check in enumerate(checks):
            if check["protocol"] in MARATHON_PROTOCOLS:
                result = self.results.get((task.id, index))
                verdicts.append(result.alive if result is not None and result.known else None)
            else:
                verdicts.append(task.mesos_healthy)
        if any(v is False for v in verdicts):
            return False
        if any(v is None for v in verdicts):
            return None
        return True

    def forget(self, task_id: str) -> None:
        for key in [k for k in self.results if k[0] == task_id]:
            self.results.pop(key, None)
            self._due.pop(key, None)
        self._ready_due.pop(task_id, None)
        self.readiness.pop(task_id, None)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self._schedule()
            except Exception:  # keep checking whatever one bad app does
                log.exception("health check scheduling failed")

    def _schedule(self) -> None:
        now = time.time()
        jobs: list[tuple[Any, ...]] = []
        with self.lock:
            for app_id, tasks in self.state.tasks_by_app.items():
                app = self.state.apps.get(app_id)
                if app is None:
                    continue
                checks = app.get("healthChecks") or []
                readiness = app.get("readinessChecks") or []
                for task in list(tasks.values()):
                    if not task.running or task.killing:
                        continue
                    for index, check in enumerate(checks):
                        if check["protocol"] not in MARATHON_PROTOCOLS:
                            continue
                        key = (task.id, index)
                        if key in self._inflight or self._due.get(key, 0.0) > now:
                            continue
                        port = check_port(check, task)
                        if port is None:
                            continue
                        self._due[key] = now + float(check["intervalSeconds"])
                        self._inflight.add(key)
                        jobs.append(("health", key, app_id, check, task.host, port))
                    if readiness and not task.ready and self.in_deployment(app_id):
                        if self._ready_due.get(task.id, 0.0) > now:
                            continue
                        check = readiness[0]
                        port = self._named_port(app, task, check["portName"])
                        if port is None:
                            continue
                        self._ready_due[task.id] = now + float(check["intervalSeconds"])
                        jobs.append(("ready", task.id, app_id, check, task.host, port))
        for job in jobs:
            self._pool.submit(self._run, *job)

    @staticmethod
    def _named_port(app: dict[str, Any], task: Task, name: str) -> int | None:
        for index, port_name in enumerate(port_names(app)):
            if port_name == name and index < len(task.ports):
                return task.ports[index]
        return None

    def _run(self, kind: str, key: Any, app_id: str, check: dict[str, Any], host: str, port: int) -> None:
        if kind == "ready":
            self._run_readiness(key, check, host, port)
            return
        try:
            cause = probe(
                check["protocol"],
                host,
                port,
                check.get("path", "/"),
                float(check["timeoutSeconds"]),
                bool(check.get("ignoreHttp1xx")),
            )
        except Exception as exc:  # noqa: BLE001 - a probe bug is a failed probe
            cause = str(exc)
        with self.lock:
            self._inflight.discard(key)
            task = self.state.tasks.get(key[0])
            if task is None or task.killing:
                return
            self._apply(task, key[1], check, app_id, cause)

    def _apply(self, task: Task, index: int, check: dict[str, Any], app_id: str, cause: str | None) -> None:
        key = (task.id, index)
        result = self.results.setdefault(key, Result(task.id))
        before = result.alive if result.known else None
        now_iso = iso()
        if cause is None:
            result.alive = True
            result.consecutive_failures = 0
            result.last_success = now_iso
            result.first_success = result.first_success or now_iso
            result.known = True
        else:
            in_grace = result.first_success is None and (
                time.time() - (task.running_time or task.staged_time) < float(check["gracePeriodSeconds"])
            )
            if in_grace:
                return
            result.alive = False
            result.consecutive_failures += 1
            result.last_failure = now_iso
            result.last_failure_cause = cause
            result.known = True
            self.publish(
                "failed_health_check_event", appId=app_id, taskId=task.id, instanceId=task.id, healthCheck=check
            )
        if before != result.alive:
            self.publish(
                "health_status_changed_event",
                appId=app_id,
                taskId=task.id,
                instanceId=task.id,
                version=task.version,
                alive=result.alive,
            )
            self.health_changed(task)
        limit = int(check["maxConsecutiveFailures"])
        if not result.alive and limit > 0 and result.consecutive_failures >= limit:
            reason = f"{result.consecutive_failures} consecutive health check failures ({cause})"
            log.info("killing unhealthy task %s: %s", task.id, reason)
            self.publish(
                "unhealthy_task_kill_event",
                appId=app_id,
                taskId=task.id,
                instanceId=task.id,
                version=task.version,
                reason=reason,
                host=task.host,
                slaveId=task.agent_id,
            )
            self.publish(
                "unhealthy_instance_kill_event",
                appId=app_id,
                taskId=task.id,
                instanceId=task.id,
                version=task.version,
                reason=reason,
                host=task.host,
                slaveId=task.agent_id,
            )
            self.kill(task, "failed health checks")

    def _run_readiness(self, task_id: str, check: dict[str, Any], host: str, port: int) -> None:
        scheme = "https" if check["protocol"] == "HTTPS" else "http"
        ready = False
        last: dict[str, Any] | None = None
        try:
            response = requests.get(
                f"{scheme}://{host}:{port}{check['path']}", timeout=float(check["timeoutSeconds"]), verify=False
            )
            ready = response.status_code in (check.get("httpStatusCodesForReady") or [200])
            last = {
                "status": response.status_code,
                "contentType": response.headers.get("Content-Type", ""),
                "body": response.text[:1024],
            }
        except requests.RequestException:
            ready = False
        with self.lock:
            task = self.state.tasks.get(task_id)
            if task is None:
                return
            entry: dict[str, Any] = {"name": check["name"], "taskId": task_id, "ready": ready}
            if check.get("preserveLastResponse"):
                entry["lastResponse"] = last
            self.readiness[task_id] = entry
            if ready and not task.ready:
                task.ready = True
                self.state.save_task(task)
