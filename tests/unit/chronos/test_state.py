"""The Chronos state machine without a server: schedules, offers, status updates, retries, dependencies, restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mesolite.chronos.jobs import JobError
from mesolite.chronos.state import ChronosState, Effects, StateConfig, UnknownJob
from mesolite.core.store import MemoryStore

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def state(store: MemoryStore, clock: Clock) -> ChronosState:
    return ChronosState(store, StateConfig(failure_retry=2.0), clock=clock)


def offer(n: int = 1, cpus: float = 4) -> dict[str, Any]:
    return {
        "id": {"value": f"o{n}"},
        "agent_id": {"value": "S1"},
        "hostname": "node-1",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 10000}},
        ],
    }


def launch_all(state: ChronosState) -> list[str]:
    launches, _ = state.match_offers([offer()])
    return [task["task_id"]["value"] for _, tasks in launches for task in tasks]


def update(state: ChronosState, task_id: str, status: str, **extra: Any) -> list:
    """The kills the update asks for (``on_status`` returns every effect)."""
    return effects(state, task_id, status, **extra).kills


def effects(state: ChronosState, task_id: str, status: str, **extra: Any) -> Effects:
    return state.on_status({"task_id": {"value": task_id}, "agent_id": {"value": "S1"}, "state": status, **extra})


def finish(state: ChronosState, task_id: str, status: str = "TASK_FINISHED") -> None:
    update(state, task_id, "TASK_RUNNING")
    update(state, task_id, status)


def test_a_due_job_is_queued_once_then_launched(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "tick", "command": "date", "schedule": "R/2024-05-01T12:00:05Z/PT10S"}, "scheduled")
    assert state.advance_schedules() == datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    assert launch_all(state) == []
    clock.now = T0 + 5.5
    state.advance_schedules()
    state.advance_schedules()
    assert state.current_state("tick") == "queued"
    assert state.get_job("tick")["schedule"] == "R/2024-05-01T12:00:15.000Z/PT10S"
    (task,) = launch_all(state)
    assert task == "ct:1714564805000:0:tick:"
    assert state.current_state("tick") == "1 running"
    finish(state, task)
    job = state.get_job("tick")
    assert job["successCount"] == 1 and job["lastSuccess"] == "2024-05-01T12:00:05.500Z"
    assert state.current_state("tick") == "idle"


def test_finite_schedule_counts_down_and_disables(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "twice", "schedule": "R2/2024-05-01T12:00:00Z/PT10S"}, "scheduled")
    for step in (1, 11):
        clock.now = T0 + step
        state.advance_schedules()
        finish(state, launch_all(state)[0])
    job = state.get_job("twice")
    assert job["schedule"].startswith("R0/") and job["disabled"] is True and job["successCount"] == 2
    clock.now = T0 + 100
    state.advance_schedules()
    assert launch_all(state) == []


def test_non_concurrent_job_drops_a_run_while_one_is_running(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "slow", "schedule": "R/2024-05-01T12:00:00Z/PT1S"}, "scheduled")
    state.advance_schedules()
    (task,) = launch_all(state)
    update(state, task, "TASK_RUNNING")
    clock.now = T0 + 1
    state.advance_schedules()
    assert launch_all(state) == [] and state.current_state("slow") == "1 running"
    state.put_job({"name": "para", "schedule": "R/2024-05-01T12:00:00Z/PT1S", "concurrent": True}, "scheduled")
    state.advance_schedules()
    state.run_now("para")
    assert len(launch_all(state)) == 2


def test_failed_runs_are_retried_after_the_delay_then_marked_failed(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "flaky", "command": "exit 1", "schedule": "R1//PT1H", "retries": 2}, "scheduled")
    state.advance_schedules()
    attempts = []
    for attempt in range(3):
        tasks = launch_all(state)
        assert len(tasks) == 1, f"attempt {attempt}"
        attempts.append(tasks[0])
        finish(state, tasks[0], "TASK_FAILED")
        if attempt < 2:
            assert launch_all(state) == []  # waits --failure_retry
            clock.now += 2.0
    assert [a.split(":")[2] for a in attempts] == ["0", "1", "2"]
    assert launch_all(state) == []
    job = state.get_job("flaky")
    assert job["errorCount"] == 1 and job["errorsSinceLastSuccess"] == 1 and job["lastError"]
    assert state.graph_csv() == "node,flaky,failure,idle\n"
    history = state.job_stat("flaky")["taskStatHistory"]
    assert [entry["status"] for entry in history] == ["Fail"] * 3


def test_a_job_whose_last_run_failed_is_not_retried(state: ChronosState) -> None:
    # Chronos retries only if the job never failed or succeeded since its last failure.
    state.put_job({"name": "bad", "schedule": "R//PT1H", "lastError": "2024-01-01T00:00:00.000Z"}, "scheduled")
    state.advance_schedules()
    finish(state, launch_all(state)[0], "TASK_LOST")
    assert state.get_job("bad")["errorCount"] == 1
    assert state.current_state("bad") == "idle"


def test_disable_after_failures(store: MemoryStore, clock: Clock) -> None:
    state = ChronosState(store, StateConfig(disable_after_failures=1), clock=clock)
    state.put_job({"name": "bad", "schedule": "R//PT1H", "retries": 0}, "scheduled")
    state.advance_schedules()
    finish(state, launch_all(state)[0], "TASK_FAILED")
    assert state.get_job("bad")["disabled"] is True


def test_dependent_job_runs_after_all_parents_and_survives_a_restart(store: MemoryStore, clock: Clock) -> None:
    state = ChronosState(store, clock=clock)
    for name in ("a", "b"):
        state.put_job({"name": name, "schedule": "R/2030-01-01T00:00:00Z/P1D"}, "scheduled")
    state.put_job({"name": "c", "parents": ["a", "b"]}, "dependent")
    state.run_now("a")
    finish(state, launch_all(state)[0])
    assert state.current_state("c") == "idle"
    state.run_now("a")  # a twice still counts once
    finish(state, launch_all(state)[0])

    restarted = ChronosState(store, clock=clock)
    assert restarted.deps == {"c": {"a"}}
    restarted.run_now("b")
    finish(restarted, launch_all(restarted)[0])
    assert restarted.current_state("c") == "queued"
    (task,) = launch_all(restarted)
    assert task.split(":")[3] == "c"
    finish(restarted, task)
    assert restarted.get_job("c")["successCount"] == 1 and restarted.deps == {}


def test_soft_error_still_fires_dependents(state: ChronosState) -> None:
    state.put_job({"name": "p", "schedule": "R/2030-01-01T00:00:00Z/P1D", "retries": 0, "softError": True}, "s")
    state.put_job({"name": "child", "parents": ["p"]}, "dependent")
    state.run_now("p")
    finish(state, launch_all(state)[0], "TASK_FAILED")
    assert state.current_state("child") == "queued"


def test_mark_success_fires_dependents_and_disabled_children_are_skipped(state: ChronosState) -> None:
    state.put_job({"name": "p", "schedule": "R/2030-01-01T00:00:00Z/P1D"}, "scheduled")
    state.put_job({"name": "on", "parents": ["p"]}, "dependent")
    state.put_job({"name": "off", "parents": ["p"], "disabled": True}, "dependent")
    assert state.mark_success("p") is True
    assert state.get_job("p")["successCount"] == 1
    assert (state.current_state("on"), state.current_state("off")) == ("queued", "idle")
    assert state.mark_success("nope") is False


def test_unknown_parents_and_cycles_are_rejected(state: ChronosState) -> None:
    with pytest.raises(JobError, match="parent 'ghost' does not exist"):
        state.put_job({"name": "c", "parents": ["ghost"]}, "dependent")
    state.put_job({"name": "a", "schedule": "R//P1D"}, "scheduled")
    state.put_job({"name": "b", "parents": ["a"]}, "dependent")
    with pytest.raises(JobError, match="cycle"):
        state.put_job({"name": "a", "parents": ["b"]}, "dependent")


def test_delete_reparents_children_and_returns_running_tasks_to_kill(state: ChronosState) -> None:
    state.put_job({"name": "root", "schedule": "R/2030-01-01T00:00:00Z/P1D"}, "scheduled")
    state.put_job({"name": "mid", "parents": ["root"], "concurrent": True}, "dependent")
    state.put_job({"name": "leaf", "parents": ["mid"]}, "dependent")
    state.run_now("mid")
    (task,) = launch_all(state)
    state.run_now("mid")  # queued, not launched: simply dropped
    assert state.delete_job("mid").kills == [(task, "S1")]
    assert state.get_job("leaf")["parents"] == ["root"]
    assert state.current_state("mid") == "idle"
    assert update(state, task, "TASK_RUNNING") == [(task, "S1")]  # a task of a deleted job is killed
    state.delete_job("root")
    assert state.get_job("leaf")["schedule"] == "R/2030-01-01T00:00:00Z/P1D"
    with pytest.raises(UnknownJob):
        state.delete_job("root")


def test_kill_tasks_drops_queued_runs_and_reports_launched_ones(state: ChronosState) -> None:
    state.put_job({"name": "long", "schedule": "R/2030-01-01T00:00:00Z/P1D", "concurrent": True}, "scheduled")
    state.run_now("long")
    (task,) = launch_all(state)
    state.run_now("long")
    assert state.kill_tasks("long") == [(task, "S1")]
    assert state.current_state("long") == "1 running"
    update(state, task, "TASK_KILLED")
    assert state.current_state("long") == "idle"
    assert state.get_job("long")["errorCount"] == 0  # a kill is not a failure of the job


def test_run_now_with_arguments(state: ChronosState) -> None:
    state.put_job({"name": "echo", "command": "echo", "schedule": "R/2030-01-01T00:00:00Z/P1D"}, "scheduled")
    state.run_now("echo", "hello; rm -rf /")
    launches, _ = state.match_offers([offer()])
    task = launches[0][1][0]
    assert task["task_id"]["value"].endswith(":echo:hello rm -rf /")
    assert task["command"]["value"] == "echo hello rm -rf /"


def test_high_priority_runs_go_first_and_offers_are_packed(state: ChronosState) -> None:
    state.put_job({"name": "low", "schedule": "R/2030-01-01T00:00:00Z/P1D", "cpus": 1}, "scheduled")
    state.put_job({"name": "high", "schedule": "R/2030-01-01T00:00:00Z/P1D", "cpus": 1, "highPriority": True}, "s")
    state.run_now("low")
    state.run_now("high")
    launches, unused = state.match_offers([offer(1, cpus=1), offer(2, cpus=1), offer(3, cpus=1)])
    assert [(o["id"]["value"], t[0]["task_id"]["value"].split(":")[3]) for o, t in launches] == [
        ("o1", "high"),
        ("o2", "low"),
    ]
    assert unused == ["o3"]


def test_constraints_keep_runs_queued(state: ChronosState) -> None:
    job = {"name": "pinned", "schedule": "R/2030-01-01T00:00:00Z/P1D", "constraints": [["rack", "EQUALS", "2"]]}
    state.put_job(job, "scheduled")
    state.run_now("pinned")
    assert launch_all(state) == [] and state.current_state("pinned") == "queued"
    racked = {**offer(), "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "2"}}]}
    launches, _ = state.match_offers([racked])
    assert len(launches) == 1


def test_everything_survives_a_restart(store: MemoryStore, clock: Clock) -> None:
    state = ChronosState(store, clock=clock)
    state.put_job({"name": "tick", "schedule": "R/2024-05-01T12:00:00Z/PT10S"}, "scheduled")
    state.advance_schedules()
    finish(state, launch_all(state)[0])
    clock.now = T0 + 10
    state.advance_schedules()
    (running,) = launch_all(state)
    update(state, running, "TASK_RUNNING")

    restarted = ChronosState(store, clock=clock)
    job = restarted.get_job("tick")
    assert job["successCount"] == 1 and job["schedule"] == "R/2024-05-01T12:00:20.000Z/PT10S"
    assert restarted.current_state("tick") == "1 running"
    assert restarted.launched() == [(running, "S1")]
    assert restarted.job_stat("tick")["histogram"]["count"] == 1
    update(restarted, running, "TASK_FINISHED")
    assert restarted.get_job("tick")["successCount"] == 2


def test_lost_launch_returns_runs_to_the_queue(state: ChronosState) -> None:
    state.put_job({"name": "x", "schedule": "R/2030-01-01T00:00:00Z/P1D"}, "scheduled")
    state.run_now("x")
    (task,) = launch_all(state)
    state.launch_failed([task])
    assert state.current_state("x") == "queued"
    assert launch_all(state) == [task]


def test_unknown_task_of_an_existing_job_is_adopted(state: ChronosState) -> None:
    state.put_job({"name": "x", "schedule": "R/2030-01-01T00:00:00Z/P1D"}, "scheduled")
    assert update(state, "ct:1714564800000:0:x:", "TASK_RUNNING") == []
    assert state.current_state("x") == "1 running"
    assert update(state, "not-ours", "TASK_RUNNING") == [("not-ours", "S1")]
