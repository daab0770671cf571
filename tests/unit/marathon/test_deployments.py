"""Deployment plans (dependency layers, action kinds) and the rolling-restart rule, on an in-memory state."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from mesolite.core.store import MemoryStore
from mesolite.marathon.appdef import Invalid, normalize_app
from mesolite.marathon.deployments import RESTART, SCALE, START, STOP, Runner, build_steps
from mesolite.marathon.state import Deployment, State, Task

_ids = itertools.count()


def app(app_id: str, instances: int = 1, **extra: Any) -> dict[str, Any]:
    definition = normalize_app({"id": app_id, "cmd": "sleep 1", "instances": instances, **extra})
    definition["version"] = "2024-01-01T00:00:00.000Z"
    definition["versionInfo"] = {"lastScalingAt": definition["version"], "lastConfigChangeAt": "v2"}
    return definition


def test_steps_follow_dependency_layers() -> None:
    target = {"/db": app("/db"), "/api": app("/api", dependencies=["/db"]), "/web": app("/web", dependencies=["/api"])}
    groups = {"/": {"id": "/", "dependencies": []}}
    steps, affected = build_steps({}, target, groups, {a: "/" for a in target})
    assert [[a["action"] for a in s] for s in steps] == [[START] * 3, [SCALE], [SCALE], [SCALE]]
    assert [s[0]["app"] for s in steps[1:]] == ["/db", "/api", "/web"]
    assert affected == ["/api", "/db", "/web"]


def test_group_dependencies_are_inherited() -> None:
    target = {"/p/db/a": app("/p/db/a"), "/p/svc/b": app("/p/svc/b")}
    groups = {"/": {}, "/p": {}, "/p/db": {}, "/p/svc": {"dependencies": ["/p/db"]}}
    app_group = {"/p/db/a": "/p/db", "/p/svc/b": "/p/svc"}
    steps, _ = build_steps({}, target, groups, app_group)
    assert [[a["app"] for a in s] for s in steps[1:]] == [["/p/db/a"], ["/p/svc/b"]]


def test_cycles_are_refused() -> None:
    target = {"/a": app("/a", dependencies=["/b"]), "/b": app("/b", dependencies=["/a"])}
    with pytest.raises(Invalid):
        build_steps({}, target, {"/": {}}, {"/a": "/", "/b": "/"})


def test_scale_restart_and_stop() -> None:
    old = {"/s": app("/s", 1), "/r": app("/r", 1), "/gone": app("/gone")}
    new = {"/s": app("/s", 3), "/r": app("/r", 1, cmd="sleep 2")}
    steps, _ = build_steps(old, new, {"/": {}}, {"/s": "/", "/r": "/"})
    assert steps[0] == [{"action": STOP, "app": "/gone"}]
    kinds = {a["app"]: a["action"] for a in steps[1]}
    assert kinds == {"/r": RESTART, "/s": SCALE}


class Cluster:
    """Tasks in an in-memory State; ``healthy`` is what the test says."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.state = State(MemoryStore())
        self.state.apps[definition["id"]] = definition
        self.app = definition
        self.killed: list[str] = []
        self.runner = Runner(self.state, self.kill, lambda t, a: t.running)

    def kill(self, task: Task, reason: str) -> None:
        task.killing = True
        self.killed.append(task.id)

    def add(self, config: str, running: bool = True) -> Task:
        n = next(_ids)
        task = Task(
            id=f"t{n}",
            app_id=self.app["id"],
            agent_id="a",
            host="h",
            ports=[],
            service_ports=[],
            version="v",
            config_version=config,
            staged_at=f"{n:06d}",
            state="TASK_RUNNING" if running else "TASK_STAGING",
            staged_time=float(n),
        )
        self.state.add_task(task)
        return task

    def finish_kills(self) -> None:
        for task_id in list(self.killed):
            self.state.expunge_task(task_id)
        self.killed.clear()

    def healthy(self) -> int:
        return sum(1 for t in self.state.tasks.values() if t.running and not t.killing)


@pytest.mark.parametrize(("minimum", "over"), [(1.0, 1.0), (0.5, 0.0), (1.0, 0.0), (0.75, 0.25), (0.0, 0.0)])
def test_rolling_restart_keeps_minimum_health_and_capacity(minimum: float, over: float) -> None:
    definition = app("/r", 4, upgradeStrategy={"minimumHealthCapacity": minimum, "maximumOverCapacity": over})
    c = Cluster(definition)
    for _ in range(4):
        c.add("v1")
    deployment = Deployment(
        id="d", version="v2", affected_apps=["/r"], steps=[[{"action": RESTART, "app": "/r"}]], original={}, target={}
    )
    floor = -(-4 * minimum // 1)
    ceiling = int(4 * (1 + over)) + (1 if minimum == 1.0 and over == 0.0 else 0)
    for _ in range(40):
        if c.runner.step_done(deployment):
            break
        demand = c.runner.advance(deployment).get("/r", 0)
        assert c.healthy() >= floor, "killed below minimumHealthCapacity"
        c.finish_kills()
        for _ in range(demand):
            c.add("v2")
        assert len(c.state.tasks) <= ceiling, "over maximumOverCapacity"
    assert c.runner.step_done(deployment)
    assert sorted(t.config_version for t in c.state.tasks.values()) == ["v2"] * 4
