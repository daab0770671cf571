"""The Docker half of the task supervisor: start the container the agent created, copy its logs into the sandbox,
wait for it and record how it ended, with a few Docker Engine API calls over the standard library (importing the
``docker`` SDK per task would cost over a second)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

DOCKER_API = "v1.41"  # served by Docker >= 20.10 and podman >= 3


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


def run_docker(spec: dict[str, Any], announce: Callable[[dict[str, Any], dict[str, Any]], None]) -> dict[str, Any]:
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
        announce({"error": f"Failed to start container: {exc}"}, spec)
        return {"error": f"Failed to start container: {exc}", "time": time.time()}
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    ips = sorted({str(n["IPAddress"]) for n in networks.values() if isinstance(n, dict) and n.get("IPAddress")})
    announce({"pid": (info.get("State") or {}).get("Pid") or None, "ips": ips}, spec)
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
