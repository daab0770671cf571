"""A real master, one agent and ``mesolite chronos`` for the Chronos integration tests (and, for the HA tests, a real
ZooKeeper with several ``mesolite chronos --zk`` instances).

The cluster is shared by a module's tests (each uses its own job names) to keep the suite's time small; Chronos runs
with a short ``--failure_retry`` so retries happen within a test.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cluster import Cluster, ServiceProcess, free_port, wait_until
from tests.zookeeper import ZooKeeper

FAILURE_RETRY_MS = "300"
ZK_TIMEOUT_MS = "2000"  # a killed leader's znode goes after this long: the failover time of the HA tests


class ChronosCluster:
    def __init__(self, base: Path, extra_args: list[str] | None = None) -> None:
        self.base = base
        self.extra_args = list(extra_args or [])  # more flags for `mesolite chronos` (read at each (re)start)
        self.cluster = Cluster(base)
        self.port = free_port()
        self.chronos: ServiceProcess | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/v1/scheduler"

    def start(self) -> ChronosCluster:
        self.cluster.start_master()
        self.cluster.start_agent()
        return self.start_chronos()

    def start_chronos(self) -> ChronosCluster:
        assert self.cluster.master is not None
        args = [
            "chronos",
            "--master",
            f"127.0.0.1:{self.cluster.master.port}",
            "--http_port",
            str(self.port),
            "--work_dir",
            str(self.base / "chronos"),
            "--failure_retry",
            FAILURE_RETRY_MS,
            "--hostname",
            "127.0.0.1",
            *self.extra_args,
        ]
        self.chronos = ServiceProcess(f"chronos-{self.restarts}", args, self.port, self.base).start("/ping")
        wait_until(self.framework_active, timeout=20, what="chronos to subscribe")
        return self

    def restart_chronos(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.chronos is not None
        self.chronos.stop(sig)
        self.restarts += 1
        self.start_chronos()

    def framework_active(self) -> bool:
        assert self.cluster.master is not None
        frameworks = self.cluster.master.get("/master/frameworks").json()["frameworks"]
        return any(f["name"] == "chronos" and f["active"] for f in frameworks)

    def frameworks(self) -> list[dict[str, Any]]:
        assert self.cluster.master is not None
        return [f for f in self.cluster.master.get("/master/frameworks").json()["frameworks"] if f["name"] == "chronos"]

    def job(self, name: str) -> dict[str, Any]:
        response = requests.get(f"{self.api}/job/{name}", timeout=10)
        response.raise_for_status()
        return response.json()

    def post_job(self, body: dict[str, Any], kind: str = "iso8601") -> requests.Response:
        return requests.post(f"{self.api}/{kind}", json=body, timeout=10)

    def csv(self) -> dict[str, tuple[str, str]]:
        text = requests.get(f"{self.api}/graph/csv", timeout=10).text
        return {
            parts[1]: (parts[2], parts[3])
            for parts in (line.split(",") for line in text.splitlines())
            if parts[0] == "node"
        }

    def sandbox_outputs(self, job_name: str, filename: str = "stdout") -> list[str]:
        """Each finished task's ``filename`` for the job, read through the agent's /state and /files/read."""
        agent = self.cluster.agents[0]
        outputs = []
        state = agent.get("/state").json()
        for framework in state["frameworks"] + state["completed_frameworks"]:
            for executor in framework["completed_executors"] + framework["executors"]:
                if f":{job_name}:" not in executor["source"]:
                    continue
                path = f"{executor['directory']}/{filename}"
                data = agent.get("/files/read", params={"path": path, "offset": 0, "length": 100000}).json()["data"]
                outputs.append(data)
        return outputs

    def stop(self) -> None:
        if self.chronos is not None:
            self.chronos.stop()
        self.cluster.stop()


@pytest.fixture(scope="module")
def chronos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChronosCluster]:
    cluster = ChronosCluster(tmp_path_factory.mktemp("chronos"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


class ChronosHA:
    """ZooKeeper, a master elected through it, one agent, and several ``mesolite chronos --zk`` instances."""

    def __init__(self, base: Path, zookeeper: ZooKeeper) -> None:
        self.base = base
        self.zookeeper = zookeeper
        self.cluster = Cluster(base)
        self.instances: list[ServiceProcess] = []
        self.starts = 0

    def start(self, count: int = 2) -> ChronosHA:
        self.cluster.start_master("--zk", self.zookeeper.url("mesos"))
        wait_until(lambda: self.master.get("/master/state").json()["leader"], timeout=30, what="the master to lead")
        self.cluster.start_agent()
        for _ in range(count):
            self.start_instance()
        return self

    @property
    def master(self) -> ServiceProcess:
        assert self.cluster.master is not None
        return self.cluster.master

    def start_instance(self, port: int | None = None) -> ServiceProcess:
        port = port or free_port()
        args = [
            "chronos",
            "--master",
            self.zookeeper.url("mesos"),
            "--zk",
            self.zookeeper.url("chronos"),
            "--zk_timeout",
            ZK_TIMEOUT_MS,
            "--http_port",
            str(port),
            "--hostname",
            "127.0.0.1",
            "--failure_retry",
            FAILURE_RETRY_MS,
        ]
        instance = ServiceProcess(f"chronos-ha-{self.starts}", args, port, self.base).start("/ping")
        self.starts += 1
        self.instances.append(instance)
        return instance

    def leader_of(self, instance: ServiceProcess) -> str | None:
        response = instance.get("/v1/scheduler/leader")
        return response.json()["leader"] if response.ok else None

    def leading(self) -> ServiceProcess | None:
        """The instance every live instance names as leader, once they agree and it has subscribed."""
        live = [i for i in self.instances if i.process is not None and i.process.poll() is None]
        named = {self.leader_of(i) for i in live}
        if len(named) != 1 or None in named:
            return None
        (name,) = named
        leader = next((i for i in live if name == f"127.0.0.1:{i.port}"), None)
        return leader if leader is not None and self.framework_active() else None

    def frameworks(self) -> list[dict[str, Any]]:
        return [f for f in self.master.get("/master/frameworks").json()["frameworks"] if f["name"] == "chronos"]

    def framework_active(self) -> bool:
        return any(f["active"] and f["connected"] for f in self.frameworks())

    def tasks(self, job: str) -> list[dict[str, Any]]:
        """Every task of the job the master knows (running and completed), oldest first."""
        tasks = self.master.get("/master/tasks", params={"limit": 1000, "order": "asc"}).json()["tasks"]
        return [t for t in tasks if t["name"] == f"ChronosTask:{job}"]

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        self.cluster.stop()


@pytest.fixture(scope="module")
def chronos_ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChronosHA]:
    base = tmp_path_factory.mktemp("chronos-ha")
    zookeeper = ZooKeeper(base / "zookeeper").start()
    ha = ChronosHA(base, zookeeper)
    try:
        yield ha.start()
    finally:
        ha.stop()
        zookeeper.stop()
