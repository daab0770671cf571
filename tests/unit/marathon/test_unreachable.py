"""unreachableStrategy on the service, with status updates fed as the master sends them and the clock moved by
hand: inactive after ``inactiveAfterSeconds`` (then replaced), expunged after ``expungeAfterSeconds``, ``disabled``
waits; a task back from its agent counts again and the youngest surplus instance dies."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mesolite.core.store import MemoryStore
from mesolite.marathon.appdef import Invalid, normalize_app
from mesolite.marathon.service import Marathon, MarathonConfig
from mesolite.marathon.state import Task


@pytest.fixture
def marathon() -> Marathon:
    service = Marathon(MarathonConfig(master="127.0.0.1:1", work_dir=""), MemoryStore())
    service.loaded.set()
    return service


def deployed(m: Marathon, strategy: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": "/app", "cmd": "sleep 60"}
    if strategy is not None:
        fields["unreachableStrategy"] = strategy
    deployment = m.create_app(normalize_app(fields))
    m.state.delete_deployment(deployment.id)  # as if it had finished: the app is only kept at its count
    return m.state.apps["/app"]


def running(m: Marathon, app: dict[str, Any], task_id: str, staged: float) -> Task:
    task = Task(task_id, "/app", "agent", "host", [], [], app["version"], app["version"], "t", staged_time=staged)
    m.state.add_task(task)
    m.scheduler.updates.apply({"task_id": {"value": task_id}, "state": "TASK_RUNNING"})
    return task


def unreachable(m: Marathon, task_id: str, at: float) -> None:
    status = {
        "task_id": {"value": task_id},
        "state": "TASK_UNREACHABLE",
        "unreachable_time": {"nanoseconds": int(at * 1e9)},
    }
    m.scheduler.updates.apply(status)


def test_inactive_after_then_expunged_after(marathon: Marathon) -> None:
    app = deployed(marathon, {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 60})
    task = running(marathon, app, "app.1", time.time())
    t0 = time.time()
    unreachable(marathon, "app.1", t0)
    assert task.unreachable_since == pytest.approx(t0) and task.active
    marathon._age_unreachable(t0 + 9)
    assert task.active and marathon._keep_scaled(app) == 0  # still counts: no replacement yet
    marathon._age_unreachable(t0 + 10)
    assert task.inactive and not task.active and marathon._keep_scaled(app) == 1
    assert marathon.state.store.get("tasks/app.1")["inactive"] is True  # survives a failover
    marathon._age_unreachable(t0 + 60)
    assert "app.1" not in marathon.state.tasks and "app.1" in marathon.scheduler.expunged_unreachable


def test_the_returning_task_stays_and_the_replacement_dies(marathon: Marathon) -> None:
    app = deployed(marathon, {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 600})
    now = time.time()
    original = running(marathon, app, "app.old", now - 100)
    unreachable(marathon, "app.old", now)
    marathon._age_unreachable(now)
    assert original.inactive
    replacement = running(marathon, app, "app.new", now + 1)
    marathon.scheduler.updates.apply({"task_id": {"value": "app.old"}, "state": "TASK_RUNNING"})  # reconciled
    assert original.active and original.unreachable_since is None and not original.inactive
    assert marathon._keep_scaled(app) == 0
    assert replacement.killing and not original.killing


def test_disabled_waits_for_the_agent(marathon: Marathon) -> None:
    app = deployed(marathon, "disabled")
    task = running(marathon, app, "app.1", time.time())
    unreachable(marathon, "app.1", time.time() - 10_000)
    marathon._age_unreachable(time.time())
    assert task.active and not task.inactive and marathon._keep_scaled(app) == 0


def test_default_zero_zero_replaces_and_forgets_at_once(marathon: Marathon) -> None:
    app = deployed(marathon, None)
    assert app["unreachableStrategy"] == {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
    running(marathon, app, "app.1", time.time())
    unreachable(marathon, "app.1", time.time())
    marathon._age_unreachable(time.time())
    assert marathon.state.tasks == {} and marathon._keep_scaled(app) == 1


def test_killing_an_unreachable_task_expunges_it(marathon: Marathon) -> None:
    app = deployed(marathon, "disabled")
    running(marathon, app, "app.1", time.time())
    unreachable(marathon, "app.1", time.time())
    marathon.kill_task(marathon.state.tasks["app.1"], "scale down")
    assert marathon.state.tasks == {} and "app.1" in marathon.scheduler.expunged_unreachable


def test_task_unknown_is_over(marathon: Marathon) -> None:
    app = deployed(marathon, None)
    running(marathon, app, "app.1", time.time())
    marathon.scheduler.updates.apply({"task_id": {"value": "app.1"}, "state": "TASK_UNKNOWN"})
    assert marathon.state.tasks == {} and marathon.state.last_failures["/app"]["state"] == "TASK_UNKNOWN"


def test_resident_apps_default_to_disabled_and_may_not_enable_it() -> None:
    volume = {"containerPath": "data", "persistent": {"size": 10}, "mode": "RW"}
    resident = {"id": "/db", "cmd": "x", "container": {"type": "MESOS", "volumes": [volume]}}
    assert normalize_app(resident)["unreachableStrategy"] == "disabled"
    with pytest.raises(Invalid) as invalid:
        normalize_app({**resident, "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 2}})
    assert invalid.value.errors == [("/unreachableStrategy", "unreachableStrategy must be disabled for resident apps")]
