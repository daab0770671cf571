"""Runs command tasks and Docker tasks: sandbox, fetch, container, health checks, kill with a grace period.

This plays the part of Mesos' command executor (src/launcher/executor.cpp) and docker executor inside the agent:
each task gets a container of its own (containerizer.py) whose end becomes the task's terminal state: exit status 0
is TASK_FINISHED, anything else TASK_FAILED, a memory limitation TASK_FAILED with
``REASON_CONTAINER_LIMITATION_MEMORY``, and a kill TASK_KILLED (SIGTERM, SIGKILL after the kill policy's grace).
"""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
import threading
from collections.abc import Callable
from typing import Any, Protocol

from mesolite.agent.containerizer import Container, Containerizer, LaunchError, Termination
from mesolite.agent.docker_containerizer import DockerError
from mesolite.agent.fetcher import FetcherCache, FetchError, fetch_all
from mesolite.agent.health import HealthChecker, HealthCheckSpec
from mesolite.agent.runs import TaskRun

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE = 3.0


class Reporter(Protocol):
    """How the launcher tells the agent about a task's state changes (each becomes a status update)."""

    def __call__(
        self, run: TaskRun, state: str, reason: str | None = None, message: str | None = None, **extra: Any
    ) -> None: ...


class Launcher:
    def __init__(
        self,
        containerizer: Containerizer,
        report: Reporter,
        env: Callable[[TaskRun], dict[str, str]],
        fetcher_cache: FetcherCache | None = None,
        switch_user: bool = True,
    ) -> None:
        self.containerizer = containerizer
        self._report = report
        self._env = env
        self._cache = fetcher_cache
        self._switch_user = switch_user

    def report(
        self, run: TaskRun, state: str, reason: str | None = None, message: str | None = None, **extra: Any
    ) -> None:
        """Report a state change; like Mesos' default executor, one task of a group failing or being killed takes
        the rest of its group down."""
        self._report(run, state, reason, message, **extra)
        if state in ("TASK_FAILED", "TASK_KILLED") and run.group and run.state == state:
            for sibling in [r for r in run.group if r is not run and not r.terminal]:
                self.kill(sibling, reason="REASON_TASK_GROUP_INVALID" if state == "TASK_FAILED" else None)

    def launch(self, run: TaskRun) -> None:
        """Everything up to the running task happens on a worker thread, so the agent's handler answers at once."""
        threading.Thread(target=self._run, args=(run,), name=f"task-{run.task_id}", daemon=True).start()

    def _run(self, run: TaskRun) -> None:
        try:
            self._start(run)
        finally:
            run.started.set()

    def _start(self, run: TaskRun) -> None:
        try:
            os.makedirs(run.directory, exist_ok=True)
            self.report(run, "TASK_STARTING")
            command = run.info.get("command") or {}
            try:
                fetch_all([u for u in command.get("uris") or [] if isinstance(u, dict)], run.directory, self._cache)
            except FetchError as exc:
                self._report(
                    run,
                    "TASK_FAILED",
                    "REASON_FETCHER_FAILED",
                    f"Failed to fetch all URIs for container '{run.container_id}': {exc}",
                )
                return
            if run.kill_requested:
                self.report(run, "TASK_KILLED", run.kill_reason, "Task killed before it started")
                return
            container = self._container_for(run)
            container.owner = run
            try:
                if run.is_docker:
                    self._launch_docker(run, container, command)
                else:
                    spec = self.command_spec(
                        command, self._env(run), run.directory, run.user, run.info.get("container")
                    )
                    if spec["user"] is not None:
                        # The task runs as its user and must own its sandbox, fetched files included (Mesos chowns
                        # the sandbox the same way); otherwise it could not even write a file there.
                        _chown_tree(run.directory, spec["user"]["uid"], spec["user"]["gid"])
                    self.containerizer.launch(container, spec)
            except (LaunchError, DockerError, OSError, ValueError, KeyError) as exc:
                self.report(run, "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch container: {exc}")
                return
            with run._lock:
                run.container = container
                killed = run.kill_requested
            self.report(run, "TASK_RUNNING")
            if killed:
                self._kill_container(run, None)
            else:
                self.start_health_checks(run)
        except Exception as exc:  # a launch bug must still end in a terminal state
            log.exception("launching task %s failed", run.task_id)
            if not run.terminal:
                self.report(run, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", f"Agent error: {exc}")

    def _container_for(self, run: TaskRun) -> Container:
        resources = run.resources()
        # A command task's container is its executor's run; a task group member gets a nested one of its own.
        container_id = run.container_id if run.group is None else f"{run.container_id}.{run.task_id}"
        return Container(
            id=container_id,
            kind="docker" if run.is_docker else "command",
            framework_id=run.framework_id,
            executor_id=run.executor_id,
            task_id=run.task_id,
            directory=run.directory,
            checkpoint=run.checkpoint_dir is not None,
            cpus=resources.scalar("cpus"),
            mem=resources.scalar("mem"),
        )

    def _launch_docker(self, run: TaskRun, container: Container, command: dict[str, Any]) -> None:
        docker = self.containerizer.docker
        if docker is None:
            raise LaunchError("This agent does not run Docker containers (start it with --containerizers=mesos,docker)")
        if _has_secrets(command):  # as in Mesos; and the engine would keep the values in its container config
            raise LaunchError(
                "Environment secrets are supported by the Mesos containerizer only, not in DOCKER containers"
            )
        env = {k: v for k, v in self._env(run).items() if k.startswith(("MESOS_", "LIBPROCESS_"))}
        env.update(_command_env(command))
        with docker.launches:
            name = docker.create(
                container.id,
                run.info.get("container") or {},
                command,
                env,
                container.cpus,
                container.mem,
                run.directory,
            )
            container.docker = {"name": name, "socket": docker.socket}
            spec = {
                "kind": "docker",
                "socket": docker.socket,
                "container": name,
                "stdout": os.path.join(run.directory, "stdout"),
                "stderr": os.path.join(run.directory, "stderr"),
            }
            self.containerizer.launch(container, spec)

    def command_spec(
        self,
        command: dict[str, Any],
        env: dict[str, str],
        directory: str,
        user: str | None,
        container: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What the supervisor runs for a CommandInfo (a command task's, or a custom executor's). With a
        ContainerInfo, the containerizer's pre-exec step (images/runtime.py) gets it and the raw CommandInfo too: an
        image's entrypoint may be the command."""
        env = {**env, **_command_env(command)}
        value = command.get("value")
        extra = {"container_info": container, "command_info": command} if container or _has_secrets(command) else {}
        if _has_image(container):
            argv, executable = [], ""  # decided with the image's config
        elif command.get("shell", True):
            if not isinstance(value, str) or not value:
                raise ValueError("CommandInfo.value is required when shell is true")
            argv, executable = ["/bin/sh", "-c", value], "/bin/sh"
        else:
            arguments = [str(a) for a in command.get("arguments") or []]
            executable = value if isinstance(value, str) and value else (arguments[0] if arguments else "")
            if not executable:
                raise ValueError("CommandInfo needs 'value' or 'arguments' when shell is false")
            argv = arguments or [executable]
        return {
            **extra,
            "kind": "command",
            "argv": argv,
            "executable": executable,
            "env": env,
            "cwd": directory,
            "stdout": os.path.join(directory, "stdout"),
            "stderr": os.path.join(directory, "stderr"),
            "user": self._user(command.get("user") or user),
        }

    def user_of(self, user: str | None) -> dict[str, Any] | None:
        """The uid/gid a process of ``user`` runs as, or None to run as the agent (debug sessions use it too)."""
        return self._user(user)

    def _user(self, user: str | None) -> dict[str, Any] | None:
        """Run as the task's user when we are root and it differs (Mesos --switch_user, default true)."""
        if not user or not self._switch_user or os.geteuid() != 0:
            return None
        entry = pwd.getpwnam(user)  # KeyError: the user does not exist here -> the task fails to launch
        if entry.pw_uid == 0:
            return None
        return {"name": entry.pw_name, "uid": entry.pw_uid, "gid": entry.pw_gid}

    # ------------------------------------------------------------------ health

    def start_health_checks(self, run: TaskRun) -> None:
        check = run.info.get("health_check")
        if not isinstance(check, dict) or run.container is None:
            return
        try:
            spec = HealthCheckSpec.parse(check)
        except (ValueError, TypeError) as exc:
            log.warning("task %s: ignoring its health check: %s", run.task_id, exc)
            return
        container = run.container
        host = container.ips[0] if container.docker and container.ips else "127.0.0.1"

        def changed(healthy: bool, detail: str) -> None:
            run.healthy = healthy
            self._report(
                run,
                "TASK_RUNNING",
                "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
                None if healthy else f"{spec.describe()} failed: {detail}",
                healthy=healthy,
            )

        def failed(message: str) -> None:
            run.kill_message = f"Task killed: {message}"
            self.kill(run, None)

        run.health = HealthChecker(
            spec, host, lambda cmd, timeout: self._check_command(run, cmd, timeout), changed, failed
        )
        run.health.start(run.task_id)

    def _check_command(self, run: TaskRun, command: dict[str, Any], timeout: float) -> tuple[bool, str]:
        """COMMAND checks run where the task runs: in its sandbox with its environment, or inside its container."""
        container = run.container
        if container is not None and container.docker and self.containerizer.docker is not None:
            argv = ["/bin/sh", "-c", str(command["value"])] if command.get("shell", True) else command.get("arguments")
            result: list[Any] = []
            client = self.containerizer.docker.client()
            name = container.docker["name"]
            worker = threading.Thread(
                target=lambda: result.append(client.containers.get(name).exec_run(argv)),
                daemon=True,
            )
            worker.start()
            worker.join(timeout)
            if not result:
                return False, f"command timed out after {timeout} s"
            return result[0].exit_code == 0, f"command exited with status {result[0].exit_code}"
        spec = self.command_spec(command, self._env(run), run.directory, run.user)
        try:
            process = subprocess.Popen(
                spec["argv"],
                executable=spec["executable"],
                cwd=spec["cwd"],
                env=spec["env"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            return False, f"command could not start: {exc}"
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            return False, f"command timed out after {timeout} s"
        return code == 0, f"command exited with status {code}"

    # ------------------------------------------------------------------ ends and kills

    def finished(self, run: TaskRun, termination: Termination) -> None:
        """The task's container ended: its terminal update."""
        run.started.wait(60)
        if run.health is not None:
            run.health.stop()
        extra: dict[str, Any] = {"healthy": False} if run.healthy is False else {}
        if termination.oom:
            mem = run.resources().scalar("mem")
            used = f"{termination.max_memory_bytes / 1024 / 1024:.0f}MB" if termination.max_memory_bytes else "?"
            self._report(
                run,
                "TASK_FAILED",
                "REASON_CONTAINER_LIMITATION_MEMORY",
                f"Memory limit exceeded: Requested: {mem:.0f}MB Maximum Used: {used}",
                **extra,
            )
        elif run.kill_requested:
            message = termination.describe()
            if run.kill_message:
                message = f"{run.kill_message} ({message})"
            self.report(run, "TASK_KILLED", run.kill_reason, message, **extra)
        elif termination.succeeded:
            self.report(run, "TASK_FINISHED", None, termination.describe(), **extra)
        elif termination.error:
            self.report(run, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", termination.error, **extra)
        else:
            self.report(run, "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", termination.describe(), **extra)

    def kill(self, run: TaskRun, grace: float | None = None, reason: str | None = None) -> None:
        with run._lock:
            if run.terminal or run.kill_requested:
                return
            run.kill_requested = True
            run.kill_reason = reason
            container = run.container
        if container is None:
            return  # not running yet: _run sees kill_requested and reports TASK_KILLED
        self._kill_container(run, grace)

    def _kill_container(self, run: TaskRun, grace: float | None) -> None:
        if run.health is not None:
            run.health.stop()
        if run.kill_killing_state:
            self.report(run, "TASK_KILLING", run.kill_reason)
        if grace is None:
            grace = kill_grace_of(run.info.get("kill_policy"))
        assert run.container is not None
        self.containerizer.kill(run.container, DEFAULT_KILL_GRACE if grace is None else grace)

    def destroy(self, run: TaskRun) -> None:
        """Kill at once (the agent is going away, or recovery found a task it must not keep)."""
        with run._lock:
            run.kill_requested = True
            container = run.container
        if run.health is not None:
            run.health.stop()
        if container is not None:
            self.containerizer.destroy(container)


def _command_env(command: dict[str, Any]) -> dict[str, str]:
    env = {}
    for variable in (command.get("environment") or {}).get("variables") or []:
        if isinstance(variable, dict) and variable.get("type", "VALUE") == "VALUE" and "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env


def _has_image(container: dict[str, Any] | None) -> bool:
    return bool(container and container.get("type", "MESOS") == "MESOS" and (container.get("mesos") or {}).get("image"))


def _has_secrets(command: dict[str, Any]) -> bool:
    variables = (command.get("environment") or {}).get("variables") or []
    return any(isinstance(v, dict) and v.get("type") == "SECRET" for v in variables)


def kill_grace_of(policy: Any) -> float | None:
    """``kill_policy.grace_period.nanoseconds`` in seconds, if given."""
    if isinstance(policy, dict):
        nanos = (policy.get("grace_period") or {}).get("nanoseconds")
        if isinstance(nanos, int | float):
            return max(0.0, nanos / 1e9)
    return None


def _chown_tree(path: str, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)
