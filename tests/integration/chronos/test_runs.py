"""Jobs running on a real agent: repeating schedules, retries, dependencies, kills, and a Chronos restart."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import requests

from tests.cluster import wait_until
from tests.integration.chronos.conftest import ChronosCluster

FAR_FUTURE = "R/2100-01-01T00:00:00Z/P1D"


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_repeating_schedule_runs_several_times_with_output_in_the_sandbox(chronos: ChronosCluster) -> None:
    schedule = f"R/{in_seconds(2)}/PT3S"
    assert chronos.post_job({"name": "every3s", "command": "echo tick-$CHRONOS_JOB_NAME", "schedule": schedule}).ok
    wait_until(lambda: chronos.job("every3s")["successCount"] >= 2, timeout=30, what="two scheduled runs")
    job = chronos.job("every3s")
    # The schedule moved forward in place, as Chronos rewrites it; the first occurrence is long past.
    assert job["schedule"] != schedule and job["schedule"].endswith("/PT3S")
    outputs = chronos.sandbox_outputs("every3s")
    assert len([out for out in outputs if out == "tick-every3s\n"]) >= 2
    task_ids = [entry["taskId"] for entry in requests.get(f"{chronos.api}/job/stat/every3s", timeout=10).json()[
        "taskStatHistory"]]  # fmt: skip
    assert len(set(task_ids)) >= 2 and all(t.startswith("ct:") and ":0:every3s:" in t for t in task_ids)
    assert requests.delete(f"{chronos.api}/job/every3s", timeout=10).status_code == 204


def test_a_failing_job_is_retried_then_marked_failed(chronos: ChronosCluster) -> None:
    body = {"name": "fails", "command": "echo attempt-$CHRONOS_JOB_RUN_ATTEMPT; exit 7", "schedule": "R1//PT1H"}
    assert chronos.post_job({**body, "retries": 2}).status_code == 204
    wait_until(lambda: chronos.job("fails")["errorCount"] == 1, timeout=30, what="the job to fail beyond retries")
    time.sleep(1.5)  # no further attempt comes
    job = chronos.job("fails")
    assert job["errorCount"] == 1 and job["successCount"] == 0 and job["lastError"]
    assert job["disabled"] is True  # R1 is exhausted
    assert sorted(chronos.sandbox_outputs("fails")) == ["attempt-0\n", "attempt-1\n", "attempt-2\n"]
    history = requests.get(f"{chronos.api}/job/stat/fails", timeout=10).json()["taskStatHistory"]
    assert [entry["status"] for entry in history] == ["Fail", "Fail", "Fail"]
    assert [entry["taskId"].split(":")[2] for entry in history] == ["2", "1", "0"]
    assert chronos.csv()["fails"] == ("failure", "idle")


def test_a_dependent_job_runs_only_after_both_parents_succeed(chronos: ChronosCluster) -> None:
    for parent in ("parent-a", "parent-b"):
        assert chronos.post_job({"name": parent, "command": f"echo {parent}", "schedule": FAR_FUTURE}).ok
    child = {"name": "child-ab", "command": "echo child", "parents": ["parent-a", "parent-b"]}
    assert chronos.post_job(child, "dependency").status_code == 204

    assert requests.put(f"{chronos.api}/job/parent-a", timeout=10).status_code == 204
    wait_until(lambda: chronos.job("parent-a")["successCount"] == 1, timeout=30, what="parent-a to succeed")
    time.sleep(1.5)
    assert chronos.job("child-ab")["successCount"] == 0
    assert chronos.csv()["child-ab"] == ("fresh", "idle")

    assert requests.put(f"{chronos.api}/job/parent-b", timeout=10).status_code == 204
    wait_until(lambda: chronos.job("child-ab")["successCount"] == 1, timeout=30, what="the child to run")
    child_job = chronos.job("child-ab")
    assert child_job["lastSuccess"] > chronos.job("parent-b")["lastSuccess"] > chronos.job("parent-a")["lastSuccess"]
    graph = requests.get(f"{chronos.api}/graph/csv", timeout=10).text.splitlines()
    assert {"node,parent-a,success,idle", "node,parent-b,success,idle", "node,child-ab,success,idle"} <= set(graph)
    assert {"link,parent-a,child-ab", "link,parent-b,child-ab"} <= set(graph)


def test_run_now_arguments_and_task_kill(chronos: ChronosCluster) -> None:
    assert chronos.post_job({"name": "greet", "command": "echo hello", "schedule": FAR_FUTURE}).ok
    assert requests.put(f"{chronos.api}/job/greet", params={"arguments": "world"}, timeout=10).status_code == 204
    wait_until(lambda: "hello world\n" in chronos.sandbox_outputs("greet"), timeout=30, what="the run with arguments")

    assert chronos.post_job({"name": "sleeper", "command": "sleep 60", "schedule": FAR_FUTURE}).ok
    requests.put(f"{chronos.api}/job/sleeper", timeout=10)
    wait_until(lambda: chronos.csv()["sleeper"][1] == "1 running", timeout=30, what="sleeper to run")
    assert requests.delete(f"{chronos.api}/task/kill/sleeper", timeout=10).status_code == 204
    wait_until(lambda: chronos.csv()["sleeper"][1] == "idle", timeout=20, what="the kill")
    assert chronos.job("sleeper")["errorCount"] == 0


def test_deleting_a_job_kills_its_running_task(chronos: ChronosCluster) -> None:
    assert chronos.post_job({"name": "doomed", "command": "sleep 60", "schedule": FAR_FUTURE}).ok
    requests.put(f"{chronos.api}/job/doomed", timeout=10)
    wait_until(lambda: chronos.csv()["doomed"][1] == "1 running", timeout=30, what="doomed to run")
    assert requests.delete(f"{chronos.api}/job/doomed", timeout=10).status_code == 204
    assert chronos.cluster.master is not None

    def killed() -> bool:
        tasks = chronos.cluster.master.get("/master/tasks").json()["tasks"]  # type: ignore[union-attr]
        return any(":doomed:" in t["id"] and t["state"] == "TASK_KILLED" for t in tasks)

    wait_until(killed, timeout=20, what="the task of the deleted job to be killed")


def test_restart_keeps_jobs_schedules_counters_and_dependency_progress(chronos: ChronosCluster) -> None:
    assert chronos.post_job({"name": "keep", "command": "true", "schedule": f"R/{in_seconds(1)}/PT2S"}).ok
    assert chronos.post_job({"name": "keep-other", "command": "true", "schedule": FAR_FUTURE}).ok
    assert chronos.post_job(
        {"name": "keep-child", "parents": ["keep", "keep-other"], "command": "true"}, "dependency"
    ).ok
    wait_until(lambda: chronos.job("keep")["successCount"] >= 1, timeout=30, what="keep to run")
    framework_ids = {f["id"] for f in chronos.frameworks()}
    before = {name: chronos.job(name) for name in ("keep", "keep-other", "keep-child")}

    chronos.restart_chronos(signal.SIGKILL)  # no graceful shutdown: everything must already be in the store

    after = {name: chronos.job(name) for name in ("keep", "keep-other", "keep-child")}
    for name in ("keep-other", "keep-child"):
        assert after[name] == before[name]
    assert after["keep"]["successCount"] >= before["keep"]["successCount"]
    assert after["keep"]["schedule"].endswith("/PT2S")
    assert {f["id"] for f in chronos.frameworks()} == framework_ids  # re-subscribed as the same framework
    # The schedule keeps running after the restart.
    count = chronos.job("keep")["successCount"]
    wait_until(lambda: chronos.job("keep")["successCount"] >= count + 1, timeout=30, what="keep to run again")
    # keep succeeded before the restart; keep-other now completes the pair and the child runs.
    requests.put(f"{chronos.api}/job/keep-other", timeout=10)
    wait_until(lambda: chronos.job("keep-child")["successCount"] >= 1, timeout=30, what="the child after restart")
    for name in ("keep-child", "keep", "keep-other"):
        requests.delete(f"{chronos.api}/job/{name}", timeout=10)
