"""Acceptance: an unmodified PyPI pymesos scheduler against ``mesolite master`` and ``mesolite agent``."""

from __future__ import annotations

import getpass
import threading
from typing import Any

import pymesos  # installed by scripts/install-pymesos.sh (make install): the acceptance client, never skipped
from addict import Dict  # pymesos' dependency

from tests.cluster import Cluster, wait_until


def _task(name: str, agent_id: str, command: str) -> Dict:
    task = Dict()
    task.task_id.value = name
    task.agent_id.value = agent_id
    task.name = name
    task.command.value = command
    task.resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
    ]
    return task


class Recorder(pymesos.Scheduler):
    """Launches the two acceptance tasks on the first offer, then reconciles and kills the sleeper."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.framework_id: str | None = None
        self.launched = False
        self.reconciled = False
        self.lock = threading.Lock()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:  # type: ignore[override]
        self.framework_id = framework_id["value"]

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:  # noqa: N802 - pymesos' callback name
        for offer in offers:
            with self.lock:
                if self.launched:
                    driver.declineOffer(offer.id, {"refuse_seconds": 60})
                    continue
                self.launched = True
            agent_id = offer.agent_id.value
            driver.launchTasks(
                offer.id,
                [_task("hello", agent_id, "echo hello; sleep 1"), _task("sleeper", agent_id, "sleep 1000")],
                {"refuse_seconds": 5},
            )

    def statusUpdate(self, driver: Any, update: Any) -> None:  # noqa: N802
        self.updates.append(dict(update))
        if update.task_id.value == "sleeper" and update.state == "TASK_RUNNING":
            if update.get("reason") == "REASON_RECONCILIATION":
                driver.killTask(update.task_id)
            elif not self.reconciled:
                self.reconciled = True
                driver.reconcileTasks([])

    def states(self, task_id: str) -> list[str]:
        """The task's own transitions, reconciliation answers left out."""
        return [
            u["state"]
            for u in self.updates
            if u["task_id"]["value"] == task_id and u.get("reason") != "REASON_RECONCILIATION"
        ]


def test_pymesos_scheduler_launches_kills_reconciles_and_tears_down(running: Cluster) -> None:
    master = running.master
    assert master is not None
    scheduler = Recorder()
    framework = Dict(user=getpass.getuser(), name="pymesos-acceptance", hostname="localhost")
    driver = pymesos.MesosSchedulerDriver(scheduler, framework, f"127.0.0.1:{master.port}", use_addict=True)
    driver.start()
    try:
        wait_until(lambda: "TASK_FINISHED" in scheduler.states("hello"), timeout=30, what="hello to finish")
        wait_until(lambda: "TASK_KILLED" in scheduler.states("sleeper"), timeout=30, what="sleeper to be killed")
    finally:
        driver.stop()
        driver.join()

    hello = scheduler.states("hello")
    assert hello == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    sleeper = scheduler.states("sleeper")
    assert sleeper[:2] == ["TASK_STARTING", "TASK_RUNNING"] and sleeper[-1] == "TASK_KILLED"
    reconciliation = [u for u in scheduler.updates if u.get("reason") == "REASON_RECONCILIATION"]
    # Implicit reconciliation answers for every live task (hello may still be running), without a uuid.
    assert {u["task_id"]["value"]: u["state"] for u in reconciliation}.get("sleeper") == "TASK_RUNNING"
    assert all("uuid" not in u and u["source"] == "SOURCE_MASTER" for u in reconciliation)
    finished = next(u for u in scheduler.updates if u["state"] == "TASK_FINISHED")
    assert finished["message"] == "Command exited with status 0"
    assert finished["agent_id"]["value"] == running.agent_id(running.agents[0])

    # hello's stdout, read the way the web UI reads it: through the agent's /files API on the virtual path.
    agent = running.agents[0]
    fid = scheduler.framework_id
    path = f"/frameworks/{fid}/executors/hello/runs/latest/stdout"
    assert agent.get("/files/read", params={"path": path, "offset": 0}).json()["data"] == "hello\n"

    # driver.stop() tore the framework down: it is completed and its tasks are gone from the cluster.
    frameworks = master.get("/master/frameworks").json()
    assert [f["id"] for f in frameworks["frameworks"]] == []
    completed = frameworks["completed_frameworks"]
    assert [f["id"] for f in completed] == [fid]
    assert {t["id"]: t["state"] for t in completed[0]["completed_tasks"]} == {
        "hello": "TASK_FINISHED",
        "sleeper": "TASK_KILLED",
    }
    assert master.get("/master/state").json()["slaves"][0]["used_resources"]["cpus"] == 0.0
