"""Sandboxes: where a run lives on disk and the ``MESOS_*`` environment it starts with.

Layout (Mesos' src/slave/paths.cpp): ``<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>``,
with ``latest`` links at the run and agent levels. Tasks of one task group share their executor's run directory,
each in ``tasks/<task_id>`` below it. The environment is Mesos' executorEnvironment() (src/slave/slave.cpp).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from mesolite.agent.runs import ExecutorRun, Frameworks, Runs, TaskRun
from mesolite.core import protocol as proto

log = logging.getLogger(__name__)


class Sandboxes:
    def __init__(
        self,
        work_dir: str,
        agent_id: Callable[[], str | None],
        runs: Runs,
        frameworks: Frameworks,
        endpoint: tuple[str, int],
        shutdown_grace_period: float,
    ) -> None:
        self.work_dir = work_dir
        self.slaves_dir = os.path.join(work_dir, "slaves")
        self._agent_id = agent_id
        self._runs = runs
        self._frameworks = frameworks
        self._ip, self._port = endpoint
        self._grace = shutdown_grace_period

    # ------------------------------------------------------------------ directories

    def new_run(self, framework_id: str, executor_id: str) -> str:
        return self.executor_directory(framework_id, executor_id, shared=False)

    def executor_directory(self, framework_id: str, executor_id: str, shared: bool) -> str:
        """A new run directory of the executor, or (``shared``, a task group) the one its live tasks use."""
        runs = os.path.join(
            self.slaves_dir,
            self._agent_id() or "unregistered",
            "frameworks",
            framework_id,
            "executors",
            executor_id,
            "runs",
        )
        if shared:
            latest = os.path.join(runs, "latest")
            if os.path.islink(latest) and self._runs.of_executor(framework_id, executor_id):
                return os.path.join(runs, os.readlink(latest))
        container_id = proto.new_id()
        path = os.path.join(runs, container_id)
        os.makedirs(path, exist_ok=True)
        link_latest(runs, container_id)
        return path

    def registered(self, agent_id: str) -> None:
        """``slaves/latest`` names the agent id now in use."""
        link_latest(self.slaves_dir, agent_id)

    # ------------------------------------------------------------------ environment

    def executor_env(
        self, framework_id: str, executor_id: str, directory: str, container_id: str, role: str
    ) -> dict[str, str]:
        """The environment Mesos gives an executor (src/slave/slave.cpp executorEnvironment())."""
        checkpoint = self._frameworks.checkpointing(framework_id)
        agent_id = self._agent_id() or ""
        env = dict(os.environ)
        env.update(
            {
                "MESOS_FRAMEWORK_ID": framework_id,
                "MESOS_EXECUTOR_ID": executor_id,
                "MESOS_DIRECTORY": directory,
                "MESOS_SANDBOX": directory,
                "MESOS_AGENT_ID": agent_id,
                "MESOS_SLAVE_ID": agent_id,
                "MESOS_SLAVE_PID": f"slave(1)@{self._ip}:{self._port}",
                "MESOS_AGENT_ENDPOINT": f"{self._ip}:{self._port}",
                "MESOS_CONTAINER_ID": container_id,
                "MESOS_CHECKPOINT": "1" if checkpoint else "0",
                "MESOS_HTTP_COMMAND_EXECUTOR": "0",
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": f"{self._grace:g}secs",
                "MESOS_ALLOCATION_ROLE": role,
                "LIBPROCESS_PORT": "0",
            }
        )
        if checkpoint:
            env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "2secs"
        return env

    def task_env(self, run: TaskRun) -> dict[str, str]:
        env = self.executor_env(run.framework_id, run.executor_id, run.executor_directory, run.container_id, run.role)
        env.update({"MESOS_SANDBOX": run.directory, "MESOS_TASK_ID": run.task_id})
        return env


def link_latest(directory: str, target: str) -> None:
    os.makedirs(directory, exist_ok=True)
    link = os.path.join(directory, "latest")
    temporary = f"{link}.{os.getpid()}.{threading.get_ident()}"
    try:
        os.symlink(target, temporary)
        os.replace(temporary, link)
    except OSError as exc:
        log.warning("could not update %s: %s", link, exc)


def virtual_paths(runs: list[TaskRun], executors: list[ExecutorRun]) -> dict[str, str]:
    """The virtual ``/frameworks/<fw>/executors/<ex>/runs/latest`` paths the UI and tools use (later entries win)."""
    paths: dict[str, str] = {}
    for run in runs:
        paths[f"/frameworks/{run.framework_id}/executors/{run.executor_id}/runs/latest"] = run.executor_directory
        paths[f"/frameworks/{run.framework_id}/executors/{run.executor_id}/runs/{run.container_id}"] = (
            run.executor_directory
        )
    for executor in executors:
        base = f"/frameworks/{executor.framework_id}/executors/{executor.executor_id}/runs"
        paths[f"{base}/latest"] = executor.directory
        paths[f"{base}/{executor.container_id}"] = executor.directory
    return paths


def live_directories(runs: list[TaskRun], executors: list[ExecutorRun]) -> set[str]:
    """Sandboxes garbage collection must leave alone."""
    live = {r.executor_directory for r in runs}
    live.update(e.directory for e in executors if e.state != "TERMINATED")
    return live
