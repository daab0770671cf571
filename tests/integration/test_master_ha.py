"""Several masters with ZooKeeper: one leads, the others redirect, and a new one takes over when it dies."""

from __future__ import annotations

import getpass
import os
import signal
import threading

import pymesos  # installed by scripts/install-pymesos.sh (make install): the acceptance client, never skipped
import requests

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, ServiceProcess, free_port, wait_until
from tests.zookeeper import ZooKeeper


def start_masters(cluster: Cluster, zookeeper: ZooKeeper, count: int) -> list[ServiceProcess]:
    masters = []
    for n in range(count):
        masters.append(cluster.start_master("--zk", zookeeper.url("mesos"), "--quorum", "2", name=f"master{n}"))
    return masters


def leading(masters: list[ServiceProcess]) -> ServiceProcess | None:
    for master in masters:
        try:
            if master.get("/metrics/snapshot").json()["master/elected"] == 1.0:
                return master
        except requests.RequestException:
            continue
    return None


def test_followers_redirect_to_the_leader_and_a_new_leader_takes_over(cluster: Cluster, zookeeper: ZooKeeper) -> None:
    masters = start_masters(cluster, zookeeper, 2)
    leader = wait_until(lambda: leading(masters), what="a leader")
    follower = next(m for m in masters if m is not leader)
    wait_until(lambda: follower.get("/master/state", allow_redirects=False).status_code == 307)

    redirect = follower.get("/master/state", allow_redirects=False)
    assert redirect.headers["Location"] == f"//127.0.0.1:{leader.port}/master/state"
    scheduler_call = requests.post(
        f"{follower.url}/api/v1/scheduler", json={"type": "SUBSCRIBE"}, allow_redirects=False, timeout=5
    )
    assert scheduler_call.status_code == 307
    assert scheduler_call.headers["Location"] == f"//127.0.0.1:{leader.port}/api/v1/scheduler"
    assert follower.get("/redirect", allow_redirects=False).headers["Location"] == f"//127.0.0.1:{leader.port}"
    assert follower.get("/master/health").status_code == 200
    # Following the redirect lands on the leader's state, which names itself as leader.
    state = follower.get("/master/state").json()
    assert state["leader"] == f"master@127.0.0.1:{leader.port}"

    # An agent pointed at the follower registers with the leader through the redirect.
    agent = cluster.start_agent()
    agent_id = cluster.agent_id(agent)
    assert agent_id is not None

    leader.stop(signal.SIGKILL)
    survivor = wait_until(lambda: leading([follower]), timeout=40, what="the follower to take over")
    assert survivor is follower
    # The new leader knows the agent from the registry in ZooKeeper, awaiting its re-registration.
    recovered = follower.get("/master/slaves").json()
    assert [s["id"] for s in recovered["recovered_slaves"] + recovered["slaves"]] == [agent_id]


def test_no_leader_means_503(cluster: Cluster, zookeeper: ZooKeeper, tmp_path) -> None:
    port = free_port()
    lonely = ServiceProcess(
        "lonely",
        [
            "master",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--work_dir",
            str(tmp_path / "m"),
            "--zk",
            zookeeper.url("mesos"),
        ],
        port,
        tmp_path,
    ).start()
    try:
        wait_until(lambda: lonely.get("/metrics/snapshot").json()["master/elected"] == 1.0)
        zookeeper.stop()
        # With ZooKeeper gone the session expires and the master steps down: it must stop acting as leader.
        wait_until(lambda: lonely.get("/metrics/snapshot").json()["master/elected"] == 0.0, timeout=40)
        response = lonely.get("/master/state", allow_redirects=False)
        assert (response.status_code, response.text) == (503, "No leader elected")
        call = requests.post(f"{lonely.url}/api/v1/scheduler", json={"type": "SUBSCRIBE"}, timeout=5)
        assert call.status_code == 503
    finally:
        lonely.stop()


def test_pymesos_finds_the_leader_in_zookeeper_and_follows_a_failover(cluster: Cluster, zookeeper: ZooKeeper) -> None:
    from addict import Dict

    masters = start_masters(cluster, zookeeper, 2)
    leader = wait_until(lambda: leading(masters), what="a leader")

    class Watcher(pymesos.Scheduler):
        def __init__(self) -> None:
            self.registered_ids: list[str] = []
            self.came_back = threading.Event()

        def registered(self, driver, framework_id, master_info) -> None:
            self.registered_ids.append(framework_id["value"])

        def reregistered(self, driver, master_info) -> None:
            self.came_back.set()

    watcher = Watcher()
    framework = Dict(user=getpass.getuser(), name="zk-follower", failover_timeout=300.0)
    driver = pymesos.MesosSchedulerDriver(watcher, framework, zookeeper.url("mesos"), use_addict=True)
    driver.start()
    try:
        wait_until(lambda: watcher.registered_ids, timeout=30, what="pymesos to subscribe via ZooKeeper")
        framework_id = watcher.registered_ids[0]
        assert [f["id"] for f in leader.get("/master/frameworks").json()["frameworks"]] == [framework_id]
        leader.stop(signal.SIGKILL)
        follower = next(m for m in masters if m is not leader)
        wait_until(lambda: leading([follower]), timeout=40, what="the follower to take over")
        assert watcher.came_back.wait(40), "pymesos did not re-register with the new leader"
        frameworks = follower.get("/master/frameworks").json()["frameworks"]
        assert [(f["id"], f["connected"]) for f in frameworks] == [(framework_id, True)]
    finally:
        driver.stop()
        driver.join()


