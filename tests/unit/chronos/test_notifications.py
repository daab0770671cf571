"""The notifications the Chronos state machine returns as effects: triggers, recipients and texts (upstream's), and
the two ways a running job reports back, the progress counter and 2.x's asynchronous end."""

from __future__ import annotations

import pytest

from mesolite.chronos.notifications import Notification, recipients
from mesolite.chronos.state import ChronosState, StateConfig, TaskError, UnknownJob
from mesolite.core.store import MemoryStore
from tests.unit.chronos.test_state import T0, Clock, effects, finish, launch_all, update

FAR = "R/2030-01-01T00:00:00Z/P1D"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> ChronosState:
    return ChronosState(MemoryStore(), StateConfig(failure_retry=2.0), clock=clock)


def run_once(state: ChronosState, name: str, final: str, **extra: object) -> list[Notification]:
    state.run_now(name)
    (task,) = launch_all(state)
    update(state, task, "TASK_RUNNING")
    return effects(state, task, final, **extra).notifications


def test_owner_is_split_as_upstream_splits_it() -> None:
    assert recipients("ops@example.com, dev@example.com ,x@example.com") == [
        "ops@example.com",
        "dev@example.com",
        "x@example.com",
    ]
    assert recipients("ops@example.com,,") == ["ops@example.com"]
    assert recipients("") == [""]  # the chat and webhook channels still hear of an owner-less job


def test_failure_beyond_retries_tells_the_owners_once_with_upstreams_text(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "etl", "schedule": FAR, "retries": 1, "owner": "ops@example.com, dev@example.com"}, "s")
    message = "Command exited with status 7"
    assert run_once(state, "etl", "TASK_FAILED", message=message) == []  # a retry follows: nothing yet
    clock.now += 2.0
    (retry,) = launch_all(state)
    assert retry.split(":")[2] == "1"
    clock.now += 0.25
    (notice,) = effects(state, retry, "TASK_FAILED", message=message).notifications
    assert notice.subject == " [Chronos] job 'etl' failed!"
    assert notice.message == (
        "\n'2024-05-01T12:00:02.250Z'. Retries attempted: 1.\n"
        f"Task id: {retry}\n"
        "The scheduler provided this message:\n\nCommand exited with status 7"
    )
    assert notice.recipients == ["ops@example.com", "dev@example.com"]
    # The job as the failure left it: the webhook sends these counters.
    assert notice.job["errorCount"] == 1 and notice.job["lastError"] == "2024-05-01T12:00:02.250Z"


def test_no_scheduler_message_no_paragraph_and_the_cluster_name_prefixes_the_subject(clock: Clock) -> None:
    state = ChronosState(MemoryStore(), StateConfig(cluster_name="prod"), clock=clock)
    state.put_job({"name": "etl", "schedule": FAR, "retries": 0, "owner": "ops@example.com"}, "scheduled")
    (notice,) = run_once(state, "etl", "TASK_LOST")
    assert notice.subject == "[prod] [Chronos] job 'etl' failed!"
    assert notice.message is not None and notice.message.endswith(":etl:\n")
    assert "scheduler provided" not in notice.message


def test_the_failure_that_disables_the_job_says_so_instead(clock: Clock) -> None:
    state = ChronosState(MemoryStore(), StateConfig(disable_after_failures=2), clock=clock)
    state.put_job({"name": "bad", "schedule": FAR, "retries": 0, "owner": "ops@example.com"}, "scheduled")
    (first,) = run_once(state, "bad", "TASK_FAILED")
    assert first.subject.endswith("job 'bad' failed!")
    clock.now += 60
    (second,) = run_once(state, "bad", "TASK_FAILED", message="OOM")
    assert second.subject == " [Chronos] job 'bad' disabled"
    assert second.message is not None and second.message.startswith(
        "\nFailed at '2024-05-01T12:01:00.000Z', 2 failures since last success\nTask id: ct:"
    )
    assert second.message.endswith("The scheduler provided this message:\n\nOOM")
    assert state.get_job("bad")["disabled"] is True


def test_success_tells_nobody_unless_the_schedule_ran_out(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "forever", "schedule": FAR, "owner": "ops@example.com"}, "scheduled")
    assert run_once(state, "forever", "TASK_FINISHED") == []
    assert state.mark_success("forever") is True  # no effects to return, nothing to tell

    state.put_job({"name": "twice", "schedule": "R2/2024-05-01T12:00:00Z/PT10S", "owner": "o@example.com"}, "s")
    told = []
    for step in (1, 11):
        clock.now = T0 + step
        state.advance_schedules()
        (task,) = launch_all(state)
        update(state, task, "TASK_RUNNING")
        told.append(effects(state, task, "TASK_FINISHED").notifications)
    assert told[0] == []
    (notice,) = told[1]
    assert notice.subject == " [Chronos] job 'twice' disabled"
    assert notice.message == (
        "JobSchedule 'twice' has exhausted all of its recurrences and has been disabled.\n"
        "Please consider either removing your job, or updating its schedule and re-enabling it.\n"
    )


def test_a_kill_tells_nobody_and_a_delete_tells_the_owners(state: ChronosState) -> None:
    state.put_job({"name": "gone", "schedule": FAR, "owner": "a@example.com,b@example.com"}, "scheduled")
    assert run_once(state, "gone", "TASK_KILLED") == []
    state.run_now("gone")
    (task,) = launch_all(state)
    result = state.delete_job("gone")
    assert result.kills == [(task, "S1")]
    (notice,) = result.notifications
    assert (notice.subject, notice.message) == (" [Chronos] Your job 'gone' was deleted!", None)
    assert notice.recipients == ["a@example.com", "b@example.com"]


