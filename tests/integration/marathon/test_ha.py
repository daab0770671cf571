"""Marathon high availability, as an operator runs it: a real ZooKeeper, a master found through ZooKeeper, an agent,
and two ``mesolite marathon --zk`` processes. One leads; the other proxies every API call to it; killing the
leader with SIGKILL hands everything (apps, running tasks, a deployment in progress, the framework id) to the other
without a single task relaunched."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from marathon import MarathonClient
from marathon.models import MarathonApp

from tests.cluster import Cluster, ServiceProcess, free_port, wait_until
from tests.zookeeper import ZooKeeper

SLEEPER = {"cmd": "sleep 3600", "cpus": 0.1, "mem": 16}


class HAMarathons:
    """ZooKeeper, one master (``--zk``), one agent, and two Marathon instances sharing ``--zk``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.zookeeper = ZooKeeper(base / "zookeeper")
        self.cluster = Cluster(base)
        self.instances: list[ServiceProcess] = []

    def start(self) -> HAMarathons:
        self.zookeeper.start()
        self.cluster.start_master("--zk", self.zookeeper.url("mesos"), "--quorum", "1")
        wait_until(lambda: self.master.get("/metrics/snapshot").json()["master/elected"] == 1.0, 30, what="master")
        self.cluster.start_agent(resources="cpus:4;mem:4096;disk:10000;ports:[31000-31200]")
        self.instances = [self._instance(free_port()) for _ in range(2)]
        for instance in self.instances:
            instance.start("/ping")
        self.leader()
        return self

    @property
    def master(self) -> ServiceProcess:
        assert self.cluster.master is not None
        return self.cluster.master

    def _instance(self, port: int) -> ServiceProcess:
        args = [
            "marathon",
            "--master",
            self.zookeeper.url("mesos"),
            "--zk",
            self.zookeeper.url("marathon"),
            "--zk_session_timeout",
            "3000",
            "--http_port",
            str(port),
            "--decline_offer_duration",
            "5000",
        ]
        return ServiceProcess(f"marathon-{port}", args, port, self.base)

    def revive(self) -> None:
        """Restart any instance a test killed, as a standby."""
        for index, instance in enumerate(self.instances):
            if instance.process is not None and instance.process.poll() is not None:
                self.instances[index] = self._instance(instance.port)
                self.instances[index].start("/ping")

    def leader(
        self, among: list[ServiceProcess] | None = None, timeout: float = 30.0, other_than: ServiceProcess | None = None
    ) -> ServiceProcess:
        """The instance every candidate names as leader, once it serves with its state loaded."""
        candidates = among or [i for i in self.instances if i.process is not None and i.process.poll() is None]

        def agreed() -> ServiceProcess | None:
            named = {c.get("/v2/leader").json().get("leader") for c in candidates}
            if len(named) != 1:
                return None
            leader = next((i for i in self.instances if named == {f"127.0.0.1:{i.port}"}), None)
            if leader is None or leader is other_than or leader.get("/v2/info").status_code != 200:
                return None
            return leader

        return wait_until(agreed, timeout, interval=0.1, what="one leader named by every instance")

    def standby(self) -> ServiceProcess:
        leader = self.leader()
        return next(i for i in self.instances if i is not leader)

    def tasks(self, via: ServiceProcess, app_id: str) -> list[dict[str, Any]]:
        return via.get(f"/v2/apps/{app_id}").json()["app"]["tasks"]

    def master_tasks(self) -> dict[str, str]:
        frameworks = self.master.get("/master/frameworks").json()["frameworks"]
        return {t["id"]: t["state"] for f in frameworks for t in f["tasks"]}

    def clean(self) -> None:
        via = self.leader()
        requests.delete(f"{via.url}/v2/groups?force=true", timeout=10)
        wait_until(lambda: via.get("/v2/deployments").json() == [], 60, interval=0.2, what="deployments drained")
        wait_until(lambda: not self.master_tasks(), 60, interval=0.2, what="tasks gone")

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        self.cluster.stop()
        self.zookeeper.stop()


@pytest.fixture(scope="module")
def ha_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAMarathons]:
    ha = HAMarathons(tmp_path_factory.mktemp("marathon-ha"))
    try:
        yield ha.start()
    finally:
        ha.stop()


