"""Containers outlive the containerizer that started them: a second one (a restarted agent) reattaches, kills, and
learns the exit status from the supervisor."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mesolite.agent.cgroups import Isolator
from mesolite.agent.checkpoint import Checkpoint, destroy_containers, same_process
from mesolite.agent.containerizer import Container, Containerizer, Termination
from tests.cluster import wait_until


def _spec(directory: Path, command: str) -> dict:
    return {
        "kind": "command",
        "argv": ["/bin/sh", "-c", command],
        "executable": "/bin/sh",
        "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        "cwd": str(directory),
        "stdout": str(directory / "stdout"),
        "stderr": str(directory / "stderr"),
        "user": None,
    }


def test_a_restarted_containerizer_reattaches_and_sees_the_exit(tmp_path: Path) -> None:
    checkpoint = Checkpoint(str(tmp_path))
    ended: list[tuple[str, Termination]] = []
    done = threading.Event()

    def on_exit(container: Container, termination: Termination) -> None:
        ended.append((container.id, termination))
        done.set()

    first = Containerizer(checkpoint, Isolator(), on_exit)
    first.start()
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    container = Container("c1", "command", "f", "e", "t", str(sandbox), checkpoint=True)
    first.launch(container, _spec(sandbox, "echo started; exec sleep 1000"))
    pid = container.pid
    assert pid and os.path.exists(f"/proc/{pid}")
    first.stop()  # the old agent is gone; its task is not

    second = Containerizer(checkpoint, Isolator(), on_exit)
    second.start()
    try:
        [record] = checkpoint.containers()
        recovered, termination = second.recover(record, owner="task")
        assert termination is None and recovered.pid == pid and recovered.owner == "task"
        second.kill(recovered, grace=1.0)
        assert done.wait(10)
        [(container_id, how)] = ended
        assert container_id == "c1" and how.returncode == -15 and how.describe().endswith("Terminated")
        assert (sandbox / "stdout").read_text() == "started\n"
        wait_until(lambda: checkpoint.containers() == [], what="the container's record to be dropped")
    finally:
        second.stop()


def test_a_container_that_ended_while_nobody_watched_reports_its_status(tmp_path: Path) -> None:
    checkpoint = Checkpoint(str(tmp_path))
    first = Containerizer(checkpoint, Isolator(), lambda c, t: None)
    container = Container("c2", "command", "f", "e", "t", str(tmp_path), checkpoint=True)
    first.launch(container, _spec(tmp_path, "exit 7"))  # the watcher never started: nobody sees it end
    first.stop()
    [record] = checkpoint.containers()
    supervisor = record["supervisor"]
    wait_until(lambda: not same_process(supervisor["pid"], supervisor["start"]), what="the supervisor to end")
    _, termination = Containerizer(checkpoint, Isolator(), lambda c, t: None).recover(record, owner=None)
    assert termination is not None and termination.returncode == 7
    assert destroy_containers(str(tmp_path)) == 0
