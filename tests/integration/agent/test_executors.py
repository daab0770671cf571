"""Custom executors over the v1 executor HTTP API: an unmodified pymesos scheduler with an unmodified pymesos
``MesosExecutorDriver`` executor, and what happens to executors that never subscribe or exit."""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pymesos  # installed by scripts/install-pymesos.sh (make install): the acceptance client, never skipped
import requests
from addict import Dict  # pymesos' dependency

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, scalar, task, update_for

EXECUTOR_SCRIPT = Path(__file__).with_name("pymesos_executor.py")


def _executor_info() -> Dict:
    return Dict(
        executor_id={"value": "echo-executor"},
        name="echo executor",
        command={
            "value": f"{sys.executable} pymesos_executor.py",
            "uris": [{"value": f"file://{EXECUTOR_SCRIPT}", "extract": False}],
        },
        resources=[scalar("cpus", 0.1), scalar("mem", 64)],
    )


class EchoScheduler(pymesos.Scheduler):
    """Two tasks in one executor; once both run: a message each way, then a kill through the executor."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.messages: list[tuple[str, str, bytes]] = []
        self.lost_executors: list[tuple[str, str, int]] = []
        self.launched = False
        self.pinged = False
        self.lock = threading.Lock()

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:  # noqa: N802 - pymesos' callback names
        for offer in offers:
            with self.lock:
                if self.launched:
                    driver.declineOffer(offer.id, {"refuse_seconds": 60})
                    continue
                self.launched = True
            tasks = []
            for name in ("killable", "finish-on-message"):
                tasks.append(
                    Dict(
                        task_id={"value": name},
                        agent_id=offer.agent_id,
                        name=name,
                        executor=_executor_info(),
                        resources=[scalar("cpus", 0.1), scalar("mem", 32)],
                    )
                )
            driver.launchTasks(offer.id, tasks, {"refuse_seconds": 60})

    def statusUpdate(self, driver: Any, update: Any) -> None:  # noqa: N802
        with self.lock:
            self.updates.append(dict(update))
            running = {u["task_id"]["value"] for u in self.updates if u["state"] == "TASK_RUNNING"}
            ping = running == {"killable", "finish-on-message"} and not self.pinged
            if ping:
                self.pinged = True
        if ping:
            driver.sendFrameworkMessage(update.executor_id, update.agent_id, pymesos.encode_data(b"ping"))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, message: str) -> None:  # noqa: N802
        self.messages.append((executor_id["value"], agent_id["value"], pymesos.decode_data(message)))
        driver.killTask({"value": "killable"})

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: int) -> None:  # noqa: N802
        self.lost_executors.append((executor_id["value"], agent_id["value"], status))

    def states(self, task_id: str) -> list[str]:
        return [u["state"] for u in self.updates if u["task_id"]["value"] == task_id]


def test_pymesos_scheduler_and_executor_share_an_executor_exchange_messages_and_kill(running: Cluster) -> None:
    master, agent = running.master, running.agents[0]
    assert master is not None
    scheduler = EchoScheduler()
    framework = Dict(user=getpass.getuser(), name="pymesos-executor-acceptance", hostname="localhost")
    driver = pymesos.MesosSchedulerDriver(scheduler, framework, f"127.0.0.1:{master.port}", use_addict=True)
    driver.start()
    try:
        wait_until(lambda: "TASK_KILLED" in scheduler.states("killable"), timeout=30, what="the kill")
        wait_until(lambda: "TASK_FINISHED" in scheduler.states("finish-on-message"), timeout=30, what="the finish")
        state = agent.get("/state").json()
        [executor] = state["frameworks"][0]["executors"]
        assert (executor["id"], executor["type"], executor["name"]) == ("echo-executor", "CUSTOM", "echo executor")
        executor_pid = next(
            s["container_status"]["executor_pid"]
            for s in executor["completed_tasks"][0]["statuses"]
            if s["state"] == "TASK_RUNNING"
        )
        assert os.path.exists(f"/proc/{executor_pid}")
        statistics = agent.get("/monitor/statistics").json()
        assert [s["executor_id"] for s in statistics] == ["echo-executor"]
        # Both tasks ended but the executor still runs: the master still counts its resources.
        used = master.get("/master/slaves").json()["slaves"][0]["used_resources"]
        assert (used["cpus"], used["mem"]) == (0.1, 64.0)
        # The scheduler's SHUTDOWN call reaches the executor (SHUTDOWN event): pymesos' driver exits.
        shutdown = {
            "type": "SHUTDOWN",
            "framework_id": {"value": driver.framework_id},
            "shutdown": {"executor_id": {"value": "echo-executor"}, "agent_id": {"value": running.agent_id(agent)}},
        }
        answer = requests.post(
            f"{master.url}/api/v1/scheduler",
            data=json.dumps(shutdown),
            headers={"Content-Type": "application/json", "Mesos-Stream-Id": driver.stream_id},
            timeout=10,
        )
        assert answer.status_code == 202
        wait_until(lambda: not os.path.exists(f"/proc/{executor_pid}"), timeout=20, what="the executor to exit")
        # Its exit frees its resources and reaches the scheduler as executorLost (a FAILURE with executor_id).
        wait_until(lambda: scheduler.lost_executors, timeout=20, what="executorLost")
        [(lost_id, lost_agent, status)] = scheduler.lost_executors
        assert (lost_id, lost_agent) == ("echo-executor", running.agent_id(agent)) and isinstance(status, int)
        wait_until(
            lambda: master.get("/master/slaves").json()["slaves"][0]["used_resources"]["cpus"] == 0.0,
            what="the executor's resources to return",
        )
        wait_until(lambda: agent.get("/state").json()["completed_frameworks"], what="the executor to be completed")
    finally:
        driver.stop()
        driver.join()

    assert scheduler.messages == [("echo-executor", running.agent_id(agent), b"pong:ping")]
    assert scheduler.states("killable") == ["TASK_RUNNING", "TASK_KILLED"]
    assert scheduler.states("finish-on-message") == ["TASK_RUNNING", "TASK_FINISHED"]
    killed = next(u for u in scheduler.updates if u["state"] == "TASK_KILLED")
    assert killed["message"] == "killed by the executor" and killed["source"] == "SOURCE_EXECUTOR"
    assert killed["executor_id"] == {"value": "echo-executor"}
    # Both tasks ran in the one executor process, started once, in its sandbox with the executor's stdout.
    sandbox = executor["directory"]
    assert os.path.isfile(os.path.join(sandbox, "pymesos_executor.py"))
    assert os.path.basename(os.path.dirname(os.path.dirname(sandbox))) == "echo-executor"


def test_executor_that_never_subscribes_fails_its_tasks(cluster: Cluster) -> None:
    master = cluster.start_master()
    cluster.start_agent("--executor_registration_timeout", "1secs")
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        silent = task("silent", offer)
        del silent["command"]
        silent["executor"] = {"executor_id": {"value": "mute"}, "command": {"value": "sleep 1000"}}
        client.launch(offer, [silent])
        failed = update_for(client, "silent", "TASK_FAILED")
        assert failed["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
        assert failed["message"] == "Executor did not register within 1 secs"
    finally:
        client.close()


def test_executor_api_refuses_bad_calls_with_mesos_status_codes(running: Cluster) -> None:
    url = f"{running.agents[0].url}/api/v1/executor"
    call = {"type": "SUBSCRIBE", "framework_id": {"value": "nope"}, "executor_id": {"value": "nope"}}
    json_headers = {"Content-Type": "application/json"}
    assert requests.post(url, data=json.dumps(call), timeout=5).status_code == 400  # no Content-Type
    assert requests.post(url, data="x", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 415
    broken = requests.post(url, data="{", headers=json_headers, timeout=5)
    assert broken.status_code == 400 and "Failed to parse body into JSON" in broken.text
    unknown = requests.post(url, data=json.dumps(call), headers=json_headers, timeout=5)
    assert (unknown.status_code, unknown.text) == (400, "Framework cannot be found")
    missing = requests.post(url, data=json.dumps({"type": "UPDATE"}), headers=json_headers, timeout=5)
    assert missing.status_code == 400 and "Missing required fields" in missing.text
    assert running.agents[0].get("/health").status_code == 200