@pytest.fixture
def ha(ha_cluster: HAMarathons) -> Iterator[HAMarathons]:
    ha_cluster.revive()
    try:
        yield ha_cluster
    finally:
        ha_cluster.clean()


def test_the_client_works_through_the_standby_and_abdication_hands_over(ha: HAMarathons) -> None:
    leader = ha.leader()
    standby = ha.standby()
    client = MarathonClient(standby.url)

    created = client.create_app("through-standby", MarathonApp(instances=2, **SLEEPER))
    assert created.id == "/through-standby"
    app = wait_until(
        lambda: (a := client.get_app("through-standby", embed_tasks=True)) and not a.deployments and a,
        30,
        interval=0.2,
        what="deployed through the standby",
    )
    assert app.tasks_running == 2
    task_ids = sorted(t.id for t in client.list_tasks("through-standby"))
    assert len(task_ids) == 2
    info = client.get_info()
    assert info.elected is True and info.leader == f"127.0.0.1:{leader.port}"
    assert info.marathon_config.ha is True and info.zookeeper_config.zk.endswith("/marathon")
    assert client.get_leader() == {"leader": f"127.0.0.1:{leader.port}"}

    # Proxied answers carry the leader's name and the standby's hop, as upstream's LeaderProxyFilter does.
    answer = standby.get("/v2/apps")
    assert answer.headers["X-Marathon-Leader"] == f"http://127.0.0.1:{leader.port}"
    assert answer.headers["X-Marathon-Via"] == f"1.1 127.0.0.1:{standby.port}"
    assert leader.get("/v2/apps").headers["X-Marathon-Leader"] == f"http://127.0.0.1:{leader.port}"
    # Errors come back unchanged.
    missing = standby.get("/v2/apps/not-there")
    assert (missing.status_code, missing.json()) == (404, {"message": "App '/not-there' does not exist"})
    # The event stream is not proxied: the standby redirects to the leader, which the client follows.
    redirect = standby.get("/v2/events", headers={"Accept": "text/event-stream"}, allow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["Location"] == f"http://127.0.0.1:{leader.port}/v2/events"
    stream = client.event_stream(event_types=["event_stream_attached"])
    assert next(stream).event_type == "event_stream_attached"
    stream.close()

    client.scale_app("through-standby", instances=3)
    wait_until(lambda: len(client.list_tasks("through-standby")) == 3, 30, what="scaled through the standby")

    # DELETE /v2/leader through the standby: the leader abdicates and the standby takes over.
    assert client.delete_leader() == {"message": "Leadership abdicated"}
    assert ha.leader(timeout=30, other_than=leader) is standby
    assert MarathonClient(leader.url).get_leader() == {"leader": f"127.0.0.1:{standby.port}"}
    after = wait_until(lambda: len(client.list_tasks("through-standby")) == 3 and client.list_tasks("through-standby"))
    assert set(task_ids) <= {t.id for t in after}
    time.sleep(2)  # reconciliation has run under the new leader: nothing relaunched
    assert sorted(t.id for t in client.list_tasks("through-standby")) == sorted(t.id for t in after)
    client.delete_app("through-standby", force=True)


def test_killing_the_leader_hands_over_apps_tasks_and_a_deployment_in_progress(ha: HAMarathons, tmp_path: Path) -> None:
    leader = ha.leader()
    standby = ha.standby()
    framework_id = leader.get("/v2/info").json()["frameworkId"]
    post = f"{standby.url}/v2/apps"
    assert requests.post(post, json={"id": "/steady", "instances": 2, **SLEEPER}, timeout=10).status_code == 201
    wait_until(lambda: len(ha.tasks(standby, "steady")) == 2, 30, what="steady running")
    wait_until(lambda: standby.get("/v2/deployments").json() == [], 30, what="steady deployed")

    # A deployment that cannot finish before the kill: its tasks answer their health check only once the test
    # opens the gate, after the failover.
    gate = tmp_path / "gate"
    server = f"while [ ! -e {gate} ]; do sleep 0.2; done; exec {sys.executable} -m http.server $PORT0 --bind 127.0.0.1"
    check = {"protocol": "HTTP", "path": "/", "gracePeriodSeconds": 60, "intervalSeconds": 1, "timeoutSeconds": 1}
    slow = {"id": "/slow", "instances": 2, "cmd": server, "cpus": 0.1, "mem": 32, "healthChecks": [check]}
    assert requests.post(post, json=slow, timeout=10).status_code == 201
    wait_until(
        lambda: len([t for t in ha.tasks(standby, "slow") if t["state"] == "TASK_RUNNING"]) == 2,
        30,
        what="the slow app's tasks running",
    )
    deployments = standby.get("/v2/deployments").json()
    assert [d["affectedApps"] for d in deployments] == [["/slow"]]
    before = {app: sorted(t["id"] for t in ha.tasks(standby, app)) for app in ("steady", "slow")}

    killed_at = time.monotonic()
    leader.stop(signal.SIGKILL)
    assert ha.leader(among=[standby], timeout=30, other_than=leader) is standby
    took_over = time.monotonic() - killed_at
    assert standby.get("/v2/info").json()["frameworkId"] == framework_id
    # The new leader knows every app, every task by its id, and the deployment it has to finish.
    assert {a["id"] for a in standby.get("/v2/apps").json()["apps"]} == {"/steady", "/slow"}
    assert {app: sorted(t["id"] for t in ha.tasks(standby, app)) for app in before} == before
    assert [d["id"] for d in standby.get("/v2/deployments").json()] == [deployments[0]["id"]]

    gate.touch()
    wait_until(lambda: standby.get("/v2/deployments").json() == [], 40, interval=0.2, what="the deployment to finish")
    slow_app = standby.get("/v2/apps/slow").json()["app"]
    assert slow_app["tasksHealthy"] == 2
    assert {app: sorted(t["id"] for t in ha.tasks(standby, app)) for app in before} == before
    # The master agrees: the same framework, the same tasks, all running; nothing was killed or relaunched.
    frameworks = ha.master.get("/master/frameworks").json()["frameworks"]
    assert [(f["id"], f["active"]) for f in frameworks] == [(framework_id, True)]
    assert ha.master_tasks() == {t: "TASK_RUNNING" for ids in before.values() for t in ids}
    assert took_over < 20, f"the standby took {took_over:.1f}s to take over"


def test_state_round_trips_through_zookeeper(zookeeper: ZooKeeper) -> None:
    """Everything the next leader reads: nested app ids, the root group and its versions, tasks, a deployment
    larger than ZooKeeper's 1 MB znode limit, the framework id; and what was deleted stays deleted."""
    from mesolite.core import zk
    from mesolite.marathon.appdef import normalize_app
    from mesolite.marathon.state import Deployment, State, Task

    hosts, base = zk.parse_zk_url(zookeeper.url("marathon"))
    client = zk.connect(hosts)
    try:
        state = State(zk.ZooKeeperStore(client, f"{base}/state"))
        apps = {}
        for n, app_id in enumerate(["/a/b", "/a/c", "/d"]):
            apps[app_id] = {**normalize_app({"id": app_id, **SLEEPER}), "version": f"2024-01-0{n + 1}T00:00:00.000Z"}
            state.put_app(apps[app_id], app_id.rsplit("/", 1)[0] or "/")
        for group_id in ("/", "/a"):
            state.put_group({"id": group_id, "dependencies": [], "version": "2024-01-01T00:00:00.000Z"})
            state.put_group_version(group_id, "2024-01-01T00:00:00.000Z", {"apps": {}, "groups": {}, "app_group": {}})
        task = Task("a_b.1", "/a/b", "agent-1", "h", [31000], [10000], "v", "v", "2024-01-01T00:00:00.000Z")
        state.add_task(task)
        big = {f"/x{n}": {"env": {"PAD": "x" * 1000}} for n in range(1500)}  # ~1.5 MB: stored in chunks
        state.save_deployment(Deployment("dep-1", "v", ["/a/b"], [[{"action": "ScaleApplication"}]], big, {}))
        state.set_framework_id("fw-1")

        again = State(zk.ZooKeeperStore(client, f"{base}/state"))
        again.load()
        assert again.apps == apps and again.app_group == {"/a/b": "/a", "/a/c": "/a", "/d": "/"}
        assert set(again.groups) == {"/", "/a"}
        assert again.group_versions("/") == again.group_versions("/a") == ["2024-01-01T00:00:00.000Z"]
        assert again.tasks["a_b.1"] == task
        assert again.deployments["dep-1"].original == big
        assert again.framework_id == "fw-1"
        assert again.app_versions("/a/b") == ["2024-01-01T00:00:00.000Z"]

        again.delete_app("/a/b")
        again.delete_group("/a")
        again.expunge_task("a_b.1")
        again.delete_deployment("dep-1")
        third = State(zk.ZooKeeperStore(client, f"{base}/state"))
        third.load()
        assert set(third.apps) == {"/a/c", "/d"} and set(third.groups) == {"/"}
        assert third.tasks == {} and third.deployments == {} and third.app_versions("/a/b") == []
    finally:
        client.stop()
        client.close()


def test_marathon_follows_a_master_failover_through_zookeeper(cluster: Cluster, zookeeper: ZooKeeper) -> None:
    """kill -9 the leading master: Marathon (``--master zk://``) re-subscribes to the new one with the same framework
    id, its tasks keep running under the same ids, and offers from the new leader launch more."""
    mesos = zookeeper.url("mesos")
    masters = [
        cluster.start_master("--zk", mesos, "--quorum", "2", "--zk_session_timeout", "2secs", name=f"master{n}")
        for n in range(2)
    ]

    def elected(master: ServiceProcess) -> bool:
        return bool(master.get("/metrics/snapshot").json()["master/elected"] == 1.0)

    leader = wait_until(lambda: next((m for m in masters if elected(m)), None), 30, what="a leading master")
    follower = next(m for m in masters if m is not leader)
    cluster.master = leader
    cluster.start_agent("--master", mesos, resources="cpus:4;mem:4096;disk:10000;ports:[31000-31200]")
    port = free_port()
    marathon = ServiceProcess(
        "marathon-follower",
        ["marathon", "--master", mesos, "--zk", zookeeper.url("marathon"), "--http_port", str(port)],
        port,
        cluster.base,
    )
    cluster.services.append(marathon)
    marathon.start("/ping")
    framework_id = wait_until(lambda: marathon.get("/v2/info").json().get("frameworkId"), 30, what="subscribed")
    requests.post(f"{marathon.url}/v2/apps", json={"id": "/kept", "instances": 2, **SLEEPER}, timeout=10)
    wait_until(lambda: marathon.get("/v2/deployments").json() == [], 30, interval=0.2, what="kept deployed")
    before = sorted(t["id"] for t in marathon.get("/v2/apps/kept").json()["app"]["tasks"])

    leader.stop(signal.SIGKILL)
    wait_until(lambda: elected(follower), 30, what="the follower to lead")

    def resubscribed() -> bool:
        frameworks = follower.get("/master/frameworks").json()["frameworks"]
        return [(f["id"], f["active"], sorted(t["id"] for t in f["tasks"])) for f in frameworks] == [
            (framework_id, True, before)
        ]

    wait_until(resubscribed, 40, interval=0.2, what="marathon and the agent back on the new master")
    requests.put(f"{marathon.url}/v2/apps/kept", json={"instances": 3}, timeout=10)
    wait_until(lambda: marathon.get("/v2/deployments").json() == [], 30, interval=0.2, what="scaled on the new master")
    after = sorted(t["id"] for t in marathon.get("/v2/apps/kept").json()["app"]["tasks"])
    assert len(after) == 3 and set(before) < set(after)


def test_a_pod_survives_the_leaders_death_with_its_instance(ha: HAMarathons) -> None:
    """Pods live in ZooKeeper like apps: the next leader serves the same pod and re-adopts its running instance."""
    from tests.integration.marathon.test_pods import web_pod

    leader = ha.leader()
    standby = ha.standby()
    assert requests.post(f"{standby.url}/v2/pods", json=web_pod("/ha-pod"), timeout=10).status_code == 201

    def stable(via: ServiceProcess) -> list[str] | None:
        status = via.get("/v2/pods/ha-pod::status").json()
        ids = [i["id"] for i in status["instances"] if i["status"] == "STABLE"]
        return ids if status["status"] == "STABLE" else None

    before = wait_until(lambda: stable(standby), 60, interval=0.2, what="the pod STABLE")
    leader.stop(signal.SIGKILL)
    assert ha.leader(timeout=30, other_than=leader) is standby
    assert standby.get("/v2/pods/ha-pod").json()["containers"][1]["name"] == "sidecar"
    after = wait_until(lambda: stable(standby), 60, interval=0.2, what="the pod STABLE under the new leader")
    assert after == before  # the same instance, not relaunched
    assert requests.delete(f"{standby.url}/v2/pods/ha-pod", timeout=10).status_code == 202
