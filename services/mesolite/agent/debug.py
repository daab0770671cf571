"""Debug sessions: a process run inside a task's container for ``mesos task exec`` (Mesos'
LAUNCH_NESTED_CONTAINER_SESSION with its I/O switchboard, ``src/slave/containerizer/mesos/io/switchboard.cpp``).

A session is a nested container ``<parent>.<id>`` of a running task: its command runs in the task's sandbox, as the
task's user, with the task's environment, inside the task's cgroups; with ``tty_info`` on a pseudo-terminal. Its
output goes to every attached output stream (the launching call's first, so nothing is lost) as
``ProcessIO`` DATA records, STDOUT and STDERR (everything is STDOUT on a TTY); its input comes from one
ATTACH_CONTAINER_INPUT connection at a time. The session ends when its output reaches EOF or its launching client
goes away: the process group is killed, and its wait status stays known for WAIT_CONTAINER.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import signal
import struct
import subprocess
import termios
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesolite.agent.runs import Runs, TaskRun

log = logging.getLogger(__name__)

FINISHED_KEPT = 100
# What travels on an output queue: (STDOUT|STDERR, bytes), or None at the end of the output.
Chunk = tuple[str, bytes] | None


class DebugError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Target:
    """Where a session runs: the parent task's sandbox, user, environment and cgroups."""

    directory: str
    user: dict[str, Any] | None
    env: dict[str, str]
    cgroups: tuple[str, ...]


