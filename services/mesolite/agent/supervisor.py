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

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any

DOCKER_API = "v1.41"  # served by Docker >= 20.10 and podman >= 3

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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _engine(address: str, timeout: float | None) -> http.client.HTTPConnection:
    if address.startswith("unix://"):
        return _UnixConnection(address[len("unix://") :], timeout)
    parsed = urllib.parse.urlparse(address.replace("tcp://", "http://", 1))
    return http.client.HTTPConnection(parsed.hostname or "localhost", parsed.port or 2375, timeout=timeout)


def _call(address: str, method: str, path: str, timeout: float | None = 120) -> tuple[int, Any]:
    connection = _engine(address, timeout)
    try:
        connection.request(method, f"/{DOCKER_API}{path}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(body) if body else None
    except ValueError:
        return response.status, body.decode(errors="replace")


def _follow_logs(address: str, name: str, stdout_path: str, stderr_path: str) -> None:
    """The engine's multiplexed log stream (8-byte frame headers: stream, size) into the sandbox files."""
    connection = _engine(address, None)
    try:
        connection.request("GET", f"/{DOCKER_API}/containers/{name}/logs?follow=1&stdout=1&stderr=1")
        response = connection.getresponse()
        with open(stdout_path, "ab") as stdout, open(stderr_path, "ab") as stderr:
            while True:
                header = response.read(8)
                if len(header) < 8:
                    return
                payload = response.read(int.from_bytes(header[4:8], "big"))
                out = stderr if header[0] == 2 else stdout
                out.write(payload)
                out.flush()
    except OSError:
        pass
    finally:
        connection.close()


def run_docker(spec: dict[str, Any]) -> dict[str, Any]:
    """Start the container the agent created, follow its logs, wait for it, record how it ended, remove it."""
    address, name = spec["socket"], spec["container"]
    try:
        status, answer = _call(address, "POST", f"/containers/{name}/start")
        if status not in (204, 304):
            raise OSError(f"start answered {status}: {answer}")
        status, info = _call(address, "GET", f"/containers/{name}/json")
        if status != 200:
            raise OSError(f"inspect answered {status}: {info}")
    except OSError as exc:
        _announce({"error": f"Failed to start container: {exc}"}, spec)
        return {"error": f"Failed to start container: {exc}", "time": time.time()}
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    ips = sorted({n.get("IPAddress") for n in networks.values() if isinstance(n, dict) and n.get("IPAddress")})
    _announce({"pid": (info.get("State") or {}).get("Pid") or None, "ips": ips}, spec)
    follower = threading.Thread(target=_follow_logs, args=(address, name, spec["stdout"], spec["stderr"]), daemon=True)
    follower.start()
    try:
        status, answer = _call(address, "POST", f"/containers/{name}/wait", timeout=None)
        if status != 200 or not isinstance(answer, dict):
            raise OSError(f"wait answered {status}: {answer}")
        _, info = _call(address, "GET", f"/containers/{name}/json")
    except OSError as exc:
        return {"error": f"Lost the container: {exc}", "time": time.time()}
    follower.join(timeout=5)
    oom = bool(((info or {}).get("State") or {}).get("OOMKilled")) if isinstance(info, dict) else False
    result = {"exit_code": int(answer.get("StatusCode", -1)), "oom": oom, "time": time.time()}
    try:
        _call(address, "DELETE", f"/containers/{name}?force=1")
    except OSError:
        pass
    return result


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        spec = json.load(handle)
    # Nothing but the task's end may end us: no terminal, and the agent's signals go to the task's group.
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    runner = run_docker if spec.get("kind") == "docker" else run_command
    try:
        result = runner(spec)
    except Exception as exc:  # noqa: BLE001 - whatever happens, the agent must learn the container ended
        result = {"error": f"Supervisor failed: {exc}", "time": time.time()}
    _write_json(spec["status_file"], result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
