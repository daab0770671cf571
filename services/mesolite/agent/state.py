"""The agent's state: its registration with the master, the tasks it runs, and their status update streams.

One ``Agent`` object owns everything behind one lock and runs two loops: the master link (register, heartbeat,
re-register when the master no longer knows it) and the status update manager. Launching and killing processes is
launcher.py's job; this module decides what to launch and reports what happened.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from mesolite import MESOS_VERSION
from mesolite.agent.launcher import Launcher, TaskRun, kill_grace_of
from mesolite.agent.status import StatusUpdateManager
from mesolite.core import protocol as proto
from mesolite.core.attributes import Attributes
from mesolite.core.resources import ResourceError, Resources

log = logging.getLogger(__name__)

COMPLETED_TASKS_KEPT = 1000


@dataclass
class AgentConfig:
    master: str = "127.0.0.1:5050"
    ip: str = "127.0.0.1"
    port: int = 5051
    hostname: str | None = None
    work_dir: str = "/var/lib/mesolite/agent"
    resources: Resources = field(default_factory=Resources)
    attributes: Attributes = field(default_factory=Attributes)
    switch_user: bool = True
    registration_backoff: float = 1.0
    status_retry_min: float = 10.0

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.ip

    @property
    def master_url(self) -> str:
        master = self.master
        if master.startswith(("http://", "https://")):
            return master.rstrip("/")
        return f"http://{master}".rstrip("/")


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.id: str | None = None
        self.master_info: dict[str, Any] | None = None
        self.start_time = time.time()
        self.frameworks: dict[str, dict[str, Any]] = {}
        self.tasks: dict[tuple[str, str], TaskRun] = {}
        self.completed: list[TaskRun] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._registered = threading.Event()
        self._session = requests.Session()
        self._heartbeat_interval = 15.0
        self._container_seq = 0
        self.updates = StatusUpdateManager(self._send_update, retry_min=config.status_retry_min)
        self.launcher = Launcher(self._report, self._task_env, switch_user=config.switch_user)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        os.makedirs(self.config.work_dir, exist_ok=True)
        self.updates.start()
        self._thread = threading.Thread(target=self._master_loop, name="agent-master-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stopping the agent destroys its tasks: without checkpointed recovery to reattach them on restart they
        would be orphans nobody accounts for. The master reports them lost when the agent does not come back."""
        self._stop.set()
        with self._lock:
            runs = list(self.tasks.values())
        for run in runs:
            self.launcher.destroy(run)
        self.updates.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.config.ip}:{self.config.port}"

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    def wait_registered(self, timeout: float) -> bool:
        return self._registered.wait(timeout)

    # ------------------------------------------------------------------ master link

    def _master_loop(self) -> None:
        while not self._stop.is_set():
            if not self._registered.is_set():
                try:
                    self._register()
                except Exception as exc:  # noqa: BLE001 - keep trying until a master answers
                    log.info("registration with %s failed: %s", self.config.master, exc)
                    self._stop.wait(self.config.registration_backoff)
                    continue
            if self._stop.wait(self._heartbeat_interval / 3):
                return
            try:
                response = self._session.post(
                    f"{self.config.master_url}/master/internal/heartbeat",
                    json={"agent_id": proto.wrap(self.id or "")},
                    timeout=10,
                )
            except requests.RequestException as exc:
                log.info("master %s unreachable: %s", self.config.master, exc)
                continue
            if response.status_code == 404:
                log.warning("master no longer knows agent %s: re-registering", self.id)
                self._registered.clear()
                self.updates.pause()

    def _register(self) -> None:
        with self._lock:
            body = {
                "agent_info": {
                    **({"id": proto.wrap(self.id)} if self.id else {}),
                    "hostname": self.config.advertised_hostname,
                    "ip": self.config.ip,
                    "port": self.config.port,
                    "resources": self.config.resources.to_v1(),
                    "attributes": self.config.attributes.to_v1(),
                    "version": MESOS_VERSION,
                },
                "frameworks": list(self.frameworks.values()),
                "tasks": [self._task_report(run) for run in self.tasks.values()],
            }
        response = self._session.post(f"{self.config.master_url}/master/internal/register", json=body, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"master answered {response.status_code}: {response.text[:200]}")
        answer = response.json()
        with self._lock:
            self.id = answer["agent_id"]["value"]
            self.master_info = answer.get("master_info")
            self._heartbeat_interval = float(answer.get("heartbeat_interval_seconds", 15.0))
        self._link_latest(os.path.join(self.config.work_dir, "slaves"), self.id)
        log.info("registered with master %s as agent %s", self.config.master, self.id)
        self._registered.set()
        self.updates.resume()

    def _task_report(self, run: TaskRun) -> dict[str, Any]:
        return {
            "framework_id": proto.wrap(run.framework_id),
            "task_id": proto.wrap(run.task_id),
            "executor_id": proto.wrap(run.executor_id),
            "name": run.info.get("name", ""),
            "state": run.state,
            "resources": run.info.get("resources") or [],
            "role": run.role,
            "info": run.info,
            "statuses": run.statuses,
        }

    def _send_update(self, framework_id: str, status: dict[str, Any]) -> bool:
        response = self._session.post(
            f"{self.config.master_url}/master/internal/status",
            json={
                "framework_id": proto.wrap(framework_id),
                "agent_id": proto.wrap(self.id or ""),
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

    # ------------------------------------------------------------------ tasks

    def launch(self, message: dict[str, Any]) -> None:
        framework_info = message.get("framework_info") or {}
        task = message.get("task") or {}
        framework_id = proto.unwrap(framework_info.get("id"))
        task_id = proto.unwrap(task.get("task_id"))
        if not framework_id or not task_id:
            raise ValueError("launch needs framework_info.id and task.task_id")
        group_executor = message.get("executor")
        role = str(message.get("role") or framework_info.get("role") or "*")
        with self._lock:
            self.frameworks[framework_id] = framework_info
            if (framework_id, task_id) in self.tasks:
                return  # a re-delivered launch
            executor = group_executor or task.get("executor")
            executor_id = proto.unwrap((executor or {}).get("executor_id")) or task_id
            executor_dir = self._executor_directory(framework_id, executor_id, group_executor is not None)
            directory = os.path.join(executor_dir, "tasks", task_id) if group_executor is not None else executor_dir
            run = TaskRun(
                framework_id=framework_id,
                task_id=task_id,
                executor_id=executor_id,
                container_id=os.path.basename(executor_dir),
                info=task,
                user=framework_info.get("user") or None,
                role=role,
                directory=directory,
                executor_directory=executor_dir,
                kill_killing_state=_has_capability(framework_info, "TASK_KILLING_STATE"),
            )
            if group_executor is not None:
                group = [
                    r for r in self.tasks.values() if r.framework_id == framework_id and r.executor_id == executor_id
                ]
                run.group = group[0].group if group and group[0].group is not None else []
                run.group.append(run)
            self.tasks[(framework_id, task_id)] = run
        if isinstance(task.get("executor"), dict):
            # Custom executors speak the executor HTTP API, which this agent does not serve yet.
            self._report(
                run,
                "TASK_FAILED",
                "REASON_EXECUTOR_UNREGISTERED",
                "This agent runs command tasks and task groups; custom executors are not supported yet",
            )
            return
        self.launcher.launch(run)

    def _executor_directory(self, framework_id: str, executor_id: str, shared: bool) -> str:
        """<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>, with ``latest`` links.

        Tasks of one task group share their executor's run directory, each in ``tasks/<task_id>`` below it."""
        runs = os.path.join(
            self.config.work_dir,
            "slaves",
            self.id or "unregistered",
            "frameworks",
            framework_id,
            "executors",
            executor_id,
            "runs",
        )
        if shared:
            latest = os.path.join(runs, "latest")
            if os.path.islink(latest) and any(
                r.executor_id == executor_id and r.framework_id == framework_id and not r.terminal
                for r in self.tasks.values()
            ):
                return os.path.join(runs, os.readlink(latest))
        container_id = proto.new_id()
        path = os.path.join(runs, container_id)
        os.makedirs(path, exist_ok=True)
        self._link_latest(runs, container_id)
        return path

    @staticmethod
    def _link_latest(directory: str, target: str) -> None:
        os.makedirs(directory, exist_ok=True)
        link = os.path.join(directory, "latest")
        temporary = f"{link}.{os.getpid()}.{threading.get_ident()}"
        try:
            os.symlink(target, temporary)
            os.replace(temporary, link)
        except OSError as exc:
            log.warning("could not update %s: %s", link, exc)

    def _task_env(self, run: TaskRun) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MESOS_SANDBOX": run.directory,
                "MESOS_DIRECTORY": run.executor_directory,
                "MESOS_TASK_ID": run.task_id,
                "MESOS_AGENT_ID": self.id or "",
                "MESOS_SLAVE_ID": self.id or "",
                "MESOS_FRAMEWORK_ID": run.framework_id,
                "MESOS_EXECUTOR_ID": run.executor_id,
                "MESOS_CONTAINER_ID": run.container_id,
                "MESOS_AGENT_ENDPOINT": f"{self.config.ip}:{self.config.port}",
                "MESOS_SLAVE_PID": self.pid,
                "MESOS_ALLOCATION_ROLE": run.role,
                "MESOS_CHECKPOINT": "1" if self.frameworks.get(run.framework_id, {}).get("checkpoint") else "0",
            }
        )
        return env

    def _report(self, run: TaskRun, state: str, reason: str | None, message: str | None) -> None:
        """Every state change of a task becomes a status update on its stream."""
        with self._lock:
            if run.terminal:
                return
            run.state = state
            status = proto.task_status(
                run.task_id,
                state,
                agent_id=self.id,
                executor_id=run.executor_id if run.executor_id != run.task_id else None,
                source="SOURCE_EXECUTOR",
                reason=reason,
                message=message,
            )
            if state == "TASK_RUNNING":
                status["container_status"] = {
                    "container_id": {"value": run.container_id},
                    "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": self.config.ip}]}],
                    **({"executor_pid": run.pid} if run.pid else {}),
                }
            run.statuses.append({k: status[k] for k in ("state", "timestamp", "container_status") if k in status})
            if run.terminal:
                run.finished = time.time()
                self.tasks.pop((run.framework_id, run.task_id), None)
                self.completed.append(run)
                del self.completed[:-COMPLETED_TASKS_KEPT]
            siblings = [r for r in run.group or [] if r is not run and not r.terminal]
        self.updates.enqueue(run.framework_id, status)
        if state in ("TASK_FAILED", "TASK_KILLED") and siblings:
            # Like Mesos' default executor: one task of a group failing or being killed takes the group down.
            for sibling in siblings:
                self.launcher.kill(sibling, reason="REASON_TASK_GROUP_INVALID" if state == "TASK_FAILED" else None)

    def kill(self, framework_id: str, task_id: str, kill_policy: Any = None) -> bool:
        with self._lock:
            run = self.tasks.get((framework_id, task_id))
        if run is None:
            return False
        grace = kill_grace_of(kill_policy)
        if grace is None:
            grace = kill_grace_of(run.info.get("kill_policy"))
        self.launcher.kill(run, grace)
        return True

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        self.updates.acknowledge(framework_id, task_id, status_uuid)

    def shutdown_framework(self, framework_id: str) -> None:
        with self._lock:
            runs = [r for r in self.tasks.values() if r.framework_id == framework_id]
        for run in runs:
            self.launcher.kill(run, reason="REASON_FRAMEWORK_REMOVED")
        self.updates.forget_framework(framework_id)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        with self._lock:
            runs = [r for r in self.tasks.values() if r.framework_id == framework_id and r.executor_id == executor_id]
        for run in runs:
            self.launcher.kill(run, reason="REASON_EXECUTOR_TERMINATED")

    def runs(self) -> tuple[list[TaskRun], list[TaskRun]]:
        with self._lock:
            return list(self.tasks.values()), list(self.completed)

    def sandbox_paths(self) -> dict[str, str]:
        """The virtual ``/frameworks/<fw>/executors/<ex>/runs/latest`` paths the UI and tools use."""
        active, completed = self.runs()
        paths: dict[str, str] = {}
        for run in completed + active:
            paths[f"/frameworks/{run.framework_id}/executors/{run.executor_id}/runs/latest"] = run.executor_directory
            paths[f"/frameworks/{run.framework_id}/executors/{run.executor_id}/runs/{run.container_id}"] = (
                run.executor_directory
            )
        return paths


def _has_capability(framework_info: dict[str, Any], name: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == name for c in framework_info.get("capabilities") or ())


def detect_resources(configured: Resources, work_dir: str) -> Resources:
    """Fill in what ``--resources`` leaves out the way Mesos does (src/slave/containerizer/containerizer.cpp)."""
    names = configured.names()
    detected: list[str] = []
    if "cpus" not in names:
        detected.append(f"cpus:{os.cpu_count() or 1}")
    if "mem" not in names:
        total_mb = _memory_total_mb()
        detected.append(f"mem:{total_mb - 1024 if total_mb >= 2048 else total_mb // 2}")
    if "disk" not in names:
        os.makedirs(work_dir, exist_ok=True)
        stat = os.statvfs(work_dir)
        total_mb = stat.f_blocks * stat.f_frsize // (1024 * 1024)
        detected.append(f"disk:{total_mb - 5120 if total_mb >= 10240 else total_mb // 2}")
    if "ports" not in names:
        detected.append("ports:[31000-32000]")
    try:
        return configured + Resources.parse(";".join(detected))
    except ResourceError as exc:  # pragma: no cover - detection produces only well-formed text
        raise RuntimeError(f"resource detection failed: {exc}") from exc


def _memory_total_mb() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024))
