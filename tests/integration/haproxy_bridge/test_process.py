"""The supervised HAProxy itself (Debian's binary, no Marathon needed): master-worker start, reload onto a new
config, a refused reload that leaves the old workers serving, adoption by a restarted bridge, stop; and the bridge
process when Marathon is unreachable."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from mesolite.haproxy_bridge.haproxy import ReloadError, SupervisedHAProxy, atomic_write
from tests.cluster import ServiceProcess, free_port, wait_until


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, backend: int, ports: list[int], extra: str = "") -> str:
    text = (
        f"global\n  stats socket {tmp_path}/admin.sock mode 600 level admin expose-fd listeners\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
    )
    for port in ports:
        text += f"listen l{port}\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{backend}\n{extra}"
    return text


def _get(port: int) -> str:
    return requests.get(f"http://127.0.0.1:{port}/", timeout=5).text


def test_start_reload_refused_reload_adopt_stop(tmp_path: Path, backend: int) -> None:
    config = str(tmp_path / "haproxy.cfg")
    first, second = free_port(), free_port()
    atomic_write(config, _config(tmp_path, backend, [first]))
    proxy = SupervisedHAProxy("haproxy", config, str(tmp_path), timeout=15)
    adopter = SupervisedHAProxy("haproxy", config, str(tmp_path), timeout=15)
    try:
        proxy.start()
        assert proxy.running() and _get(first) == "hello"
        workers = proxy.workers()

        atomic_write(config, _config(tmp_path, backend, [first, second]))
        proxy.reload()
        assert _get(first) == "hello" and _get(second) == "hello"
        assert proxy.workers() != workers

        # A config HAProxy refuses at reload (this one fails only there: -c would have caught it in the bridge).
        atomic_write(config, _config(tmp_path, backend, [first, second], extra="  no-such-keyword\n"))
        with pytest.raises(ReloadError, match="no-such-keyword"):
            proxy.reload()
        assert proxy.running() and _get(first) == "hello" and _get(second) == "hello"

        # A restarted bridge finds the master through the pidfile and takes it over instead of starting another.
        atomic_write(config, _config(tmp_path, backend, [first, second]))
        adopter.start()
        assert adopter.pid == proxy.pid
        adopter.reload()
        assert _get(second) == "hello"
        adopter.stop()
        assert not adopter.running()
        with pytest.raises(requests.ConnectionError):
            _get(first)
    finally:
        adopter.stop()
        proxy.stop()
    assert not proxy.running()


def test_a_port_another_program_holds_is_reported(tmp_path: Path, backend: int) -> None:
    config = str(tmp_path / "haproxy.cfg")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        atomic_write(config, _config(tmp_path, backend, [holder.getsockname()[1]]))
        proxy = SupervisedHAProxy("haproxy", config, str(tmp_path), timeout=15)
        try:
            with pytest.raises(ReloadError, match="cannot bind"):
                proxy.start()
        finally:
            proxy.stop()
        assert not proxy.running()


def test_bridge_without_marathon_serves_stats_and_says_why(tmp_path: Path) -> None:
    port, stats = free_port(), free_port()
    args = [
        "haproxy-bridge",
        "--marathon",
        f"http://127.0.0.1:{free_port()}",
        "--work_dir",
        str(tmp_path / "work"),
        "--bind-address",
        "127.0.0.1",
        "--http_port",
        str(port),
        "--stats-port",
        str(stats),
    ]
    bridge = ServiceProcess(f"bridge-{port}", args, port, tmp_path).start("/health")
    try:
        health = wait_until(
            lambda: (h := bridge.get("/health").json())["last_sync_error"] and h["last_reload_at"] and h,
            15,
            what="a failed sync and HAProxy started anyway",
        )
        assert health["status"] == "degraded" and health["haproxy"]["running"]
        assert requests.get(f"http://127.0.0.1:{stats}/_haproxy_health_check", timeout=5).status_code == 200
        assert "Statistics Report" in requests.get(f"http://127.0.0.1:{stats}/", timeout=5).text
        assert "haproxy_process_" in requests.get(f"http://127.0.0.1:{stats}/metrics", timeout=5).text
        text = bridge.get("/metrics", headers={"Accept": "text/plain"}).text
        assert "# TYPE haproxy_bridge_sync_failures_total counter" in text
        assert bridge.get("/metrics").json()["sync_failures_total"] >= 1
        assert "listen stats" in bridge.get("/config").text
    finally:
        bridge.stop()
    assert not any(p.name == "haproxy" for p in _children_named("haproxy"))


def _children_named(name: str) -> list[Path]:
    """Processes named ``name`` whose command line mentions this test's temp dirs (nothing left behind)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == name and b"pytest" in (proc / "cmdline").read_bytes():
                found.append(proc)
        except OSError:
            continue
    return found
