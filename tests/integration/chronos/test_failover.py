"""Chronos across a master restart and in the demo: it re-subscribes as the same framework and keeps running jobs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chronos as chronos_client
import pytest
import requests

from tests.cluster import wait_until
from tests.integration.chronos.conftest import ChronosCluster

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ChronosCluster]:
    cluster = ChronosCluster(tmp_path)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_master_restart_keeps_the_framework_and_the_schedule(fresh: ChronosCluster) -> None:
    master = fresh.cluster.master
    assert master is not None
    start = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fresh.post_job({"name": "steady", "command": "echo steady", "schedule": f"R/{start}/PT2S"}).ok
    wait_until(lambda: fresh.job("steady")["successCount"] >= 1, timeout=30, what="a first run")
    (framework,) = fresh.frameworks()
    assert framework["checkpoint"] is True and framework["failover_timeout"] == 604800.0

    master.stop()
    fresh.cluster.services.remove(master)
    fresh.cluster.start_master(port=master.port)
    wait_until(fresh.framework_active, timeout=60, interval=0.5, what="chronos to re-subscribe")
    assert [f["id"] for f in fresh.frameworks()] == [framework["id"]]
    count = fresh.job("steady")["successCount"]
    wait_until(lambda: fresh.job("steady")["successCount"] >= count + 2, timeout=60, what="runs after the restart")


PORTS = (5050, 5051, 5052, 4400)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_chronos_on_4400(tmp_path: Path) -> None:
    busy = [port for port in PORTS if _listening(port)]
    assert not busy, f"ports {busy} are busy; the demo needs them"
    demo = subprocess.Popen(
        [sys.executable, "-m", "mesolite.cli", "up", "--work_dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: requests.get("http://127.0.0.1:4400/ping", timeout=2).text == "pong", timeout=60)
        client = chronos_client.connect("127.0.0.1:4400")
        # The seed talk's job, as its UI shows it (with a short command so the test does not wait 50 s).
        # ("async" too: chronos-python's legacy mode adds it to the class-wide required fields for the whole process.)
        client.add({"name": "JOB1386722360087", "command": "sleep 0.1", "owner": "rob@fake.com", "disabled": False,
                    "async": False, "schedule": "R/2013-12-10T00:39:20Z/PT24H"})  # fmt: skip
        client.run("JOB1386722360087")
        wait_until(lambda: client.list()[0]["successCount"] == 1, timeout=60, interval=0.5, what="the seed job to run")
        assert "TOTAL JOBS <b id='total'>1</b>" in requests.get("http://127.0.0.1:4400/", timeout=5).text
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
    wait_until(lambda: not _listening(4400), timeout=15, what="port 4400 to close")