class Session:
    def __init__(self, container_id: str, parent: str, process: subprocess.Popen[bytes], tty_fd: int | None) -> None:
        self.container_id = container_id
        self.parent = parent
        self.process = process
        self.tty_fd = tty_fd
        self.wait_status: int | None = None
        self.exited = threading.Event()
        self.output_closed = threading.Event()
        self.input_attached = False
        self._outputs: list[queue.Queue[Chunk]] = []
        self._lock = threading.Lock()

    @property
    def tty(self) -> bool:
        return self.tty_fd is not None

    def attach_output(self) -> queue.Queue[Chunk]:
        subscriber: queue.Queue[Chunk] = queue.Queue()
        with self._lock:
            if self.output_closed.is_set():
                subscriber.put(None)
            else:
                self._outputs.append(subscriber)
        return subscriber

    def detach_output(self, subscriber: queue.Queue[Chunk]) -> None:
        with self._lock:
            if subscriber in self._outputs:
                self._outputs.remove(subscriber)

    def _broadcast(self, chunk: Chunk) -> None:
        with self._lock:
            for subscriber in self._outputs:
                subscriber.put(chunk)
            if chunk is None:
                self.output_closed.set()
                self._outputs.clear()

    def write_input(self, data: bytes) -> None:
        """STDIN data; an empty chunk closes stdin (without a TTY: with one, the client sends EOT itself)."""
        if self.tty_fd is not None:
            if data:
                os.write(self.tty_fd, data)
            return
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        if data:
            stdin.write(data)
            stdin.flush()
        else:
            stdin.close()

    def set_window_size(self, rows: int, columns: int) -> None:
        if self.tty_fd is None:
            raise DebugError(400, "Unable to set the window size: the container has no TTY")
        fcntl.ioctl(self.tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def destroy(self) -> None:
        """Kill what is left of the session's process group."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class DebugSessions:
    def __init__(
        self,
        runs: Runs,
        task_env: Callable[[TaskRun], dict[str, str]],
        user_of: Callable[[str | None], dict[str, Any] | None],
    ) -> None:
        self._runs = runs
        self._task_env = task_env
        self._user_of = user_of
        self._sessions: dict[str, Session] = {}
        self._finished: OrderedDict[str, int | None] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lookups

    def task_container(self, container_id: str) -> TaskRun | None:
        """The running task whose container (or custom executor's container) has this id."""
        for run in self._runs.active():
            if run.container_id == container_id and not run.terminal:
                return run
        return None

    def get(self, container_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(container_id)

    def known(self, container_id: str) -> bool:
        with self._lock:
            return container_id in self._sessions or container_id in self._finished

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def _target(self, run: TaskRun) -> Target:
        if run.is_docker:
            raise DebugError(400, "The provided ContainerInfo is not supported: the parent is a Docker container")
        directory = run.executor_directory if (run.group is not None or run.executor is not None) else run.directory
        env = {**self._task_env(run), "MESOS_SANDBOX": directory}
        try:
            user = self._user_of(run.user)
        except KeyError:
            raise DebugError(400, f"Failed to find user '{run.user}'") from None
        container = run.container or (run.executor.container if run.executor is not None else None)
        cgroups = tuple(container.cgroups) if container is not None and container.cgroups else ()
        return Target(directory, user, env, cgroups)

    # ------------------------------------------------------------------ launch

    def launch(self, container_id: str, parent: str, command: dict[str, Any], tty: bool) -> Session:
        """Start a session; raises DebugError with Mesos' status (202 when the id exists already)."""
        if self.known(container_id):
            raise DebugError(202, f"Container {parent}.{container_id} already exists")
        run = self.task_container(parent)
        if run is None:
            raise DebugError(400, f"Parent container {parent} does not exist")
        target = self._target(run)
        executable, argv = _argv(command)
        env = {"PATH": os.environ.get("PATH", os.defpath), **target.env, **_command_env(command)}
        tty_fd: int | None = None
        slave: int | None = None
        kwargs: dict[str, Any] = {}
        if tty:
            tty_fd, slave = os.openpty()
            kwargs.update(stdin=slave, stdout=slave, stderr=slave, preexec_fn=_take_terminal)
        else:
            kwargs.update(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if target.user is not None:
            kwargs.update(user=target.user["uid"], group=target.user["gid"], extra_groups=[])
            env.setdefault("USER", target.user["name"])
        try:
            process = subprocess.Popen(
                argv,
                executable=executable,
                cwd=target.directory,
                env=env,
                start_new_session=True,
                close_fds=True,
                **kwargs,
            )
        except OSError as exc:
            if tty_fd is not None:
                os.close(tty_fd)
            raise DebugError(400, f"Failed to launch nested container: {exc}") from None
        finally:
            if slave is not None:
                os.close(slave)
        _join_cgroups(process.pid, target.cgroups)
        session = Session(container_id, parent, process, tty_fd)
        with self._lock:
            self._sessions[container_id] = session
        log.info("debug session %s in container %s: %s", container_id, parent, argv)
        return session

    def start(self, session: Session) -> None:
        """Pump its output (once the launching stream is attached) and reap it."""
        if session.tty_fd is not None:
            readers = [threading.Thread(target=self._pump_fd, args=(session, session.tty_fd), daemon=True)]
        else:
            assert session.process.stdout is not None and session.process.stderr is not None
            readers = [
                threading.Thread(target=self._pump_pipe, args=(session, session.process.stdout, "STDOUT"), daemon=True),
                threading.Thread(target=self._pump_pipe, args=(session, session.process.stderr, "STDERR"), daemon=True),
            ]
        for reader in readers:
            reader.start()
        threading.Thread(target=self._reap, args=(session, readers), name="debug-reaper", daemon=True).start()

    @staticmethod
    def _pump_pipe(session: Session, pipe: Any, kind: str) -> None:
        while True:
            data = pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536)
            if not data:
                return
            session._broadcast((kind, data))

    @staticmethod
    def _pump_fd(session: Session, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO once the terminal's last process is gone
                return
            if not data:
                return
            session._broadcast(("STDOUT", data))

    def _reap(self, session: Session, readers: list[threading.Thread]) -> None:
        returncode = session.process.wait()
        for reader in readers:
            reader.join(timeout=2.0)
        session._broadcast(None)
        session.wait_status = returncode << 8 if returncode >= 0 else -returncode
        session.exited.set()
        session.destroy()
        if session.tty_fd is not None:
            try:
                os.close(session.tty_fd)
            except OSError:
                pass
        with self._lock:
            self._sessions.pop(session.container_id, None)
            self._finished[session.container_id] = session.wait_status
            while len(self._finished) > FINISHED_KEPT:
                self._finished.popitem(last=False)

    def wait(self, container_id: str) -> int | None:
        """WAIT_CONTAINER: the raw wait status of an ended session (blocks until it ends)."""
        session = self.get(container_id)
        if session is not None:
            session.exited.wait()
            return session.wait_status
        with self._lock:
            if container_id in self._finished:
                return self._finished[container_id]
        raise DebugError(404, f"Container {container_id} cannot be found")


def _argv(command: dict[str, Any]) -> tuple[str, list[str]]:
    """(executable, argv) of a CommandInfo: ``sh -c value`` with ``shell`` (the default), else ``value`` run
    with ``arguments`` as its whole argv (argv[0] included), as Mesos runs it."""
    value = command.get("value")
    if command.get("shell", True):
        if not isinstance(value, str) or not value:
            raise DebugError(400, "Expecting 'command.value' to be set for a shell command")
        return "/bin/sh", ["/bin/sh", "-c", value]
    arguments = [str(a) for a in command.get("arguments") or []]
    executable = value if isinstance(value, str) and value else (arguments[0] if arguments else "")
    if not executable:
        raise DebugError(400, "Expecting 'command.value' to be set")
    return executable, arguments or [executable]


def _command_env(command: dict[str, Any]) -> dict[str, str]:
    env = {}
    for variable in (command.get("environment") or {}).get("variables") or []:
        if isinstance(variable, dict) and variable.get("type", "VALUE") == "VALUE" and "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env


def _take_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal on stdin becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _join_cgroups(pid: int, cgroups: tuple[str, ...]) -> None:
    """Nested containers share their parent's cgroups (Mesos' default ``share_cgroups``)."""
    for directory in cgroups:
        try:
            with open(os.path.join(directory, "cgroup.procs"), "w") as procs:
                procs.write(str(pid))
        except OSError as exc:
            log.warning("could not put debug process %d into %s: %s", pid, directory, exc)
