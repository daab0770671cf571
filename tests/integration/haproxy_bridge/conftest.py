"""The HAProxy bridge as a user runs it: a real master, an agent, ``mesolite marathon`` and ``mesolite
haproxy-bridge`` (running the Debian ``haproxy``) as processes; traffic goes through HAProxy on loopback.

Every port HAProxy binds in these tests is on 127.0.0.1 and chosen free (service ports are given explicitly in the
app definitions), except the vhost frontend, which is port 80 as in production — bound only while a vhost app
exists — so the tests never collide with a running demo's Marathon-assigned 10000+ ports.
"""

from __future__ import annotations

import http.client
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cluster import Cluster, ServiceProcess, free_port, wait_until
from tests.integration.marathon.conftest import MarathonHarness

ECHO_APP = Path(__file__).with_name("echo_app.py")

if shutil.which("haproxy") is None:  # pragma: no cover - .ci/run installs it
    raise RuntimeError("these tests need the Debian haproxy package (apt-get install haproxy)")


def echo_app(
    app_id: str,
    service_port: int,
    instances: int = 2,
    labels: dict[str, str] | None = None,
    health: bool = True,
) -> dict[str, Any]:
    app: dict[str, Any] = {
        "id": app_id,
        "cmd": f"{sys.executable} {ECHO_APP} $PORT0",
        "cpus": 0.05,
        "mem": 32,
        "instances": instances,
        "portDefinitions": [{"port": service_port, "protocol": "tcp"}],
        "labels": labels or {},
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    }
    if health:
        app["healthChecks"] = [
            {
                "protocol": "HTTP",
                "path": "/health",
                "portIndex": 0,
                "gracePeriodSeconds": 15,
                "intervalSeconds": 1,
                "timeoutSeconds": 2,
                "maxConsecutiveFailures": 3,
            }
        ]
    return app


def fetch(
    port: int, path: str = "/", host: str | None = None, timeout: float = 5.0, address: str = "127.0.0.1"
) -> tuple[int, dict[str, Any]]:
    """One request on a new connection through HAProxy (what a fresh client does during a reload)."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if host:
            headers["Host"] = host
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, {}
    finally:
        connection.close()


class BridgeHarness:
    def __init__(self, marathon: MarathonHarness, base: Path, name: str = "bridge", address: str = "127.0.0.1") -> None:
        self.marathon = marathon
        self.base = base / name
        self.base.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.address = address
        self.port = free_port()
        self.stats_port = free_port()
        self.template_dir = self.base / "templates"
        self.template_dir.mkdir(exist_ok=True)
        self.work_dir = self.base / "work"
        self.process: ServiceProcess | None = None

    def start(self, *flags: str, vhost_port: int = 80, marathon: list[str] | None = None) -> BridgeHarness:
        args = [
            "haproxy-bridge",
            "--marathon",
            *(marathon or [self.marathon.url]),
            "--work_dir",
            str(self.work_dir),
            "--bind-address",
            self.address,
            "--http_port",
            str(self.port),
            "--stats-port",
            str(self.stats_port),
            "--vhost-port",
            str(vhost_port),
            "--template-dir",
            str(self.template_dir),
            "--min-reload-interval",
            "0.2",
            *flags,
        ]
        self.process = ServiceProcess(f"{self.name}-{self.port}", args, self.port, self.base)
        self.process.start("/health")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=10, **kwargs)

    def metrics(self) -> dict[str, Any]:
        return self.get("/metrics").json()

    def routed(self, app_id: str) -> set[str]:
        """Task ids the bridge has put in the app's backends (what HAProxy runs)."""
        services = self.get("/routing").json()["services"]
        return {s["taskId"] for svc in services if svc["appId"] == app_id for s in svc["servers"]}

    def seen(self, port: int, count: int = 20, host: str | None = None) -> set[str]:
        """Which tasks answer ``count`` fresh requests through HAProxy."""
        tasks = set()
        for _ in range(count):
            try:
                status, body = fetch(port, host=host, address=self.address)
            except (OSError, http.client.HTTPException):
                continue
            if status == 200:
                tasks.add(body["task"])
        return tasks

    def wait_seen(self, port: int, expected: set[str], timeout: float = 30.0, host: str | None = None) -> None:
        wait_until(lambda: expected <= self.seen(port, 10, host), timeout, interval=0.1, what=f"{expected} on {port}")


def healthy_tasks(marathon: MarathonHarness, app_id: str) -> set[str]:
    tasks = marathon.app(app_id)["tasks"]
    return {t["id"] for t in tasks if t["state"] == "TASK_RUNNING" and all_alive(t.get("healthCheckResults") or [])}


def all_alive(results: list[dict[str, Any]]) -> bool:
    return bool(results) and all(r["alive"] for r in results)


def deploy(marathon: MarathonHarness, app: dict[str, Any], timeout: float = 60.0) -> set[str]:
    """POST the app and wait until all its instances are healthy; their task ids."""
    response = marathon.request("POST", "/v2/apps", json=app)
    assert response.status_code == 201, response.text
    return wait_healthy(marathon, app["id"], app["instances"], timeout)


def wait_healthy(marathon: MarathonHarness, app_id: str, count: int, timeout: float = 60.0) -> set[str]:
    tasks: set[str] = wait_until(
        lambda: found if len(found := healthy_tasks(marathon, app_id)) == count else None,
        timeout,
        interval=0.05,
        what=f"{count} healthy tasks of {app_id}",
    )
    return tasks


def scale(marathon: MarathonHarness, app_id: str, instances: int) -> None:
    response = marathon.request("PUT", f"/v2/apps/{app_id.lstrip('/')}?force=true", json={"instances": instances})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def bridge_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeHarness]:
    """A master, one agent, Marathon and the bridge for a whole module; the ``bridge`` fixture removes the apps."""
    base = tmp_path_factory.mktemp("haproxy-bridge")
    cluster = Cluster(base)
    marathon = MarathonHarness(cluster, base)
    bridge = BridgeHarness(marathon, base)
    try:
        cluster.start_master()
        cluster.start_agent(resources="cpus:4;mem:4096;disk:10000;ports:[31000-31200]")
        marathon.start()
        bridge.start()
        yield bridge
    finally:
        bridge.stop()
        marathon.stop()
        cluster.stop()


@pytest.fixture
def bridge(bridge_cluster: BridgeHarness) -> Iterator[BridgeHarness]:
    try:
        yield bridge_cluster
    finally:
        for template in bridge_cluster.template_dir.iterdir():
            template.unlink()
        bridge_cluster.marathon.clean()
        wait_until(lambda: bridge_cluster.get("/routing").json()["services"] == [], 30, what="routing emptied")
