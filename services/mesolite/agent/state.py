"""The agent's state: its registration with the master, the tasks and executors it runs, their status update
streams, and the checkpoint that lets a restarted agent take them all back.

One ``Agent`` object owns everything behind one lock and runs its loops: the master link (register, heartbeat,
re-register when the master no longer knows it), the status update manager, the container watcher and the sandbox
garbage collector. Running processes is the containerizer's job (containerizer.py), command and Docker tasks the
launcher's (launcher.py), custom executors the executor manager's (executors.py); this module decides what to
launch, reports what happened and recovers after a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import requests

from mesolite import MESOS_VERSION
from mesolite.agent.cgroups import create_isolator
from mesolite.agent.checkpoint import Checkpoint, destroy_container
from mesolite.agent.config import AgentConfig
from mesolite.agent.containerizer import Container, Containerizer, Termination
from mesolite.agent.docker_containerizer import DockerContainerizer
from mesolite.agent.executors import ExecutorManager, ExecutorRun
from mesolite.agent.fetcher import FetcherCache
from mesolite.agent.gc import SandboxGC
from mesolite.agent.launcher import Launcher, TaskRun, kill_grace_of
from mesolite.agent.status import StatusUpdateManager
from mesolite.core import protocol as proto
from mesolite.core.resources import ResourceError, Resources
from mesolite.core.scheduler_client import MasterLocator, SchedulerError

log = logging.getLogger(__name__)

COMPLETED_TASKS_KEPT = 1000


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
        self._locator: MasterLocator | None = None
        self._heartbeat_interval = 15.0
        self.checkpoint = Checkpoint(config.work_dir)
        self.isolator = create_isolator(config.isolation, config.cgroups_root, config.cgroups_enable_cfs)
        docker = (
            DockerContainerizer(config.docker_socket, config.work_dir) if "docker" in config.containerizers else None
        )
        self.containerizer = Containerizer(self.checkpoint, self.isolator, self._container_exited, docker)
        self.cache = FetcherCache(
            config.fetcher_cache_dir or os.path.join(config.work_dir, "fetch"), config.fetcher_cache_size
        )
        self.updates = StatusUpdateManager(
            self._send_update, retry_min=config.status_retry_min, on_acknowledged=self._acknowledged
        )
        self.launcher = Launcher(self.containerizer, self.report, self._task_env, self.cache, config.switch_user)
        self.executors = ExecutorManager(self)
        self.gc = SandboxGC(
            os.path.join(config.work_dir, "slaves"),
            self._live_directories,
            config.gc_delay,
            config.gc_disk_headroom,
            config.disk_watch_interval,
        )
        self._checkpoint_dirs: dict[tuple[str, str], str] = {}
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        os.makedirs(self.config.work_dir, exist_ok=True)
        if self.isolator.name == "posix":
            log.warning("isolation is posix/cpu,posix/mem: resource limits are accounted, not enforced")
        else:
            log.info("isolation: cgroups (%s)", type(self.isolator).__name__)
        self.containerizer.start()
        self.recover()
        self.updates.start()
        self.gc.start()
        self._thread = threading.Thread(target=self._master_loop, name="agent-master-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A graceful stop (SIGTERM) destroys every container, so that stopping an agent never leaves processes
        nobody accounts for (the demo's Ctrl-C, test fixtures, ``systemctl stop``); their terminal updates are
        checkpointed and sent by the next agent. Tasks survive only an agent that dies (``kill -9``, a crash), which
        is what recovery is for. Mesos' agent keeps checkpointing frameworks' executors on SIGTERM too; here that
        would leave every Marathon task (Marathon checkpoints) running after the demo stops."""
        self._stop.set()
        doomed: list[Container] = []
        with self._lock:
            runs = list(self.tasks.values())
        for run in runs:
            if run.executor is None and run.container is not None:
                doomed.append(run.container)
                self.launcher.destroy(run)
        for executor in self.executors.all():
            if executor.container is not None:
                doomed.append(executor.container)
                self.containerizer.destroy(executor.container)
        deadline = time.monotonic() + 5
        for container in doomed:  # let the watcher record their ends and clean their cgroups up
            container.exited.wait(max(0.0, deadline - time.monotonic()))
        self.containerizer.stop()
        self.updates.stop()
        self.gc.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._locator is not None:
            self._locator.close()

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.config.ip}:{self.config.port}"

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    def wait_registered(self, timeout: float) -> bool:
        return self._registered.wait(timeout)

    def checkpointing(self, framework_id: str) -> bool:
        return bool(self.frameworks.get(framework_id, {}).get("checkpoint"))

    def agent_info(self) -> dict[str, Any]:
        return {
            **({"id": proto.wrap(self.id)} if self.id else {}),
            "hostname": self.config.advertised_hostname,
            "port": self.config.port,
            "resources": self.config.resources.to_v1(),
            "attributes": self.config.attributes.to_v1(),
        }

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
                    f"{self.master_url()}/master/internal/heartbeat",
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
        response = self._session.post(f"{self.master_url()}/master/internal/register", json=body, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"master answered {response.status_code}: {response.text[:200]}")
        answer = response.json()
        with self._lock:
            self.id = answer["agent_id"]["value"]
            self.master_info = answer.get("master_info")
            self._heartbeat_interval = float(answer.get("heartbeat_interval_seconds", 15.0))
        self.checkpoint.save_agent(self.id, body["agent_info"])
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
            f"{self.master_url()}/master/internal/status",
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

    def executor_message(self, framework_id: str, executor_id: str, data: str) -> None:
        """Executor → scheduler: through the master, which relays it as a MESSAGE event."""
        try:
            self._session.post(
                f"{self.master_url()}/master/internal/message",
                json={
                    "framework_id": proto.wrap(framework_id),
                    "agent_id": proto.wrap(self.id or ""),
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
            "agent_id": proto.wrap(self.id or ""),
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
        """The leading master: fixed by ``--master host:port``, or followed in ZooKeeper with ``--master zk://``.
        No known leader reads as a connection failure, which every caller already retries."""
        try:
            if self._locator is None:
                # Built on first use, in the serving process (a ZooKeeper session must not be forked); ZooKeeper
                # not answering yet is retried like any unreachable master.
                self._locator = MasterLocator(self.config.master)
            return self._locator.url()
        except SchedulerError as exc:
            raise requests.ConnectionError(exc.message) from None
        except Exception as exc:  # noqa: BLE001 - e.g. kazoo's timeout when ZooKeeper is not up yet
            raise requests.ConnectionError(f"cannot reach ZooKeeper for {self.config.master}: {exc}") from None

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
        user = framework_info.get("user") or None
        executor_info = group_executor or task.get("executor")
        custom = isinstance(executor_info, dict) and (
            group_executor is None or (executor_info.get("type") == "CUSTOM" and executor_info.get("command"))
        )
        with self._lock:
            self.frameworks[framework_id] = framework_info
            if framework_info.get("checkpoint") and self.id:
                self.checkpoint.save_framework(self.id, framework_id, framework_info)
            if (framework_id, task_id) in self.tasks:
                return  # a re-delivered launch
            executor: ExecutorRun | None = None
            if custom:
                assert isinstance(executor_info, dict)
                executor = self.executors.executor_for(framework_id, executor_info, role, user)
                run = TaskRun(
                    framework_id=framework_id,
                    task_id=task_id,
                    executor_id=executor.executor_id,
                    container_id=executor.container_id,
                    info=task,
                    user=user,
                    role=role,
                    directory=executor.directory,
                    executor_directory=executor.directory,
                    executor=executor,
                    kill_killing_state=_has_capability(framework_info, "TASK_KILLING_STATE"),
                )
            else:
                executor_id = proto.unwrap((executor_info or {}).get("executor_id")) or task_id
                executor_dir = self._executor_directory(framework_id, executor_id, group_executor is not None)
                directory = os.path.join(executor_dir, "tasks", task_id) if group_executor is not None else executor_dir
                run = TaskRun(
                    framework_id=framework_id,
                    task_id=task_id,
                    executor_id=executor_id,
                    container_id=os.path.basename(executor_dir),
                    info=task,
                    user=user,
                    role=role,
                    directory=directory,
                    executor_directory=executor_dir,
                    kill_killing_state=_has_capability(framework_info, "TASK_KILLING_STATE"),
                )
                if group_executor is not None:
                    group = [
                        r
                        for r in self.tasks.values()
                        if r.framework_id == framework_id and r.executor_id == executor_id
                    ]
                    run.group = group[0].group if group and group[0].group is not None else []
                    run.group.append(run)
            if framework_info.get("checkpoint") and self.id:
                run.checkpoint_dir = self.checkpoint.task_dir(
                    self.id, framework_id, run.executor_id, run.container_id, task_id
                )
                self.checkpoint.save_task(run.checkpoint_dir, run.record())
                self._checkpoint_dirs[(framework_id, task_id)] = run.checkpoint_dir
            self.tasks[(framework_id, task_id)] = run
        if executor is not None:
            self.executors.launch(executor, run, group_executor is not None)
        else:
            self.launcher.launch(run)

    def new_run_directory(self, framework_id: str, executor_id: str) -> str:
        return self._executor_directory(framework_id, executor_id, shared=False)

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

    def executor_env(
        self, framework_id: str, executor_id: str, directory: str, container_id: str, role: str
    ) -> dict[str, str]:
        """The environment Mesos gives an executor (src/slave/slave.cpp executorEnvironment())."""
        checkpoint = self.checkpointing(framework_id)
        env = dict(os.environ)
        env.update(
            {
                "MESOS_FRAMEWORK_ID": framework_id,
                "MESOS_EXECUTOR_ID": executor_id,
                "MESOS_DIRECTORY": directory,
                "MESOS_SANDBOX": directory,
                "MESOS_AGENT_ID": self.id or "",
                "MESOS_SLAVE_ID": self.id or "",
                "MESOS_SLAVE_PID": self.pid,
                "MESOS_AGENT_ENDPOINT": f"{self.config.ip}:{self.config.port}",
                "MESOS_CONTAINER_ID": container_id,
                "MESOS_CHECKPOINT": "1" if checkpoint else "0",
                "MESOS_HTTP_COMMAND_EXECUTOR": "0",
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": f"{self.config.executor_shutdown_grace_period:g}secs",
                "MESOS_ALLOCATION_ROLE": role,
                "LIBPROCESS_PORT": "0",
            }
        )
        if checkpoint:
            env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "2secs"
        return env

    def _task_env(self, run: TaskRun) -> dict[str, str]:
        env = self.executor_env(run.framework_id, run.executor_id, run.executor_directory, run.container_id, run.role)
        env.update({"MESOS_SANDBOX": run.directory, "MESOS_TASK_ID": run.task_id})
        return env

    # ------------------------------------------------------------------ status updates

    def report(
        self, run: TaskRun, state: str, reason: str | None = None, message: str | None = None, **extra: Any
    ) -> None:
        """A state change the agent itself observed (command, Docker and group tasks; executor failures)."""
        status = proto.task_status(
            run.task_id,
            state,
            agent_id=self.id,
            executor_id=run.executor_id if run.executor_id != run.task_id else None,
            source="SOURCE_EXECUTOR" if run.executor is None else "SOURCE_AGENT",
            reason=reason,
            message=message,
            **extra,
        )
        if state == "TASK_RUNNING":
            status["container_status"] = self._container_status(run)
        self._record(run, status)

    def executor_update(self, run: TaskRun, status: dict[str, Any]) -> None:
        """A status update a custom executor sent (its uuid is kept: the scheduler acknowledges that one)."""
        status = dict(status)
        status["task_id"] = proto.wrap(run.task_id)
        status.setdefault("timestamp", time.time())
        status.setdefault("source", "SOURCE_EXECUTOR")
        status["executor_id"] = proto.wrap(run.executor_id)
        if self.id:
            status["agent_id"] = proto.wrap(self.id)
        if status.get("state") == "TASK_RUNNING" and "container_status" not in status:
            status["container_status"] = self._container_status(run)
        self._record(run, status)

    def _container_status(self, run: TaskRun) -> dict[str, Any]:
        container = run.container or (run.executor.container if run.executor is not None else None)
        ips = (container.ips if container is not None else []) or [self.config.ip]
        out: dict[str, Any] = {
            "container_id": {"value": run.container_id},
            "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": ip} for ip in ips]}],
        }
        if run.pid:
            out["executor_pid"] = run.pid
        return out

    def _record(self, run: TaskRun, status: dict[str, Any]) -> None:
        """Every state change of a task becomes an update on its stream, checkpointed first when the framework
        checkpoints (so a restarted agent resends what the scheduler has not acknowledged)."""
        state = str(status["state"])
        with self._lock:
            if run.terminal:
                return
            run.state = state
            entry = {k: status[k] for k in ("state", "timestamp", "container_status", "healthy") if k in status}
            run.statuses.append(entry)
            if run.checkpoint_dir is not None:
                self.checkpoint.append_update(run.checkpoint_dir, {"status": status})
            if run.terminal:
                run.finished = time.time()
                _touch(run.executor_directory)  # the sandbox's garbage collection delay starts now
                self.tasks.pop((run.framework_id, run.task_id), None)
                self.completed.append(run)
                del self.completed[:-COMPLETED_TASKS_KEPT]
            siblings = [r for r in run.group or [] if r is not run and not r.terminal]
        self.updates.enqueue(run.framework_id, status)
        if state in ("TASK_FAILED", "TASK_KILLED") and siblings:
            # Like Mesos' default executor: one task of a group failing or being killed takes the group down.
            for sibling in siblings:
                self.launcher.kill(sibling, reason="REASON_TASK_GROUP_INVALID" if state == "TASK_FAILED" else None)

    def acknowledge(self, framework_id: str, task_id: str, status_uuid: str) -> None:
        self.updates.acknowledge(framework_id, task_id, status_uuid)

    def _acknowledged(self, framework_id: str, task_id: str, status_uuid: str, remaining: int) -> None:
        with self._lock:
            task_dir = self._checkpoint_dirs.get((framework_id, task_id))
            live = (framework_id, task_id) in self.tasks
            if task_dir is None:
                return
            if not live and remaining == 0:
                # Terminal and acknowledged: nothing left to recover.
                del self._checkpoint_dirs[(framework_id, task_id)]
                self.checkpoint.remove_task(task_dir)
            else:
                self.checkpoint.append_update(task_dir, {"ack": status_uuid})

    # ------------------------------------------------------------------ containers ending

    def _container_exited(self, container: Container, termination: Termination) -> None:
        owner = container.owner
        if isinstance(owner, TaskRun):
            self.launcher.finished(owner, termination)
        elif isinstance(owner, ExecutorRun):
            self.executors.exited(owner, termination)

    # ------------------------------------------------------------------ kill, shutdown, messages

    def kill(self, framework_id: str, task_id: str, kill_policy: Any = None) -> bool:
        with self._lock:
            run = self.tasks.get((framework_id, task_id))
        if run is None:
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
        with self._lock:
            runs = [r for r in self.tasks.values() if r.framework_id == framework_id]
        for run in runs:
            if run.executor is None:
                self.launcher.kill(run, reason="REASON_FRAMEWORK_REMOVED")
            else:
                run.kill_requested = True
        for executor in self.executors.all():
            if executor.framework_id == framework_id:
                self.executors.shutdown(executor, "REASON_FRAMEWORK_REMOVED")
        self.updates.forget_framework(framework_id)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        executor = self.executors.get(framework_id, executor_id)
        if executor is not None:
            for run in list(executor.tasks.values()):
                run.kill_requested = True
            self.executors.shutdown(executor, "REASON_EXECUTOR_TERMINATED")
            return
        with self._lock:
            runs = [r for r in self.tasks.values() if r.framework_id == framework_id and r.executor_id == executor_id]
        for run in runs:
            self.launcher.kill(run, reason="REASON_EXECUTOR_TERMINATED")

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> bool:
        """Scheduler → executor; command tasks have no executor to hand it to (dropped, as in Mesos)."""
        return self.executors.framework_message(framework_id, executor_id, data)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Take back what the previous agent process left (Mesos' Slave::recover): the agent id, checkpointed
        frameworks, executors and tasks with their unacknowledged updates, and the containers still running.
        Containers of frameworks that do not checkpoint are destroyed, as are all of them with --recover=cleanup."""
        records = {str(r["id"]): r for r in self.checkpoint.containers()}
        agent_id = self.checkpoint.recovered_agent_id() if self.config.recover == "reconnect" else None
        if agent_id is not None:
            self.id = agent_id
            self.frameworks.update(self.checkpoint.frameworks(agent_id))
            self._recover_executors(agent_id, records)
            self._recover_tasks(agent_id, records)
        for record in records.values():
            log.info("destroying container %s left by the previous agent (not recoverable)", record.get("id"))
            destroy_container(self.checkpoint, record)
        if agent_id is not None:
            log.info("recovered agent %s: %d tasks, %d executors", agent_id, len(self.tasks), len(self.executors.all()))

    def _recover_executors(self, agent_id: str, records: dict[str, dict[str, Any]]) -> None:
        for record in self.checkpoint.executors(agent_id):
            container_record = records.pop(str(record.get("container_id")), None)
            if container_record is None or record.get("framework_id") not in self.frameworks:
                continue
            executor = ExecutorRun(
                framework_id=str(record["framework_id"]),
                executor_id=str(record["executor_id"]),
                info=record.get("info") or {},
                container_id=str(record["container_id"]),
                directory=str(record.get("directory", "")),
                role=str(record.get("role") or "*"),
                checkpoint=True,
                user=record.get("user"),
                launched=float(record.get("launched") or time.time()),
            )
            self.executors.executors[executor.key] = executor
            container, termination = self.containerizer.recover(container_record, executor)
            executor.container = container
            if termination is None:
                timeout = self.config.executor_reregistration_timeout
                threading.Timer(timeout, self.executors.reregistration_timeout, args=(executor, timeout)).start()
            else:
                executor.termination = None
                threading.Thread(target=self.executors.exited, args=(executor, termination), daemon=True).start()

    def _recover_tasks(self, agent_id: str, records: dict[str, dict[str, Any]]) -> None:
        for task_dir, record, entries in self.checkpoint.tasks(agent_id):
            framework_id, task_id = str(record.get("framework_id")), str(record.get("task_id"))
            statuses = [e["status"] for e in entries if isinstance(e.get("status"), dict)]
            acknowledged = {e["ack"] for e in entries if "ack" in e}
            unacknowledged = [s for s in statuses if s.get("uuid") not in acknowledged]
            run = TaskRun(
                framework_id=framework_id,
                task_id=task_id,
                executor_id=str(record.get("executor_id")),
                container_id=str(record.get("container_id")),
                info=record.get("info") or {},
                role=str(record.get("role") or "*"),
                directory=str(record.get("directory", "")),
                executor_directory=str(record.get("executor_directory", "")),
                kill_killing_state=bool(record.get("kill_killing_state")),
                user=record.get("user"),
                checkpoint_dir=task_dir,
                launched=float(record.get("launched") or time.time()),
            )
            run.started.set()
            for status in statuses:
                run.state = str(status.get("state"))
                run.statuses.append(
                    {k: status[k] for k in ("state", "timestamp", "container_status", "healthy") if k in status}
                )
            if run.terminal and not unacknowledged:
                self.checkpoint.remove_task(task_dir)
                continue
            self._checkpoint_dirs[(framework_id, task_id)] = task_dir
            for status in unacknowledged:
                self.updates.enqueue(framework_id, status)
            if run.terminal:
                self.completed.append(run)
                continue
            self.tasks[(framework_id, task_id)] = run
            if record.get("custom_executor"):
                self._recover_executor_task(run)
                continue
            container_id = run.container_id if not record.get("group") else f"{run.container_id}.{task_id}"
            container_record = records.pop(container_id, None)
            if container_record is None:
                self.report(
                    run, "TASK_FAILED", "REASON_AGENT_RESTARTED", "The agent restarted while launching the task"
                )
                continue
            container, termination = self.containerizer.recover(container_record, run)
            run.container = container
            if termination is not None:
                self.launcher.finished(run, termination)
            elif run.state == "TASK_RUNNING":
                self.launcher.start_health_checks(run)

    def _recover_executor_task(self, run: TaskRun) -> None:
        executor = self.executors.get(run.framework_id, run.executor_id)
        if executor is None:
            self.report(
                run, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", "Executor terminated while the agent was down"
            )
            return
        run.executor = executor
        with executor.lock:
            executor.tasks[run.task_id] = run
            if run.state == "TASK_STAGING":
                executor.queued.append(run)

    # ------------------------------------------------------------------ reads

    def runs(self) -> tuple[list[TaskRun], list[TaskRun]]:
        with self._lock:
            return list(self.tasks.values()), list(self.completed)

    def _live_directories(self) -> set[str]:
        active, _ = self.runs()
        live = {r.executor_directory for r in active}
        live.update(e.directory for e in self.executors.all() if e.state != "TERMINATED")
        return live

    def sandbox_paths(self) -> dict[str, str]:
        """The virtual ``/frameworks/<fw>/executors/<ex>/runs/latest`` paths the UI and tools use."""
        active, completed = self.runs()
        paths: dict[str, str] = {}
        for run in completed + active:
            paths[f"/frameworks/{run.framework_id}/executors/{run.executor_id}/runs/latest"] = run.executor_directory
            paths[f"/frameworks/{run.framework_id}/executors/{run.executor_id}/runs/{run.container_id}"] = (
                run.executor_directory
            )
        for executor in self.executors.all():
            base = f"/frameworks/{executor.framework_id}/executors/{executor.executor_id}/runs"
            paths[f"{base}/latest"] = executor.directory
            paths[f"{base}/{executor.container_id}"] = executor.directory
        return paths


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


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
