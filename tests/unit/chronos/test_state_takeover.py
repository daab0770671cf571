"""A leader that dies between two writes: the next one (a new ChronosState on the same store) neither repeats nor
loses what the dead one was doing. Each test makes the store fail at one write, as a kill -9 there would."""

from __future__ import annotations

from typing import Any

import pytest

from mesolite.chronos.state import ChronosState, StateConfig
from mesolite.core.store import MemoryStore
from tests.unit.chronos.test_state import T0, Clock, finish, launch_all, update


class Died(Exception):
    pass


class DyingStore(MemoryStore):
    """Fails the first write whose key starts with ``prefix`` (``put`` or ``delete``), then works again."""

    def __init__(self) -> None:
        super().__init__()
        self.die_at: tuple[str, str] | None = None

    def _maybe_die(self, operation: str, key: str) -> None:
        if self.die_at and self.die_at[0] == operation and key.startswith(self.die_at[1]):
            self.die_at = None
            raise Died(f"{operation} {key}")

    def put(self, key: str, value: Any) -> None:
        self._maybe_die("put", key)
        super().put(key, value)

    def delete(self, key: str) -> None:
        self._maybe_die("delete", key)
        super().delete(key)


@pytest.fixture
def store() -> DyingStore:
    return DyingStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def new_leader(store: DyingStore, clock: Clock) -> ChronosState:
    return ChronosState(store, StateConfig(failure_retry=2.0), clock=clock)


TICK = {"name": "tick", "command": "date", "schedule": "R/2024-05-01T12:00:05Z/PT10S"}


def test_dying_after_queueing_an_occurrence_but_before_advancing_the_schedule(store: DyingStore, clock: Clock) -> None:
    old = new_leader(store, clock)
    old.put_job(TICK, "scheduled")
    clock.now = T0 + 5.5
    store.die_at = ("put", "jobs/")
    with pytest.raises(Died):
        old.advance_schedules()

    leader = new_leader(store, clock)
    assert leader.get_job("tick")["schedule"] == TICK["schedule"]  # not advanced
    leader.advance_schedules()
    assert leader.get_job("tick")["schedule"] == "R/2024-05-01T12:00:15.000Z/PT10S"
    assert launch_all(leader) == ["ct:1714564805000:0:tick:"]  # the occurrence runs, once


def test_concurrent_jobs_do_not_run_a_recovered_occurrence_twice(store: DyingStore, clock: Clock) -> None:
    old = new_leader(store, clock)
    old.put_job({**TICK, "concurrent": True}, "scheduled")
    clock.now = T0 + 5.5
    store.die_at = ("put", "jobs/")
    with pytest.raises(Died):
        old.advance_schedules()
    leader = new_leader(store, clock)
    leader.advance_schedules()
    assert launch_all(leader) == ["ct:1714564805000:0:tick:"]


def test_a_finished_run_is_counted_once_when_its_update_comes_again(store: DyingStore, clock: Clock) -> None:
    old = new_leader(store, clock)
    old.put_job(TICK, "scheduled")
    clock.now = T0 + 5.5
    old.advance_schedules()
    (task,) = launch_all(old)
    update(old, task, "TASK_RUNNING")
    store.die_at = ("delete", "runs/")  # recorded and counted, then died before dropping the run
    with pytest.raises(Died):
        update(old, task, "TASK_FINISHED")

    leader = new_leader(store, clock)
    assert leader.current_state("tick") == "1 running"
    update(leader, task, "TASK_FINISHED")  # the agent resends the unacknowledged update
    assert leader.get_job("tick")["successCount"] == 1
    assert leader.current_state("tick") == "idle"
    assert [entry["status"] for entry in leader.job_stat("tick")["taskStatHistory"]] == ["Success"]


def test_a_failed_run_is_retried_once_when_its_update_comes_again(store: DyingStore, clock: Clock) -> None:
    old = new_leader(store, clock)
    old.put_job({**TICK, "retries": 1}, "scheduled")
    clock.now = T0 + 5.5
    old.advance_schedules()
    (task,) = launch_all(old)
    store.die_at = ("delete", "runs/")
    with pytest.raises(Died):
        finish(old, task, "TASK_FAILED")

    leader = new_leader(store, clock)
    update(leader, task, "TASK_FAILED")
    retries = [run for run in leader.runs.values() if run.attempt == 1]
    assert len(retries) == 1 and len(leader.runs) == 1
    assert leader.get_job("tick")["errorCount"] == 0  # a retry is pending: not an error yet


def test_a_launch_recorded_but_never_sent_goes_back_to_the_queue(store: DyingStore, clock: Clock) -> None:
    old = new_leader(store, clock)
    old.put_job(TICK, "scheduled")
    old.put_job({**TICK, "name": "other"}, "scheduled")
    clock.now = T0 + 5.5
    old.advance_schedules()
    other_task, tick_task = sorted(launch_all(old))  # both recorded as launched; then the leader died
    update(old, other_task, "TASK_RUNNING")  # this one did reach Mesos

    leader = new_leader(store, clock)
    gone = {"reason": "REASON_RECONCILIATION", "message": "Reconciliation: task is unknown"}
    update(leader, tick_task, "TASK_GONE", **gone)
    assert leader.current_state("tick") == "queued"
    assert leader.get_job("tick")["errorCount"] == 0
    assert launch_all(leader) == [tick_task]
    # A run the master had seen and then lost is a failed attempt as before (retried as the next attempt).
    update(leader, other_task, "TASK_GONE", **gone)
    (retry,) = [run for run in leader.runs.values() if run.job == "other"]
    assert retry.attempt == 1 and retry.task_id != other_task


def test_run_keys_are_single_path_segments_and_old_keys_move(clock: Clock) -> None:
    store = MemoryStore()
    state = ChronosState(store, clock=clock)
    state.put_job({**TICK, "name": ".."}, "scheduled")
    state.run_now("..", "--from a/b --to c")
    assert sorted(store.list("")) == ["jobs/%2E%2E", "runs/ct:1714564800000:0:..:--from%20a%2Fb%20--to%20c"]
    # A store written before keys were escaped still loads, and its keys are rewritten.
    (value,) = store.list("runs/").values()
    store.delete("runs/ct:1714564800000:0:..:--from%20a%2Fb%20--to%20c")
    store.put("runs/ct:1714564800000:0:..:--from a/b --to c", value)
    restarted = ChronosState(store, clock=clock)
    assert restarted.current_state("..") == "queued"
    assert list(store.list("runs/")) == ["runs/ct:1714564800000:0:..:--from%20a%2Fb%20--to%20c"]
    assert restarted.delete_job("..").kills == []
    assert store.list("") == {}
