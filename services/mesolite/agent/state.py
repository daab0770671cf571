"""The agent: what it runs for whom, and how it ends.

One ``Agent`` puts the agent's parts together and is what the API calls. Each part gets the collaborators it uses
when it is built, here, and none reaches back into the ``Agent``: the master link (master_link.py: registration,
heartbeats, updates and messages to the master), the runs and their status update streams (runs.py), sandboxes and
the ``MESOS_*`` environment (sandbox.py), the containerizer (containerizer.py), the launcher of command and Docker
tasks (launcher.py), the custom executors (executors.py), recovery after a restart (recovery.py) and the sandbox
garbage collector (gc.py). This module decides what to launch, kill and shut down, and how the agent ends, as Mesos'
agent does (src/slave/slave.cpp):

- ``stop()`` (SIGTERM or SIGINT: ``systemctl stop`` or restart, an upgrade) ends this process only. Tasks of
  frameworks that checkpoint keep running and the next agent recovers them (``--recover=reconnect``); those of
  frameworks that do not are destroyed (Mesos' Slave::finalize shuts those frameworks down), and a next agent would
  destroy whatever of theirs is left.
- ``shutdown()`` (SIGUSR1, see core/server.py) is the explicit way to take the tasks down: every task and executor
  is killed and its end reported, the master is told the agent leaves (it removes the agent), the agent id is
  forgotten (the next agent registers as a new one) and the agent stops. ``--recover=cleanup`` destroys what a
  previous agent left and exits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from mesolite.agent.cgroups import create_isolator
from mesolite.agent.checkpoint import Checkpoint
from mesolite.agent.config import AgentConfig, isolators
from mesolite.agent.containerizer import Container, Containerizer, Termination
from mesolite.agent.debug import DebugSessions
from mesolite.agent.docker_containerizer import DockerContainerizer
from mesolite.agent.executors import ExecutorManager, ExecutorTimeouts
from mesolite.agent.fetcher import FetcherCache
from mesolite.agent.gc import SandboxGC
from mesolite.agent.images.runtime import ContainerRuntime, RuntimeSettings
from mesolite.agent.launcher import DEFAULT_KILL_GRACE, Launcher, kill_grace_of
from mesolite.agent.master_link import MasterLink
from mesolite.agent.recovery import Recovery
from mesolite.agent.runs import ExecutorRun, Frameworks, Runs, TaskRun
from mesolite.agent.sandbox import Sandboxes, live_directories, virtual_paths
from mesolite.core import protocol as proto
from mesolite.core.resources import ResourceError, Resources

log = logging.getLogger(__name__)

# How long a stopping agent waits for the containers it destroys, and a leaving one for its last updates to go out.
DESTROY_WAIT = 5.0
FLUSH_WAIT = 3.0


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.start_time = time.time()
        self.checkpoint = Checkpoint(config.work_dir)
        self.isolator = create_isolator(config.isolation, config.cgroups_root, config.cgroups_enable_cfs)
        docker = (
            DockerContainerizer(config.docker_socket, config.work_dir, config.docker_config)
            if "docker" in config.containerizers
            else None
        )
        self.runtime = ContainerRuntime(
            RuntimeSettings(
                work_dir=config.work_dir,
                isolation=isolators(config.isolation),
                image_providers=config.image_providers,
                docker_registry=config.docker_registry,
                docker_store_dir=config.docker_store_dir,
                docker_config=config.docker_config,
                backend=config.image_provisioner_backend,
                sandbox_directory=config.sandbox_directory,
                docker_ignore_runtime=config.docker_ignore_runtime,
                secrets_dir=config.secrets_dir,
            )
        )
        self.containerizer = Containerizer(
            self.checkpoint, self.isolator, self._container_exited, docker, runtime=self.runtime
        )
        self.cache = FetcherCache(
            config.fetcher_cache_dir or os.path.join(config.work_dir, "fetch"), config.fetcher_cache_size
        )
        self.link = MasterLink(
            config.master,
            {
                "hostname": config.advertised_hostname,
                "ip": config.ip,
                "port": config.port,
                "resources": config.resources.to_v1(),
                "attributes": config.attributes.to_v1(),
            },
            self.checkpoint,
            registration=self._registration,
            on_registered=self._registered,
            on_disconnected=self._disconnected,
            registration_backoff=config.registration_backoff,
            on_shutdown=self.master_shutdown,
        )
        agent_id = self.link.current_id
        self.frameworks = Frameworks(self.checkpoint, agent_id)
        self.runs = Runs(self.checkpoint, self.link.send_update, agent_id, config.ip, config.status_retry_min)
        self.sandboxes = Sandboxes(
            config.work_dir,
            agent_id,
            self.runs,
            self.frameworks,
            (config.ip, config.port),
            config.executor_shutdown_grace_period,
        )
        self.launcher = Launcher(
            self.containerizer, self.runs.report, self.sandboxes.task_env, self.cache, config.switch_user
        )
        self.executors = ExecutorManager(
            self.runs,
            self.frameworks,
            self.sandboxes,
            self.containerizer,
            self.checkpoint,
            self.link,
            self.launcher.command_spec,
            self.cache,
            ExecutorTimeouts(
                registration=config.executor_registration_timeout,
                reregistration=config.executor_reregistration_timeout,
                shutdown_grace=config.executor_shutdown_grace_period,
            ),
        )
        self.debug = DebugSessions(self.runs, self.sandboxes.task_env, self.launcher.user_of)
        self.recovery = Recovery(
            self.checkpoint, self.frameworks, self.runs, self.executors, self.launcher, self.containerizer
        )
        self.gc = SandboxGC(
            self.sandboxes.slaves_dir,
            self._live_directories,
            config.gc_delay,
            config.gc_disk_headroom,
            config.disk_watch_interval,
        )
        self._launching = threading.Lock()  # one launch at a time: task groups share their executor's sandbox
        self._ending = threading.Event()  # stop() or shutdown() began: no more launches
        self._end_lock = threading.Lock()
        # DRAIN_AGENT's config while the agent drains (Mesos' DrainConfig): tasks arriving meanwhile are dropped.
        self.drain_config: dict[str, Any] | None = None
        self._removed = threading.Lock()  # one removal (master shutdown) at a time

    # ------------------------------------------------------------------ glue between the parts

    def _registration(self) -> dict[str, list[dict[str, Any]]]:
        return {"frameworks": self.frameworks.all(), "tasks": [run.report() for run in self.runs.active()]}

    def _registered(self, agent_id: str) -> None:
        self.sandboxes.registered(agent_id)
        self.runs.updates.resume()

    def _disconnected(self) -> None:
        self.runs.updates.pause()

    def _container_exited(self, container: Container, termination: Termination) -> None:
        owner = container.owner
        if isinstance(owner, TaskRun):
            self.launcher.finished(owner, termination)
        elif isinstance(owner, ExecutorRun):
            self.executors.exited(owner, termination)

    def _live_directories(self) -> set[str]:
        return live_directories(self.runs.active(), self.executors.all())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        os.makedirs(self.config.work_dir, exist_ok=True)
        if self.isolator.name == "posix":
            log.warning("isolation is posix/cpu,posix/mem: resource limits are accounted, not enforced")
        else:
            log.info("isolation: cgroups (%s)", type(self.isolator).__name__)
        self.containerizer.start()
        self.link.agent_id = self.recovery.agent_id(reconnect=self.config.recover == "reconnect")
        self.recovery.run(self.link.agent_id)
        # The image store, and the rootfses of containers that no longer exist (recovery destroyed or reaped them).
        self.runtime.start({c.id for c in self.containerizer.all()})
        self.runs.updates.start()
        self.gc.start()
        self.link.start()

    def stop(self) -> None:
        """SIGTERM: end this process, not the tasks. Checkpointing frameworks' tasks keep running for the next agent
        to recover; those of frameworks that do not checkpoint are destroyed, as Mesos' agent shuts those frameworks
        down when it terminates (nobody could take them back)."""
        if not self._begin_end():
            return
        doomed = self._destroy(lambda framework_id: not self.frameworks.checkpointing(framework_id))
        _wait_exited(doomed, DESTROY_WAIT)  # let the watcher record their ends and clean their cgroups up
        self._stop_parts()

    def shutdown(self) -> None:
        """SIGUSR1 (Mesos' Slave::shutdown): leave the cluster for good. Every task is killed (command tasks with
        their kill policy's grace, custom executors with SHUTDOWN and ``--executor_shutdown_grace_period``), their
        ends go out to the master, then the master is told the agent leaves and removes it (whatever still ran is
        lost), and the agent id is forgotten so that the next agent on this work dir registers as a new one."""
        if not self._begin_end():
            return
        log.info("shutting down: killing every task, then leaving the cluster")
        killed, grace = self._kill_everything()
        if not _wait_exited(killed, grace + 2.0):
            _wait_exited(self._destroy(lambda _: True), DESTROY_WAIT)
        # A container's end is reported just after it is seen: wait for every task's terminal update, then for the
        # updates to reach the master.
        deadline = time.monotonic() + DESTROY_WAIT
        while self.runs.active() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.runs.updates.flush(FLUSH_WAIT)
        self.link.stop()
        if self.link.unregister():
            log.info("agent %s unregistered from the master", self.link.agent_id)
        self.checkpoint.forget_agent()
        self._stop_parts()

    def _begin_end(self) -> bool:
        """Only the first of stop() and shutdown() does anything: an agent ends once."""
        with self._end_lock:
            if self._ending.is_set():
                return False
            self._ending.set()
            return True

    def _stop_parts(self) -> None:
        for session in self.debug.all():
            session.destroy()
        self.containerizer.stop()
        self.runs.updates.stop()
        self.gc.stop()
        self.link.stop()
        self.link.close()

    def _destroy(self, doomed: Callable[[str], bool]) -> list[Container]:
        """Kill at once the containers of the frameworks ``doomed`` names; answers those to wait for."""
        containers: list[Container] = []
        for run in self.runs.active():
            if run.executor is None and doomed(run.framework_id):
                if run.container is not None and not run.container.exited.is_set():
                    containers.append(run.container)
                self.launcher.destroy(run)
        for executor in self.executors.all():
            if doomed(executor.framework_id) and executor.state != "TERMINATED":
                container = self.executors.destroy(executor)
                if container is not None:
                    containers.append(container)
        return containers

    def _kill_everything(self) -> tuple[list[Container], float]:
        """Kill every task and shut every executor down; answers their containers and the longest grace period."""
        containers: list[Container] = []
        grace = 0.0
        for run in self.runs.active():
            if run.executor is not None:
                run.kill_requested = True
                continue
            run.kill_message = run.kill_message or "Task killed: the agent is shutting down"
            task_grace = kill_grace_of(run.info.get("kill_policy"))
            grace = max(grace, DEFAULT_KILL_GRACE if task_grace is None else task_grace)
            self.launcher.kill(run)
            if run.container is not None:
                containers.append(run.container)
        for executor in self.executors.all():
            grace = max(grace, self.config.executor_shutdown_grace_period)
            self.executors.shutdown(executor)
            if executor.container is not None:
                containers.append(executor.container)
        return containers, grace

    # ------------------------------------------------------------------ identity

    @property
    def id(self) -> str | None:
        return self.link.agent_id

    @property
    def master_info(self) -> dict[str, Any] | None:
        return self.link.master_info

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.config.ip}:{self.config.port}"

    @property
    def registered(self) -> bool:
        return self.link.registered

    def wait_registered(self, timeout: float) -> bool:
        return self.link.wait_registered(timeout)

    # ------------------------------------------------------------------ tasks

    def launch(self, message: dict[str, Any]) -> None:
        framework_info = message.get("framework_info") or {}
        task = message.get("task") or {}
        framework_id = proto.unwrap(framework_info.get("id"))
        task_id = proto.unwrap(task.get("task_id"))
        if not framework_id or not task_id:
            raise ValueError("launch needs framework_info.id and task.task_id")
        if self._ending.is_set():
            log.warning("ignoring task %s: the agent is terminating", task_id)
            return
        if self.drain_config is not None:
            self.runs.updates.enqueue(
                framework_id,
                proto.task_status(
                    task_id,
                    "TASK_DROPPED",
                    agent_id=self.id,
                    source="SOURCE_AGENT",
                    reason="REASON_AGENT_DRAINING",
                    message="Task was received while agent was already draining",
                ),
            )
            return
        group_executor = message.get("executor")
        executor_info = group_executor or task.get("executor")
        custom = isinstance(executor_info, dict) and (
            group_executor is None or (executor_info.get("type") == "CUSTOM" and executor_info.get("command"))
        )
        with self._launching:
            self.frameworks.remember(framework_id, framework_info)
            if self.runs.get(framework_id, task_id) is not None:
                return  # a re-delivered launch
            executor: ExecutorRun | None = None
            if custom:
                assert isinstance(executor_info, dict)
                executor = self.executors.executor_for(
                    framework_id, executor_info, _role(message, framework_info), framework_info.get("user") or None
                )
                run = self._executor_task(framework_info, task, executor)
            else:
                run = self._command_task(message, framework_info, task, executor_info)
            self.runs.add(run, checkpoint=bool(framework_info.get("checkpoint")))
        if executor is not None:
            self.executors.launch(executor, run, group_executor is not None)
        else:
            self.launcher.launch(run)

    def _executor_task(self, framework_info: dict[str, Any], task: dict[str, Any], executor: ExecutorRun) -> TaskRun:
        """A task a custom executor runs, in the executor's sandbox."""
        return TaskRun(
            framework_id=executor.framework_id,
            task_id=str(proto.unwrap(task.get("task_id"))),
            executor_id=executor.executor_id,
            container_id=executor.container_id,
            info=task,
            user=framework_info.get("user") or None,
            role=executor.role,
            directory=executor.directory,
            executor_directory=executor.directory,
            executor=executor,
            kill_killing_state=_has_capability(framework_info, "TASK_KILLING_STATE"),
        )

    def _command_task(
        self, message: dict[str, Any], framework_info: dict[str, Any], task: dict[str, Any], executor_info: Any
    ) -> TaskRun:
        """A command or Docker task, or a member of a task group (Mesos' default executor's part, played here)."""
        framework_id = str(proto.unwrap(framework_info.get("id")))
        task_id = str(proto.unwrap(task.get("task_id")))
        grouped = message.get("executor") is not None
        executor_id = proto.unwrap((executor_info or {}).get("executor_id")) or task_id
        executor_dir = self.sandboxes.executor_directory(framework_id, executor_id, shared=grouped)
        run = TaskRun(
            framework_id=framework_id,
            task_id=task_id,
            executor_id=executor_id,
            container_id=os.path.basename(executor_dir),
            info=task,
            user=framework_info.get("user") or None,
            role=_role(message, framework_info),
            directory=os.path.join(executor_dir, "tasks", task_id) if grouped else executor_dir,
            executor_directory=executor_dir,
            kill_killing_state=_has_capability(framework_info, "TASK_KILLING_STATE"),
        )
        if grouped:
            members = self.runs.of_executor(framework_id, executor_id)
            run.group = members[0].group if members and members[0].group is not None else []
            run.group.append(run)
        return run

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        self.runs.acknowledge(framework_id, task_id, status_uuid)

    # ------------------------------------------------------------------ kill, shutdown, messages

    def kill(self, framework_id: str, task_id: str, kill_policy: Any = None) -> bool:
        """Kill a task; one the agent does not have is answered TASK_LOST, as the Mesos agent does."""
        run = self.runs.get(framework_id, task_id)
        if run is None:
            self.runs.updates.enqueue(
                framework_id,
                proto.task_status(
                    task_id,
                    "TASK_LOST",
                    agent_id=self.id,
                    source="SOURCE_AGENT",
                    reason="REASON_TASK_UNKNOWN",
                    message="Cannot find task to kill",
                ),
            )
            return False
        if run.executor is not None:
            run.kill_requested = True
            self.executors.kill_task(run, kill_policy)
            return True
        grace = kill_grace_of(kill_policy)
        if grace is None:
            grace = kill_grace_of(run.info.get("kill_policy"))
        self.launcher.kill(run, grace)
        return True

    def shutdown_framework(self, framework_id: str) -> None:
        for run in self.runs.active():
            if run.framework_id != framework_id:
                continue
            if run.executor is None:
                self.launcher.kill(run, reason="REASON_FRAMEWORK_REMOVED")
            else:
                run.kill_requested = True
        for executor in self.executors.all():
            if executor.framework_id == framework_id:
                self.executors.shutdown(executor, "REASON_FRAMEWORK_REMOVED")
        self.runs.updates.forget_framework(framework_id)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        executor = self.executors.get(framework_id, executor_id)
        if executor is not None:
            for run in list(executor.tasks.values()):
                run.kill_requested = True
            self.executors.shutdown(executor, "REASON_EXECUTOR_TERMINATED")
            return
        for run in self.runs.of_executor(framework_id, executor_id):
            self.launcher.kill(run, reason="REASON_EXECUTOR_TERMINATED")

    def drain(self, config: dict[str, Any]) -> None:
        """DRAIN_AGENT (Mesos' Slave::drain): kill every task, each with its kill policy's grace period capped by
        ``max_grace_period``, updates saying REASON_AGENT_DRAINING; tasks launched meanwhile are dropped. The
        drain ends once no task is left (the master decides DRAINED when their ends are acknowledged)."""
        if self.drain_config is not None:
            self.drain_config = config
            return
        self.drain_config = config
        nanos = (config.get("max_grace_period") or {}).get("nanoseconds")
        cap = nanos / 1e9 if isinstance(nanos, int | float) else None
        log.info("draining: killing every task (max grace period %s)", "none" if cap is None else f"{cap:g}s")
        for run in self.runs.active():
            grace = kill_grace_of(run.info.get("kill_policy"))
            if cap is not None and (grace is None or grace > cap):
                grace = cap
            if run.executor is not None:
                run.kill_requested = True
                policy = {"grace_period": {"nanoseconds": int(grace * 1e9)}} if grace is not None else None
                self.executors.kill_task(run, policy)
            else:
                self.launcher.kill(run, grace, reason="REASON_AGENT_DRAINING")
        threading.Thread(target=self._drained, name="agent-drain", daemon=True).start()

    def _drained(self) -> None:
        while self.runs.active() and not self._ending.is_set():
            time.sleep(0.2)
        self.drain_config = None
        log.info("drained: no task left")

    def master_shutdown(self, message: str) -> None:
        """The master removed this agent (its machine went DOWN, or it was marked gone; Mesos' ShutdownMessage):
        every task and executor is killed and their update streams dropped, since the master has already ended
        those tasks. The agent keeps asking to register, and is admitted once its machine is UP again."""
        if not self._removed.acquire(blocking=False):
            return
        try:
            active, executors = self.runs.active(), self.executors.all()
            if not active and not executors:
                return
            log.warning("the master shut this agent down (%s): killing every task", message)
            killed, grace = self._kill_everything()
            if not _wait_exited(killed, grace + 2.0):
                _wait_exited(self._destroy(lambda _: True), DESTROY_WAIT)
            for framework in self.frameworks.all():
                framework_id = proto.unwrap(framework.get("id"))
                if framework_id:
                    self.runs.updates.forget_framework(framework_id)
        finally:
            self._removed.release()

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> bool:
        """Scheduler → executor; command tasks have no executor to hand it to (dropped, as in Mesos)."""
        return self.executors.framework_message(framework_id, executor_id, data)

    # ------------------------------------------------------------------ reads

    def sandbox_paths(self) -> dict[str, str]:
        """The virtual ``/frameworks/<fw>/executors/<ex>/runs/latest`` paths the UI and tools use."""
        active, completed = self.runs.snapshot()
        return virtual_paths(completed + active, self.executors.all())


def _wait_exited(containers: list[Container], timeout: float) -> bool:
    """Whether every container ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    return all(container.exited.wait(max(0.0, deadline - time.monotonic())) for container in containers)


def _role(message: dict[str, Any], framework_info: dict[str, Any]) -> str:
    return str(message.get("role") or framework_info.get("role") or "*")


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
