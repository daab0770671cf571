"""Runs command tasks: sandbox, fetch, fork into a process group, wait, kill with a grace period.

This plays the part of Mesos' command executor (src/launcher/executor.cpp) inside the agent: the task's process is
a session leader, so a kill reaches everything it started (SIGTERM to the group, SIGKILL after the grace period),
and its exit status becomes the terminal state.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesolite.agent.fetcher import FetchError, fetch_all
from mesolite.core import protocol as proto

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE = 3.0

# Called with (run, state, reason, message) for every state change the task goes through.
Reporter = Callable[["TaskRun", str, str | None, str | None], None]


@dataclass
class TaskRun:
    framework_id: str
    task_id: str
    executor_id: str
    container_id: str
    info: dict[str, Any]
    role: str
    directory: str
    executor_directory: str
    kill_killing_state: bool = False
    user: str | None = None
    statuses: list[dict[str, Any]] = field(default_factory=list)
    state: str = "TASK_STAGING"
    process: subprocess.Popen[bytes] | None = None
    kill_requested: bool = False
    kill_reason: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    group: list[TaskRun] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def terminal(self) -> bool:
        return proto.is_terminal(self.state)


class Launcher:
    def __init__(self, report: Reporter, env: Callable[[TaskRun], dict[str, str]], switch_user: bool = True) -> None:
        self._report = report
        self._env = env
        self._switch_user = switch_user

    def launch(self, run: TaskRun) -> None:
        """Everything up to the fork happens on a worker thread, so the agent's handler answers at once."""
        threading.Thread(target=self._run, args=(run,), name=f"task-{run.task_id}", daemon=True).start()

    def _run(self, run: TaskRun) -> None:
        try:
            os.makedirs(run.directory, exist_ok=True)
            self._report(run, "TASK_STARTING", None, None)
            command = run.info.get("command") or {}
            try:
                fetch_all([u for u in command.get("uris") or [] if isinstance(u, dict)], run.directory)
            except FetchError as exc:
                self._report(run, "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch container: {exc}")
                return
            with run._lock:
                if run.kill_requested:
                    self._report(run, "TASK_KILLED", run.kill_reason, "Task killed before it started")
                    return
                try:
                    run.process = self._spawn(run, command)
                except (OSError, ValueError, KeyError) as exc:
                    self._report(run, "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch: {exc}")
                    return
            self._report(run, "TASK_RUNNING", None, None)
            returncode = run.process.wait()
            self._finished(run, returncode)
        except Exception as exc:  # noqa: BLE001 - a launch bug must still end in a terminal state
            log.exception("launching task %s failed", run.task_id)
            if not run.terminal:
                self._report(run, "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", f"Agent error: {exc}")

    def _spawn(self, run: TaskRun, command: dict[str, Any]) -> subprocess.Popen[bytes]:
        env = self._env(run)
        for variable in (command.get("environment") or {}).get("variables") or []:
            if isinstance(variable, dict) and variable.get("type", "VALUE") == "VALUE" and "name" in variable:
                env[str(variable["name"])] = str(variable.get("value", ""))
        value = command.get("value")
        if command.get("shell", True):
            if not isinstance(value, str) or not value:
                raise ValueError("CommandInfo.value is required when shell is true")
            argv, executable = ["/bin/sh", "-c", value], "/bin/sh"
        else:
            arguments = [str(a) for a in command.get("arguments") or []]
            executable = value if isinstance(value, str) and value else (arguments[0] if arguments else "")
            if not executable:
                raise ValueError("CommandInfo needs 'value' or 'arguments' when shell is false")
            argv = arguments or [executable]
        user = command.get("user") or run.user
        preexec = self._user_switch(user) if user else None
        stdout = open(os.path.join(run.directory, "stdout"), "ab")  # noqa: SIM115 - handed to the child
        stderr = open(os.path.join(run.directory, "stderr"), "ab")  # noqa: SIM115
        try:
            return subprocess.Popen(
                argv,
                executable=executable,
                cwd=run.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
            )
        finally:
            stdout.close()
            stderr.close()

    def _user_switch(self, user: str) -> Callable[[], None] | None:
        """Run as the task's user when we are root and it differs (Mesos --switch_user, default true)."""
        if not self._switch_user or os.geteuid() != 0:
            return None
        entry = pwd.getpwnam(user)  # KeyError: the user does not exist here -> the task fails to launch
        if entry.pw_uid == 0:
            return None

        def switch() -> None:
            os.initgroups(entry.pw_name, entry.pw_gid)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

        return switch

    def _finished(self, run: TaskRun, returncode: int) -> None:
        if run.kill_requested:
            signame = _signal_name(-returncode) if returncode < 0 else None
            message = (
                f"Command terminated with signal {signame}" if signame else f"Command exited with status {returncode}"
            )
            self._report(run, "TASK_KILLED", run.kill_reason, message)
        elif returncode == 0:
            self._report(run, "TASK_FINISHED", None, "Command exited with status 0")
        elif returncode < 0:
            self._report(
                run,
                "TASK_FAILED",
                "REASON_COMMAND_EXECUTOR_FAILED",
                f"Command terminated with signal {_signal_name(-returncode)}",
            )
        else:
            self._report(
                run,
                "TASK_FAILED",
                "REASON_COMMAND_EXECUTOR_FAILED",
                f"Command exited with status {returncode}",
            )

    def kill(self, run: TaskRun, grace: float | None = None, reason: str | None = None) -> None:
        """SIGTERM the task's whole process group now, SIGKILL it after the grace period."""
        with run._lock:
            if run.terminal or run.kill_requested:
                return
            run.kill_requested = True
            run.kill_reason = reason
            process = run.process
        if process is None:
            return  # not forked yet: _run sees kill_requested and reports TASK_KILLED
        if run.kill_killing_state:
            self._report(run, "TASK_KILLING", reason, None)
        _signal_group(process, signal.SIGTERM)
        grace = DEFAULT_KILL_GRACE if grace is None else grace

        def escalate() -> None:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                time.sleep(0.05)
            # The leader may be gone while children it left behind in the group still run.
            _signal_group(process, signal.SIGKILL)

        threading.Thread(target=escalate, name=f"kill-{run.task_id}", daemon=True).start()

    def destroy(self, run: TaskRun) -> None:
        """SIGKILL the task's process group at once (the agent is going away)."""
        with run._lock:
            run.kill_requested = True
            process = run.process
        if process is not None:
            _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not permitted to signal process group %s", process.pid)


def _signal_name(number: int) -> str:
    try:
        return signal.strsignal(number) or f"signal {number}"
    except ValueError:
        return f"signal {number}"


def kill_grace_of(policy: Any) -> float | None:
    """``kill_policy.grace_period.nanoseconds`` in seconds, if given."""
    if isinstance(policy, dict):
        nanos = (policy.get("grace_period") or {}).get("nanoseconds")
        if isinstance(nanos, int | float):
            return max(0.0, nanos / 1e9)
    return None
