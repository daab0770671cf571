"""The fetcher (a tarball over HTTP, extracted and run; the cache; a failed fetch) and agent-run health checks."""

from __future__ import annotations

import http.server
import io
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, free_port
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: dict[str, int] = {}

    def do_GET(self) -> None:  # http.server's name
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"not here")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        script = b'#!/bin/sh\necho "app says $1"\n'
        info = tarfile.TarInfo("app/run.sh")
        info.size, info.mode = len(script), 0o755
        archive.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


def test_a_tarball_is_fetched_once_extracted_and_run_and_a_failed_fetch_fails_the_task(
    running: Cluster, web: str
) -> None:
    assert running.master is not None
    _Files.files = {"/app.tgz": _tarball()}
    _Files.hits = {}
    client = SchedulerClient(running.master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        tasks = []
        for name in ("first", "second"):
            spec = task(name, offer, f"./app/run.sh {name}")
            spec["command"]["uris"] = [{"value": f"{web}/app.tgz", "cache": True}]
            tasks.append(spec)
        broken = task("broken", offer, "true")
        broken["command"]["uris"] = [{"value": f"{web}/nothing.tgz"}]
        client.launch(offer, [*tasks, broken])
        failed = update_for(client, "broken", "TASK_FAILED")
        assert failed["reason"] == "REASON_FETCHER_FAILED"
        assert "nothing.tgz" in failed["message"] and "HTTP 404" in failed["message"]
        for name in ("first", "second"):
            update_for(client, name, "TASK_FINISHED")
            path = f"/frameworks/{client.framework_id}/executors/{name}/runs/latest/stdout"
            out = running.agents[0].get("/files/read", params={"path": path, "offset": 0}).json()["data"]
            assert out == f"app says {name}\n"
        assert _Files.hits == {"/app.tgz": 1, "/nothing.tgz": 1}  # the second task used the agent's cache
        assert running.agents[0].get("/health").status_code == 200
    finally:
        client.close()


HEALTH_SERVER = """
import http.server, sys
served = 0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        served += 1
        self.send_response(200 if served <= 3 else 500)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_an_http_health_check_turns_unhealthy_and_the_task_is_killed(running: Cluster, tmp_path: Path) -> None:
    assert running.master is not None
    server = tmp_path / "server.py"
    server.write_text(HEALTH_SERVER)
    port = free_port()
    client = SchedulerClient(running.master.url, FRAMEWORK)
    client.subscribe()
    fast = {"delay_seconds": 0, "interval_seconds": 0.3, "timeout_seconds": 5, "grace_period_seconds": 60}
    try:
        offer = next_offer(client)
        web = task("web", offer, f"{sys.executable} {server} {port}")
        web["health_check"] = {
            "type": "HTTP",
            "http": {"port": port, "path": "/health"},
            "consecutive_failures": 2,
            **fast,
        }
        tcp = task("tcp", offer, f"{sys.executable} -m http.server --bind 127.0.0.1 {free_port()}")
        tcp_port = int(tcp["command"]["value"].rsplit(" ", 1)[1])
        tcp["health_check"] = {"type": "TCP", "tcp": {"port": tcp_port}, **fast}
        cmd = task("cmd", offer)
        cmd["health_check"] = {"type": "COMMAND", "command": {"value": 'test -n "$MESOS_TASK_ID"'}, **fast}
        client.launch(offer, [web, tcp, cmd])

        update_for(client, "web", "TASK_RUNNING")
        healthy = update_for(client, "web", "TASK_RUNNING")
        assert healthy["healthy"] is True and healthy["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
        unhealthy = update_for(client, "web", "TASK_RUNNING")
        assert unhealthy["healthy"] is False and "returned 500" in unhealthy["message"]
        killed = update_for(client, "web", "TASK_KILLED")
        assert killed["healthy"] is False
        assert f"HTTP health check on port {port} path /health failed 2 consecutive times" in killed["message"]
        for name in ("tcp", "cmd"):
            update_for(client, name, "TASK_RUNNING")
            assert update_for(client, name, "TASK_RUNNING")["healthy"] is True
    finally:
        client.close()
