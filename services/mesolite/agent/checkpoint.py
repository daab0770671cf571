"""What the agent writes under ``<work_dir>/meta`` so that a restarted agent can pick up where the old one died.

Layout (after Mesos' src/slave/paths.cpp, JSON instead of protobuf):

    meta/boot_id                                   the host boot the checkpoint belongs to (a reboot starts afresh)
    meta/slaves/latest                             the agent id to re-register with
    meta/slaves/<aid>/slave.info
    meta/slaves/<aid>/frameworks/<fid>/framework.info
    meta/slaves/<aid>/frameworks/<fid>/executors/<eid>/executor.info            custom executors
    meta/slaves/<aid>/frameworks/<fid>/executors/<eid>/runs/<cid>/tasks/<tid>/task.info
    meta/slaves/<aid>/frameworks/<fid>/executors/<eid>/runs/<cid>/tasks/<tid>/task.updates   JSON lines
    meta/containers/<container>/container.json     every live container, checkpointed framework or not
    meta/containers/<container>/announced.json     the supervisor's {pid} once the task runs
    meta/containers/<container>/exit_status        written by the container's supervisor when it ends

Only frameworks with ``checkpoint: true`` get framework/executor/task records, as in Mesos. Container records exist
for every container because a restarted agent must find *all* the processes it left behind: the checkpointed ones
to reattach, the others to destroy (Mesos finds those through its launcher's runtime directory and cgroups).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from typing import Any

from mesolite.agent.images import provisioner

log = logging.getLogger(__name__)


def write_json(path: str, data: Any) -> None:
    """Atomically: a reader (or a restarted agent) never sees half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def read_json(path: str) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: with the pid it names one process for good (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def same_process(pid: int | None, start: int | None) -> bool:
    """Whether that process still runs (a zombie has ended: only its parent has not collected it yet)."""
    if not pid or start is None or process_start_time(int(pid)) != start:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


class Checkpoint:
    def __init__(self, work_dir: str) -> None:
        self.meta = os.path.join(work_dir, "meta")

    # ------------------------------------------------------------------ the agent

    def recovered_agent_id(self) -> str | None:
        """The id to re-register with, unless the host rebooted since (Mesos: a new agent then)."""
        if read_json(os.path.join(self.meta, "boot_id")) != boot_id():
            return None
        latest = read_json(os.path.join(self.meta, "slaves", "latest"))
        return latest if isinstance(latest, str) and latest else None

    def forget_agent(self) -> None:
        """The next agent registers as a new one (Mesos removes ``meta/slaves/latest`` when an agent shuts down for
        good or cleans up): its predecessor left the cluster."""
        try:
            os.unlink(os.path.join(self.meta, "slaves", "latest"))
        except FileNotFoundError:
            pass

    def save_agent(self, agent_id: str, info: dict[str, Any]) -> None:
        write_json(os.path.join(self.meta, "boot_id"), boot_id())
        write_json(os.path.join(self.meta, "slaves", agent_id, "slave.info"), info)
        write_json(os.path.join(self.meta, "slaves", "latest"), agent_id)

    # ------------------------------------------------------------------ frameworks, executors, tasks

    def _framework_dir(self, agent_id: str, framework_id: str) -> str:
        return os.path.join(self.meta, "slaves", agent_id, "frameworks", framework_id)

    def _executor_dir(self, agent_id: str, framework_id: str, executor_id: str) -> str:
        return os.path.join(self._framework_dir(agent_id, framework_id), "executors", executor_id)

    def task_dir(self, agent_id: str, framework_id: str, executor_id: str, run_id: str, task_id: str) -> str:
        return os.path.join(self._executor_dir(agent_id, framework_id, executor_id), "runs", run_id, "tasks", task_id)

    def save_framework(self, agent_id: str, framework_id: str, info: dict[str, Any]) -> None:
        write_json(os.path.join(self._framework_dir(agent_id, framework_id), "framework.info"), info)

    def save_executor(self, agent_id: str, framework_id: str, executor_id: str, record: dict[str, Any]) -> None:
        write_json(os.path.join(self._executor_dir(agent_id, framework_id, executor_id), "executor.info"), record)

    def save_task(self, task_dir: str, record: dict[str, Any]) -> None:
        write_json(os.path.join(task_dir, "task.info"), record)

    def append_update(self, task_dir: str, entry: dict[str, Any]) -> None:
        """One line per update or acknowledgement; appends are what survives a kill -9 mid-write best."""
        os.makedirs(task_dir, exist_ok=True)
        with open(os.path.join(task_dir, "task.updates"), "a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def frameworks(self, agent_id: str) -> dict[str, dict[str, Any]]:
        base = os.path.join(self.meta, "slaves", agent_id, "frameworks")
        out: dict[str, dict[str, Any]] = {}
        for framework_id in _listdir(base):
            info = read_json(os.path.join(base, framework_id, "framework.info"))
            if isinstance(info, dict):
                out[framework_id] = info
        return out

    def executors(self, agent_id: str) -> list[dict[str, Any]]:
        out = []
        base = os.path.join(self.meta, "slaves", agent_id, "frameworks")
        for framework_id in _listdir(base):
            for executor_id in _listdir(os.path.join(base, framework_id, "executors")):
                record = read_json(os.path.join(base, framework_id, "executors", executor_id, "executor.info"))
                if isinstance(record, dict):
                    out.append(record)
        return out

    def tasks(self, agent_id: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
        """(task dir, task.info, update log) of every checkpointed task, oldest first."""
        out = []
        base = os.path.join(self.meta, "slaves", agent_id, "frameworks")
        for framework_id in _listdir(base):
            executors = os.path.join(base, framework_id, "executors")
            for executor_id in _listdir(executors):
                runs = os.path.join(executors, executor_id, "runs")
                for run_id in _listdir(runs):
                    tasks = os.path.join(runs, run_id, "tasks")
                    for task_id in _listdir(tasks):
                        task_dir = os.path.join(tasks, task_id)
                        record = read_json(os.path.join(task_dir, "task.info"))
                        if isinstance(record, dict):
                            out.append((task_dir, record, _read_lines(os.path.join(task_dir, "task.updates"))))
        out.sort(key=lambda entry: float(entry[1].get("launched", 0.0)))
        return out

    def remove_framework(self, agent_id: str, framework_id: str) -> None:
        shutil.rmtree(self._framework_dir(agent_id, framework_id), ignore_errors=True)

    def remove_task(self, task_dir: str) -> None:
        shutil.rmtree(task_dir, ignore_errors=True)

    # ------------------------------------------------------------------ containers

    def container_dir(self, container_id: str) -> str:
        return os.path.join(self.meta, "containers", container_id)

    def save_container(self, container_id: str, record: dict[str, Any]) -> None:
        write_json(os.path.join(self.container_dir(container_id), "container.json"), record)

    def containers(self) -> list[dict[str, Any]]:
        base = os.path.join(self.meta, "containers")
        out = []
        for container_id in _listdir(base):
            record = read_json(os.path.join(base, container_id, "container.json"))
            if isinstance(record, dict):
                out.append(record)
            else:  # died before the supervisor was started: nothing runs for it
                shutil.rmtree(os.path.join(base, container_id), ignore_errors=True)
        return out

    def exit_status(self, container_id: str) -> dict[str, Any] | None:
        status = read_json(os.path.join(self.container_dir(container_id), "exit_status"))
        return status if isinstance(status, dict) else None

    def announced(self, container_id: str) -> dict[str, Any]:
        announced = read_json(os.path.join(self.container_dir(container_id), "announced.json"))
        return announced if isinstance(announced, dict) else {}

    def remove_container(self, container_id: str) -> None:
        shutil.rmtree(self.container_dir(container_id), ignore_errors=True)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(path) if e != "latest")
    except OSError:
        return []


def _read_lines(path: str) -> list[dict[str, Any]]:
    entries = []
    try:
        with open(path) as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a kill mid-append
                if isinstance(entry, dict):
                    entries.append(entry)
    except OSError:
        pass
    return entries


def destroy_containers(work_dir: str, timeout: float = 10.0) -> int:
    """Kill every container an agent left in ``work_dir`` and forget its id (``--recover=cleanup``, and test
    teardown), as Mesos' cleanup does. Answers how many were still running."""
    checkpoint = Checkpoint(work_dir)
    killed = sum(destroy_container(checkpoint, record, timeout) for record in checkpoint.containers())
    checkpoint.forget_agent()
    return killed


def destroy_container(checkpoint: Checkpoint, record: dict[str, Any], timeout: float = 10.0) -> bool:
    """Kill one recorded container without an agent to watch it: the task's process group, whatever is left in its
    cgroups, its Docker container; then forget it. Answers whether it was still running."""
    supervisor = record.get("supervisor") or {}
    live = same_process(supervisor.get("pid"), supervisor.get("start"))
    pid = record.get("pid") or checkpoint.announced(str(record.get("id"))).get("pid")
    if pid and (live or same_process(pid, record.get("pid_start"))):
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for directory in record.get("cgroups") or []:
        _kill_cgroup(directory)
    docker = record.get("docker")
    if isinstance(docker, dict):
        _remove_docker(docker)
    deadline = time.monotonic() + timeout
    while live and same_process(supervisor.get("pid"), supervisor.get("start")) and time.monotonic() < deadline:
        time.sleep(0.02)
    for directory in record.get("cgroups") or []:
        for _ in range(50):
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError:
                _kill_cgroup(directory)
                time.sleep(0.02)
    # Its rootfs, if it had an image (meta/ is <work_dir>/meta).
    provisioner.destroy(os.path.dirname(checkpoint.meta), str(record.get("id")))
    checkpoint.remove_container(str(record.get("id")))
    return live


def _kill_cgroup(directory: str) -> None:
    try:
        with open(os.path.join(directory, "cgroup.procs")) as handle:
            pids = [int(p) for p in handle.read().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _remove_docker(docker: dict[str, Any]) -> None:
    try:
        import docker as sdk

        client = sdk.DockerClient(base_url=docker["socket"], timeout=30)
        client.containers.get(docker["name"]).remove(force=True)
    except Exception as exc:  # noqa: BLE001 - best effort: the container may be gone already
        log.debug("could not remove container %s: %s", docker.get("name"), exc)
