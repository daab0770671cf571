"""``mesolite up`` runs Mesos-DNS on its standard ports (DNS 8053 over UDP and TCP, HTTP API 8123) against the demo
master, and names the apps Marathon runs there as in the ApacheCon demo (seed 004: ``redis.marathon.mesos``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.cluster import wait_until
from tests.integration.dns.conftest import dig

pytestmark = pytest.mark.slow

PORTS = (5050, 5051, 5052, 8080, 4400, 8053, 8123)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_serves_dns_for_marathon_apps(tmp_path: Path) -> None:
    busy = [port for port in PORTS if _listening(port)]
    assert not busy, f"ports {busy} are busy; the demo needs them"
    demo = subprocess.Popen(
        [sys.executable, "-m", "mesolite.cli", "up", "--work_dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: (
                dig(8053, "_slave._tcp.mesos", "SRV").values() == {"0 1 5051 slave.mesos.", "0 1 5052 slave.mesos."}
            ),
            timeout=60,
            interval=0.5,
            what="both demo agents in DNS",
        )
        assert dig(8053, "leader.mesos").values() == {"127.0.0.1"}
        assert dig(8053, "leader.mesos", "A", "+tcp").values() == {"127.0.0.1"}
        assert requests.get("http://127.0.0.1:8123/v1/version", timeout=5).json()["Service"] == "Mesos-DNS"
        # Seed 004's apps, without Docker: Marathon names them after the app id.
        for app in (
            {"id": "redis", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 1},
            {"id": "/product/db/mongo", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 1},
        ):
            response = requests.post("http://127.0.0.1:8080/v2/apps", json=app, timeout=10)
            assert response.status_code == 201, response.text
        for name in ("redis.marathon.mesos", "mongo-db-product.marathon.mesos"):
            wait_until(lambda n=name: dig(8053, n).values() == {"127.0.0.1"}, timeout=60, interval=0.5, what=name)
        srv = dig(8053, "_redis._tcp.marathon.mesos", "SRV")
        assert len(srv.answer) == 1 and srv.answer[0][7].startswith("redis-")
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
    for port in (8053, 8123):
        wait_until(lambda p=port: not _listening(p), timeout=15, what=f"port {port} to close")
