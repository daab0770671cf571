"""A task's state changes (runs.py) and how the update streams are flushed before an agent leaves (status.py)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from mesolite.agent.checkpoint import Checkpoint
from mesolite.agent.runs import Runs, TaskRun
from mesolite.agent.status import StatusUpdateManager


class Master:
    """The master link's sender: records what reached it, or fails while ``down``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.down = False
        self.sent = threading.Event()

    def send(self, framework_id: str, status: dict[str, Any]) -> bool:
        if self.down:
            raise ConnectionError("master down")
        self.received.append(status)
        self.sent.set()
        return False


def _run(tmp_path: Path, task_id: str = "web") -> TaskRun:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    return TaskRun(
        framework_id="fw",
        task_id=task_id,
        executor_id=task_id,
        container_id="c1",
        info={"name": task_id, "resources": []},
        role="*",
        directory=str(sandbox),
        executor_directory=str(sandbox),
    )


def test_a_checkpointed_task_is_recorded_reported_and_forgotten_once_acknowledged(tmp_path: Path) -> None:
    master = Master()
    runs = Runs(Checkpoint(str(tmp_path)), master.send, lambda: "agent-1", "10.0.0.1", retry_min=10.0)
    run = _run(tmp_path)
    assert runs.add(run, checkpoint=True)
    assert not runs.add(_run(tmp_path), checkpoint=True)  # a re-delivered launch
    assert run.checkpoint_dir is not None
    assert json.loads(Path(run.checkpoint_dir, "task.info").read_text())["task_id"] == "web"

    runs.report(run, "TASK_RUNNING")
    runs.report(run, "TASK_FINISHED", message="Command exited with status 0")
    runs.report(run, "TASK_FAILED")  # nothing changes after a terminal state
    assert [s["state"] for s in run.statuses] == ["TASK_RUNNING", "TASK_FINISHED"]
    assert run.statuses[0]["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"] == "10.0.0.1"
    assert runs.snapshot() == ([], [run])
    updates = [json.loads(line) for line in Path(run.checkpoint_dir, "task.updates").read_text().splitlines()]
    assert [u["status"]["state"] for u in updates] == ["TASK_RUNNING", "TASK_FINISHED"]
    assert all(u["status"]["agent_id"] == {"value": "agent-1"} for u in updates)

    pending = runs.unacknowledged("fw", "web")
    assert [s["state"] for s in pending] == ["TASK_RUNNING", "TASK_FINISHED"]
    runs.acknowledge("fw", "web", pending[0]["uuid"])
    assert os.path.isdir(run.checkpoint_dir)
    runs.acknowledge("fw", "web", pending[1]["uuid"])
    assert not os.path.exists(run.checkpoint_dir)  # terminal and acknowledged: nothing left to recover


def test_a_task_of_a_framework_that_does_not_checkpoint_leaves_no_checkpoint(tmp_path: Path) -> None:
    runs = Runs(Checkpoint(str(tmp_path)), Master().send, lambda: "agent-1", "10.0.0.1", retry_min=10.0)
    run = _run(tmp_path)
    runs.add(run, checkpoint=False)
    runs.report(run, "TASK_RUNNING")
    assert run.checkpoint_dir is None
    assert not (tmp_path / "meta").exists()
    assert runs.of_executor("fw", "web") == [run]


def test_flush_waits_until_every_streams_last_update_reached_the_master() -> None:
    master = Master()
    updates = StatusUpdateManager(master.send, retry_min=10.0)
    updates.start()
    try:
        updates.enqueue("fw", {"task_id": {"value": "a"}, "state": "TASK_KILLED", "uuid": "u1"})
        assert not updates.flush(0.2)  # not registered yet: nothing can go
        updates.resume()
        assert updates.flush(5)
        assert [s["uuid"] for s in master.received] == ["u1"]

        # A later update waits for the scheduler to acknowledge the one before it, and so does the flush.
        updates.enqueue("fw", {"task_id": {"value": "c"}, "state": "TASK_RUNNING", "uuid": "u3"})
        updates.enqueue("fw", {"task_id": {"value": "c"}, "state": "TASK_KILLED", "uuid": "u4"})
        assert not updates.flush(0.3)
        updates.acknowledge("fw", "c", "u3")
        assert updates.flush(5)
        assert [s["uuid"] for s in master.received] == ["u1", "u3", "u4"]

        master.down = True
        updates.enqueue("fw", {"task_id": {"value": "b"}, "state": "TASK_KILLED", "uuid": "u2"})
        assert not updates.flush(0.5)  # a master that does not answer: the agent leaves without it
    finally:
        updates.stop()
