"""Containers: processes the agent starts through a supervisor, limits with its isolator, watches and destroys.

A container is what runs for a command task, a custom executor or a Docker task. The agent never waits for the
task itself: it forks a supervisor (supervisor.py) in a session of its own, which starts the task and records its
exit status under ``meta/containers/<id>``. The agent watches supervisors through pidfds, which work for processes
that are not its children too, so a restarted agent watches the supervisors its predecessor started exactly like
its own (the Mesos containerizer's recover()).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mesolite.agent import monitor
from mesolite.agent.cgroups import Isolator
from mesolite.agent.checkpoint import Checkpoint, process_start_time, same_process
from mesolite.agent.docker_containerizer import DockerContainerizer
from mesolite.agent.images.runtime import ContainerRuntime, PrepareError

log = logging.getLogger(__name__)


class LaunchError(Exception):
    pass


@dataclass
class Termination:
    """How a container ended, as its supervisor (and the isolator) saw it."""

    returncode: int | None = None  # a process: negative means killed by that signal
    exit_code: int | None = None  # a Docker container
    oom: bool = False
    error: str | None = None
    max_memory_bytes: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and not self.oom and (self.returncode == 0 or self.exit_code == 0)

    def wait_status(self) -> int | None:
        """The raw wait(2) status Mesos reports in FAILURE events: exit code << 8, or the terminating signal."""
        if self.exit_code is not None:
            return self.exit_code << 8
        if self.returncode is None:
            return None
        return -self.returncode if self.returncode < 0 else self.returncode << 8

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.exit_code is not None:
            return f"Container exited with status {self.exit_code}"
        if self.returncode is not None and self.returncode < 0:
            return f"Command terminated with signal {signal_name(-self.returncode)}"
        return f"Command exited with status {self.returncode}"


@dataclass
class Container:
    id: str
    kind: str  # "command", "executor" or "docker"
    framework_id: str
    executor_id: str
    task_id: str | None
    directory: str
    checkpoint: bool
    cpus: float = 0.0
    mem: float = 0.0
    pid: int | None = None
    pid_start: int | None = None
    supervisor_pid: int | None = None
    supervisor_start: int | None = None
    ips: list[str] = field(default_factory=list)
    docker: dict[str, Any] | None = None
    cgroups: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    killed: bool = False
    exited: threading.Event = field(default_factory=threading.Event, repr=False)
    owner: Any = field(default=None, repr=False, compare=False)  # the TaskRun or ExecutorRun it runs

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "framework_id": self.framework_id,
            "executor_id": self.executor_id,
            "task_id": self.task_id,
            "directory": self.directory,
            "checkpoint": self.checkpoint,
            "cpus": self.cpus,
            "mem": self.mem,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "supervisor": {"pid": self.supervisor_pid, "start": self.supervisor_start},
            "ips": self.ips,
            "docker": self.docker,
            "cgroups": self.cgroups,
            "started": self.started,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Container:
        supervisor = record.get("supervisor") or {}
        return cls(
            id=str(record["id"]),
            kind=str(record.get("kind", "command")),
            framework_id=str(record.get("framework_id", "")),
            executor_id=str(record.get("executor_id", "")),
            task_id=record.get("task_id"),
            directory=str(record.get("directory", "")),
            checkpoint=bool(record.get("checkpoint")),
            cpus=float(record.get("cpus") or 0.0),
            mem=float(record.get("mem") or 0.0),
            pid=record.get("pid"),
            pid_start=record.get("pid_start"),
            supervisor_pid=supervisor.get("pid"),
            supervisor_start=supervisor.get("start"),
            ips=list(record.get("ips") or []),
            docker=record.get("docker"),
            cgroups=list(record.get("cgroups") or []),
            started=float(record.get("started") or time.time()),
        )


# Called once per container with how it ended.
ExitCallback = Callable[[Container, Termination], None]


class Containerizer:
    def __init__(
        self,
        checkpoint: Checkpoint,
        isolator: Isolator,
        on_exit: ExitCallback,
        docker: DockerContainerizer | None = None,
        runtime: ContainerRuntime | None = None,
    ) -> None:
        self.checkpoint = checkpoint
        self.isolator = isolator
        self.docker = docker
        self.runtime = runtime  # the pre-exec step: image rootfs, secrets, volumes, namespaces (images/runtime.py)
        self._on_exit = on_exit
        self._containers: dict[str, Container] = {}
        self._lock = threading.Lock()
        self._watcher = _PidfdWatcher(self._supervisor_exited, self._check_limits)

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._watcher.stop()

    def get(self, container_id: str) -> Container | None:
        with self._lock:
            return self._containers.get(container_id)

    def all(self) -> list[Container]:
        with self._lock:
            return list(self._containers.values())

    # ------------------------------------------------------------------ launch

    def launch(self, container: Container, spec: dict[str, Any]) -> None:
        """Start ``spec`` (supervisor.py's) in ``container``; returns once the task runs, raises LaunchError."""
        meta = self.checkpoint.container_dir(container.id)
        os.makedirs(meta, exist_ok=True)
        if container.kind != "docker":
            try:
                spec["cgroup_procs"] = self.isolator.prepare(container.id, container.cpus, container.mem)
            except OSError as exc:
                raise LaunchError(f"Failed to prepare the container's cgroups: {exc}") from None
            container.cgroups = sorted({os.path.dirname(p) for p in spec["cgroup_procs"]})
            if self.runtime is not None:
                try:
                    spec = self.runtime.prepare(container.id, spec, meta)
                except (PrepareError, OSError) as exc:
                    self._discard(container)
                    raise LaunchError(str(exc)) from None
        spec["status_file"] = os.path.join(meta, "exit_status")
        spec_path = os.path.join(meta, "spec.json")
        with open(spec_path, "w") as handle:
            json.dump(spec, handle)
        with open(os.path.join(meta, "supervisor.log"), "ab") as log_file:
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "mesolite.agent.supervisor", spec_path],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                self._discard(container)
                raise LaunchError(f"Failed to start the container's supervisor: {exc}") from None
        container.supervisor_pid = process.pid
        container.supervisor_start = process_start_time(process.pid)
        self.checkpoint.save_container(container.id, container.record())
        assert process.stdout is not None
        line = process.stdout.readline()
        process.stdout.close()
        try:
            announced = json.loads(line) if line else {"error": "the supervisor exited before starting the task"}
        except ValueError:
            announced = {"error": f"unexpected answer from the supervisor: {line[:200]!r}"}
        if "error" in announced:
            process.wait()
            self._discard(container)
            raise LaunchError(str(announced["error"]))
        pid = announced.get("pid")
        container.pid = int(pid) if pid else None
        container.pid_start = process_start_time(container.pid) if container.pid else None
        container.ips = list(announced.get("ips") or [])
        self.checkpoint.save_container(container.id, container.record())
        with self._lock:
            self._containers[container.id] = container
        self._watcher.add(container.id, process.pid, process)

    def _discard(self, container: Container) -> None:
        if container.kind != "docker":
            self.isolator.destroy(container.id)
            if self.runtime is not None:
                self.runtime.finished(container.id, self.checkpoint.container_dir(container.id))
        elif self.docker is not None and container.docker:
            self.docker.remove(container.docker["name"])
        self.checkpoint.remove_container(container.id)

    def update(self, container: Container, cpus: float, mem: float) -> None:
        """An executor's container grows (or shrinks) with the tasks it runs, as Mesos' update() does."""
        container.cpus, container.mem = cpus, mem
        if container.kind != "docker":
            try:
                self.isolator.update(container.id, cpus, mem)
            except OSError as exc:
                log.warning("could not update the limits of container %s: %s", container.id, exc)
        self.checkpoint.save_container(container.id, container.record())

    # ------------------------------------------------------------------ recovery

    def recover(self, record: dict[str, Any], owner: Any) -> tuple[Container, Termination | None]:
        """Reattach a container a previous agent started: watch it if it still runs, else say how it ended."""
        container = Container.from_record(record)
        container.owner = owner
        if container.pid is None:  # the old agent died before it read the supervisor's announcement
            announced = self.checkpoint.announced(container.id)
            container.pid = announced.get("pid")
            container.pid_start = process_start_time(container.pid) if container.pid else None
            container.ips = list(announced.get("ips") or [])
        if same_process(container.supervisor_pid, container.supervisor_start):
            with self._lock:
                self._containers[container.id] = container
            self._watcher.add(container.id, int(container.supervisor_pid or 0), None)
            return container, None
        termination = self._terminated(container)
        self.checkpoint.remove_container(container.id)
        return container, termination

    # ------------------------------------------------------------------ kill

    def kill(self, container: Container, grace: float) -> None:
        """SIGTERM now (``docker stop`` for Docker), SIGKILL to everything left after ``grace`` seconds."""
        container.killed = True
        if container.docker is not None and self.docker is not None:
            name = container.docker["name"]
            threading.Thread(target=self.docker.stop, args=(name, grace), daemon=True).start()
            return
        _signal_group(container.pid, signal.SIGTERM)

        def escalate() -> None:
            if not container.exited.wait(grace):
                self._kill_now(container)

        threading.Thread(target=escalate, name=f"kill-{container.id}", daemon=True).start()

    def destroy(self, container: Container) -> None:
        container.killed = True
        if container.docker is not None and self.docker is not None:
            self.docker.remove(container.docker["name"])
            return
        self._kill_now(container)

    def _kill_now(self, container: Container) -> None:
        _signal_group(container.pid, signal.SIGKILL)
        for pid in self.isolator.pids(container.id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------------ exits and limits

    def _supervisor_exited(self, container_id: str) -> None:
        with self._lock:
            container = self._containers.pop(container_id, None)
        if container is None:
            return
        termination = self._terminated(container)
        container.exited.set()
        try:
            self._on_exit(container, termination)
        except Exception:  # one bad report must not stop the watcher
            log.exception("handling the end of container %s failed", container_id)
        self.checkpoint.remove_container(container_id)

    def _terminated(self, container: Container) -> Termination:
        status = self.checkpoint.exit_status(container.id) or {
            "error": "The container's supervisor ended without recording how the container ended"
        }
        termination = Termination(
            returncode=status.get("returncode"),
            exit_code=status.get("exit_code"),
            oom=bool(status.get("oom")),
            error=status.get("error"),
        )
        if container.kind != "docker":
            termination.oom = termination.oom or self.isolator.oom_killed(container.id)
            termination.max_memory_bytes = self.isolator.max_memory_bytes(container.id)
            # What the task left behind in its process group or cgroup goes with it.
            _signal_group(container.pid, signal.SIGKILL)
            self.isolator.destroy(container.id)
            if self.runtime is not None:  # its rootfs goes; a failed container init says why it failed
                init_error = self.runtime.finished(container.id, self.checkpoint.container_dir(container.id))
                termination.error = termination.error or init_error
        return termination

    def _check_limits(self) -> None:
        """An OOM kill of one of a container's processes is a limitation of the whole container (Mesos destroys
        it); the leader may have survived it, so look rather than wait for the exit."""
        for container in self.all():
            if container.kind != "docker" and not container.killed and self.isolator.oom_killed(container.id):
                log.info("container %s reached its memory limit: destroying it", container.id)
                self._kill_now(container)

    def statistics(self, container: Container) -> dict[str, Any]:
        stats = self.isolator.statistics(container.id) if container.kind != "docker" else None
        if stats is None:
            stats = monitor.group_statistics(container.pid) if container.pid else {"timestamp": time.time()}
        return stats


def _signal_group(pid: int | None, sig: signal.Signals) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not permitted to signal process group %s", pid)


def signal_name(number: int) -> str:
    try:
        return signal.strsignal(number) or f"signal {number}"
    except ValueError:
        return f"signal {number}"


class _PidfdWatcher:
    """One thread polls a pidfd per supervisor; exits are handled on a small pool so a slow cleanup (a cgroup that
    takes time to empty) never delays noticing the next exit."""

    def __init__(self, on_exit: Callable[[str], None], tick: Callable[[], None], tick_interval: float = 1.0) -> None:
        self._on_exit = on_exit
        self._tick = tick
        self._tick_interval = tick_interval
        self._pending: list[tuple[str, int, subprocess.Popen[bytes] | None]] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="container-exit")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="container-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def add(self, key: str, pid: int, process: subprocess.Popen[bytes] | None) -> None:
        with self._lock:
            self._pending.append((key, pid, process))
        os.write(self._wake_w, b"x")

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        watched: dict[int, tuple[str, subprocess.Popen[bytes] | None]] = {}
        next_tick = time.monotonic() + self._tick_interval
        while not self._stop.is_set():
            with self._lock:
                pending, self._pending = self._pending, []
            for key, pid, process in pending:
                try:
                    fd = os.pidfd_open(pid)
                except ProcessLookupError:
                    self._exited(key, process)
                    continue
                watched[fd] = (key, process)
                poller.register(fd, select.POLLIN)
            timeout = max(0.0, next_tick - time.monotonic())
            for fd, _events in poller.poll(timeout * 1000):
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                poller.unregister(fd)
                os.close(fd)
                key, process = watched.pop(fd)
                self._exited(key, process)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_interval
                try:
                    self._tick()
                except Exception:  # keep watching
                    log.exception("container limit check failed")

    def _exited(self, key: str, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None:
            process.wait()  # our own child: reap it
        self._pool.submit(self._on_exit, key)
