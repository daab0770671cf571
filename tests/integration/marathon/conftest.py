"""Marathon as a user runs it: a real master, real agents and a ``mesolite marathon`` process, driven over HTTP."""

from __future__ import annotations

import collections
import collections.abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cluster import Cluster, ServiceProcess, free_port, wait_until

# marathon-python 0.13.0 (the release on PyPI) still uses collections.Iterable, gone since Python 3.10; its fix is
# unreleased (upstream commit ebb2ee3). The client itself is used unmodified.
if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]


class MarathonHarness:
    def __init__(self, cluster: Cluster, base: Path) -> None:
        self.cluster = cluster
        self.base = base
        self.process: ServiceProcess | None = None
        self.port = free_port()
        self.flags: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *flags: str) -> MarathonHarness:
        assert self.cluster.master is not None
        self.flags = list(flags)
        args = [
            "marathon",
            "--master",
            f"127.0.0.1:{self.cluster.master.port}",
            "--http_port",
            str(self.port),
            "--work_dir",
            str(self.base / "marathon"),
            "--decline_offer_duration",
            "5000",
            *self.flags,
        ]
        self.process = ServiceProcess(f"marathon-{self.port}", args, self.port, self.base)
        self.process.start("/v2/info")
        wait_until(lambda: self.get("/v2/info").json().get("frameworkId"), 30, what="marathon to subscribe")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, timeout=10, **kwargs)

    def app(self, app_id: str) -> dict[str, Any]:
        return self.get(f"/v2/apps/{app_id.lstrip('/')}").json()["app"]

    def running(self, app_id: str) -> list[dict[str, Any]]:
        return [t for t in self.app(app_id)["tasks"] if t["state"] == "TASK_RUNNING"]

    def wait_deployed(self, timeout: float = 60.0) -> None:
        wait_until(lambda: self.get("/v2/deployments").json() == [], timeout, interval=0.1, what="deployments")

    def clean(self) -> None:
        """Remove every app and wait until no deployment and no task is left."""
        self.request("DELETE", "/v2/groups?force=true")
        self.wait_deployed()
        wait_until(lambda: self.get("/v2/tasks").json()["tasks"] == [], 60, interval=0.1, what="tasks gone")
        wait_until(lambda: not any(s["tasks"] for s in self._master_frameworks()), 30, what="master tasks gone")

    def _master_frameworks(self) -> list[dict[str, Any]]:
        assert self.cluster.master is not None
        return self.cluster.master.get("/master/frameworks").json()["frameworks"]


@pytest.fixture(scope="module")
def marathon_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarathonHarness]:
    """One master, one agent and Marathon for a whole module; tests clean up their apps (``marathon`` fixture)."""
    base = tmp_path_factory.mktemp("marathon")
    cluster = Cluster(base)
    harness = MarathonHarness(cluster, base)
    try:
        cluster.start_master()
        cluster.start_agent(resources="cpus:4;mem:4096;disk:10000;ports:[31000-31200]")
        harness.start()
        yield harness
    finally:
        harness.stop()
        cluster.stop()


@pytest.fixture
def marathon(marathon_cluster: MarathonHarness) -> Iterator[MarathonHarness]:
    try:
        yield marathon_cluster
    finally:
        marathon_cluster.clean()