# ------------------------------------------------------------------------------------------------ async (2.x)


def test_an_async_job_succeeds_only_when_it_reports(state: ChronosState) -> None:
    state.put_job({"name": "hadoop", "schedule": FAR, "async": True}, "scheduled")
    state.put_job({"name": "after", "parents": ["hadoop"]}, "dependent")
    state.run_now("hadoop")
    (task,) = launch_all(state)
    finish(state, task)  # the task only started the work
    assert state.get_job("hadoop")["successCount"] == 0
    assert state.current_state("hadoop") == "1 running" and state.current_state("after") == "idle"
    assert state.launched() == []  # nothing left in Mesos to reconcile
    assert update(state, task, "TASK_FINISHED") == []  # a late duplicate changes nothing

    assert state.report_async(task, 0).notifications == []
    assert state.get_job("hadoop")["successCount"] == 1
    assert state.current_state("hadoop") == "idle" and state.current_state("after") == "queued"
    assert state.report_async(task, 0).notifications == []  # reported again: counted once
    assert state.get_job("hadoop")["successCount"] == 1


def test_an_async_report_before_the_tasks_end_counts_once(state: ChronosState) -> None:
    state.put_job({"name": "spark", "schedule": FAR, "async": True, "retries": 0, "owner": "o@example.com"}, "s")
    state.run_now("spark")
    (task,) = launch_all(state)
    update(state, task, "TASK_RUNNING")
    (notice,) = state.report_async(task, 3).notifications  # fails: its owners hear of it
    assert notice.subject.endswith("job 'spark' failed!")
    assert state.get_job("spark")["errorCount"] == 1
    assert state.current_state("spark") == "1 running"  # the task is still there until Mesos ends it
    assert update(state, task, "TASK_FINISHED") == []
    assert state.current_state("spark") == "idle"
    job = state.get_job("spark")
    assert (job["errorCount"], job["successCount"]) == (1, 0)
    assert [e["status"] for e in state.job_stat("spark")["taskStatHistory"]] == ["Fail"]


def test_an_async_failure_is_retried_like_a_failed_task(state: ChronosState, clock: Clock) -> None:
    state.put_job({"name": "flaky", "schedule": FAR, "async": True, "retries": 1}, "scheduled")
    state.run_now("flaky")
    (task,) = launch_all(state)
    finish(state, task)
    assert state.report_async(task, 1).notifications == []
    clock.now += 2.0
    (retry,) = launch_all(state)
    assert retry.split(":")[2] == "1"


def test_async_reports_for_unknown_runs_are_refused(state: ChronosState) -> None:
    state.put_job({"name": "x", "schedule": FAR, "async": True}, "scheduled")
    with pytest.raises(TaskError, match="Task id ct:1:0:x: not found"):
        state.report_async("ct:1:0:x:", 0)
    with pytest.raises(UnknownJob):
        state.report_async("ct:1:0:nope:", 0)
    state.run_now("x")
    (queued,) = state.runs
    with pytest.raises(TaskError, match="has not been launched"):
        state.report_async(queued, 0)


def test_an_async_run_survives_a_restart_and_a_kill_clears_it(clock: Clock) -> None:
    store = MemoryStore()
    state = ChronosState(store, clock=clock)
    state.put_job({"name": "a", "schedule": FAR, "async": True}, "scheduled")
    state.run_now("a")
    (task,) = launch_all(state)
    finish(state, task)
    restarted = ChronosState(store, clock=clock)
    assert restarted.current_state("a") == "1 running" and restarted.launched() == []
    assert restarted.kill_tasks("a") == []  # no Mesos task to kill: the wait simply ends
    assert restarted.current_state("a") == "idle"
    assert restarted.get_job("a")["successCount"] == 0


# ----------------------------------------------------------------------------------------------- progress


def test_progress_adds_up_per_task_and_outlives_the_run(clock: Clock) -> None:
    store = MemoryStore()
    state = ChronosState(store, clock=clock)
    state.put_job({"name": "etl", "schedule": FAR, "dataProcessingJobType": True}, "scheduled")
    state.run_now("etl")
    (task,) = launch_all(state)
    update(state, task, "TASK_RUNNING")
    state.add_progress("etl", task, 5)
    state.add_progress("etl", task, 0)
    (entry,) = state.job_stat("etl")["taskStatHistory"]
    assert (entry["status"], entry["numElementsProcessed"]) == ("Running", 5)

    restarted = ChronosState(store, clock=clock)
    restarted.add_progress("etl", task, 7)
    update(restarted, task, "TASK_FINISHED")
    restarted.add_progress("etl", task, 1)  # a late report of the finished run still counts
    (entry,) = restarted.job_stat("etl")["taskStatHistory"]
    assert (entry["status"], entry["numElementsProcessed"]) == ("Success", 13)
    assert ChronosState(store, clock=clock).job_stat("etl")["taskStatHistory"][0]["numElementsProcessed"] == 13


def test_progress_needs_a_data_processing_job_and_one_of_its_tasks(state: ChronosState) -> None:
    state.put_job({"name": "plain", "schedule": FAR}, "scheduled")
    state.put_job({"name": "data", "schedule": FAR, "dataProcessingJobType": True}, "scheduled")
    state.run_now("plain")
    (task,) = launch_all(state)
    with pytest.raises(TaskError, match="JobSchedule 'plain' is not enabled to track data"):
        state.add_progress("plain", task, 1)
    with pytest.raises(TaskError, match="not found"):
        state.add_progress("data", task, 1)  # another job's task
    with pytest.raises(UnknownJob):
        state.add_progress("ghost", task, 1)
    assert "numElementsProcessed" not in state.job_stat("plain")["taskStatHistory"][0]