def test_scheduler_client_follows_redirects_and_zookeeper(cluster: Cluster, zookeeper: ZooKeeper) -> None:
    masters = start_masters(cluster, zookeeper, 2)
    leader = wait_until(lambda: leading(masters), what="a leader")
    follower = next(m for m in masters if m is not leader)
    wait_until(lambda: follower.get("/master/state", allow_redirects=False).status_code == 307)
    via_follower = SchedulerClient(follower.url, {"user": "root", "name": "redirected"})
    via_zookeeper = SchedulerClient(zookeeper.url("mesos"), {"user": "root", "name": "detected"})
    try:
        first = via_follower.subscribe()
        second = via_zookeeper.subscribe()
        assert via_follower.master == via_zookeeper.master == f"http://127.0.0.1:{leader.port}"
        ids = {f["id"] for f in leader.get("/master/frameworks").json()["frameworks"]}
        assert ids == {first, second}
        assert via_follower.call("REVIVE").status_code == 202
    finally:
        via_follower.close()
        via_zookeeper.close()


def test_leader_kill_keeps_tasks_running_agents_and_frameworks_come_back(
    cluster: Cluster, zookeeper: ZooKeeper
) -> None:
    """kill -9 the leading master while a pymesos framework runs a task on an agent that follows ZooKeeper."""
    from addict import Dict

    masters = start_masters(cluster, zookeeper, 2)
    leader = wait_until(lambda: leading(masters), what="a leader")
    follower = next(m for m in masters if m is not leader)
    cluster.master = leader  # the agent fixture registers through ZooKeeper; agent_id() reads this master
    agent = cluster.start_agent("--master", zookeeper.url("mesos"))
    agent_id = cluster.agent_id(agent)

    class Runner(pymesos.Scheduler):
        def __init__(self) -> None:
            self.updates: list[dict] = []
            self.launched = False
            self.came_back = threading.Event()

        def resourceOffers(self, driver, offers) -> None:  # noqa: N802 - pymesos callback name
            for offer in offers:
                if self.launched:
                    driver.declineOffer(offer.id, {"refuse_seconds": 3600})
                    continue
                self.launched = True
                launch = Dict(
                    task_id={"value": "survivor"},
                    agent_id=offer.agent_id,
                    name="survivor",
                    command={"value": "sleep 1000"},
                    resources=[
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                    ],
                )
                driver.launchTasks(offer.id, [launch])

        def reregistered(self, driver, master_info) -> None:
            self.came_back.set()

        def statusUpdate(self, driver, update) -> None:  # noqa: N802 - pymesos callback name
            self.updates.append(dict(update))

    runner = Runner()
    framework = Dict(user=getpass.getuser(), name="ha-runner", failover_timeout=600.0, checkpoint=True)
    driver = pymesos.MesosSchedulerDriver(runner, framework, zookeeper.url("mesos"), use_addict=True)
    driver.start()
    try:
        wait_until(lambda: any(u["state"] == "TASK_RUNNING" for u in runner.updates), timeout=30, what="RUNNING")
        pid = agent.get("/state").json()["frameworks"][0]["executors"][0]["tasks"][0]["statuses"][-1][
            "container_status"
        ]["executor_pid"]

        leader.stop(signal.SIGKILL)
        wait_until(lambda: leading([follower]), timeout=40, what="the follower to take over")
        wait_until(
            lambda: follower.get("/master/state").json()["activated_slaves"] == 1,
            timeout=40,
            what="the agent to re-register with the new leader",
        )
        assert follower.get("/master/slaves").json()["slaves"][0]["id"] == agent_id
        assert runner.came_back.wait(40), "the framework did not re-register"
        driver.reconcileTasks([{"task_id": {"value": "survivor"}}])
        wait_until(lambda: any(u.get("reason") == "REASON_RECONCILIATION" for u in runner.updates), timeout=20)
        answer = next(u for u in runner.updates if u.get("reason") == "REASON_RECONCILIATION")
        assert answer["state"] == "TASK_RUNNING"
        # Nothing was killed or relaunched: the same process runs, and no terminal update was ever sent.
        assert os.path.exists(f"/proc/{pid}")
        assert [u["state"] for u in runner.updates if u.get("reason") != "REASON_RECONCILIATION"].count(
            "TASK_RUNNING"
        ) == 1
        assert not [u for u in runner.updates if u["state"] in ("TASK_LOST", "TASK_KILLED", "TASK_FAILED")]
        frameworks = follower.get("/master/frameworks").json()["frameworks"]
        assert [(f["name"], [t["id"] for t in f["tasks"]]) for f in frameworks] == [("ha-runner", ["survivor"])]
    finally:
        driver.stop()
        driver.join()
