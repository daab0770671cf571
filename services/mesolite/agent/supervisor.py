"""The per-container supervisor: the process that owns one task (or executor, or Docker container) for its life.

Why it exists: a task must not die with the agent (``kill -9`` of the agent, an upgrade), and a restarted agent
cannot ``wait()`` for processes it did not fork. So the agent forks this small process in a session of its own; it
starts the task in another session (a kill of the task's group never reaches the supervisor), waits for it, and
writes the task's exit status into the agent's checkpoint directory, where the agent (the same one, or its
successor after a restart) reads it. This is the part Mesos' ``mesos-containerizer launch`` / ``mesos-executor``
helpers play upstream.

Run as ``python -m mesolite.agent.supervisor SPEC.json``. Standard library only, so it starts in milliseconds even
when hundreds start at once: for Docker containers (which the agent creates through the ``docker`` SDK, where every
decision and error is) it speaks the few engine API calls it needs (start, inspect, logs, wait, remove) itself.

The spec (JSON) says what to run. The supervisor announces ``{"pid": ...}`` (or ``{"error": ...}``) as one JSON line
on its stdout, which the launching agent reads, and then ``status_file`` gets ``{"returncode": ...}`` (negative:
killed by that signal), ``{"exit_code": ..., "oom": ...}`` for Docker, or ``{"error": ...}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

_IGNORED = (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGTERM)


def _write_json(path: str, data: dict[str, Any]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def _announce(data: dict[str, Any], spec: dict[str, Any]) -> None:
    """One line to whoever launched us, and a copy next to the exit status for an agent that died before reading
    it; then stdout goes nowhere so a vanished agent cannot hurt us (EPIPE)."""
    _write_json(os.path.join(os.path.dirname(spec["status_file"]), "announced.json"), data)
    try:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()
    except OSError:
        pass
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _preexec(spec: dict[str, Any]) -> Any:
    """In the task's child before exec: default signals, join the container's cgroups, drop to the task's user."""
    procs_files = [str(p) for p in spec.get("cgroup_procs") or []]
    user = spec.get("user")

    def setup() -> None:
        for sig in _IGNORED:  # ignored dispositions survive exec: give the task the defaults back
            signal.signal(sig, signal.SIG_DFL)
        pid = str(os.getpid())
        for path in procs_files:
            with open(path, "w") as handle:
                handle.write(pid)
        if user:
            os.initgroups(user["name"], int(user["gid"]))
            os.setgid(int(user["gid"]))
            os.setuid(int(user["uid"]))

    return setup


def run_command(spec: dict[str, Any]) -> dict[str, Any]:
    stdout = open(spec["stdout"], "ab")  # noqa: SIM115 - handed to the child
    stderr = open(spec["stderr"], "ab")  # noqa: SIM115
    try:
        process = subprocess.Popen(
            spec["argv"],
            executable=spec.get("executable") or None,
            cwd=spec["cwd"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=_preexec(spec),
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _announce({"error": f"Failed to execute {spec['argv'][0]!r}: {exc}"}, spec)
        return {"error": str(exc), "time": time.time()}
    finally:
        stdout.close()
        stderr.close()
    _announce({"pid": process.pid}, spec)
    returncode = process.wait()
    return {"returncode": returncode, "time": time.time()}


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        spec = json.load(handle)
    # Nothing but the task's end may end us: no terminal, and the agent's signals go to the task's group.
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    if spec.get("kind") == "docker":
        # Only Docker tasks pay for the HTTP client's imports (a third of a command task's start-up otherwise).
        from mesolite.agent.supervisor_docker import run_docker

        def runner(spec: dict[str, Any]) -> dict[str, Any]:
            return run_docker(spec, _announce)
    else:
        runner = run_command
    try:
        result = runner(spec)
    except Exception as exc:  # noqa: BLE001 - whatever happens, the agent must learn the container ended
        result = {"error": f"Supervisor failed: {exc}", "time": time.time()}
    _write_json(spec["status_file"], result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
