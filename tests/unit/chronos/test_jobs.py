"""Reading posted jobs with Chronos' defaults, the errors for bad ones, and the printed shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mesolite.chronos.jobs import JobDefaults, JobError, last_state, read_job, rendered

DEFAULTS = JobDefaults()
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# The seed talk's Chronos UI (000_73b061e8dd3916fd.txt): name, command, owner and schedule exactly as shown.
SEED_JOBS = [
    {
        "name": "JOB1386722360277",
        "command": "sleep 50",
        "owner": "rob@fake.com",
        "schedule": "R/2013-12-11T00:39:20.277836/PT24H",
    },
    {
        "name": "JOB1386722360087",
        "command": "sleep 5",
        "owner": "rob@fake.com",
        "schedule": "R/2013-12-10T00:39:20Z/PT24H",
    },
]
# chronos-python's itests "trivial job": 2.x fields (async, epsilon) that a 3.x-style server must accept.
TRIVIAL = {
    "async": False,
    "command": "echo 1",
    "epsilon": "PT1M",
    "name": "myjob",
    "owner": "",
    "disabled": False,
    "schedule": "R/2014-01-01T00:00:00Z/PT60M",
}


@pytest.mark.parametrize("body", SEED_JOBS, ids=lambda b: b["name"])
def test_seed_jobs_are_accepted_as_written(body: dict) -> None:
    job = read_job(body, DEFAULTS, "scheduled", now=NOW)
    assert job["schedule"] == body["schedule"]
    assert (job["name"], job["command"], job["owner"]) == (body["name"], body["command"], body["owner"])


def test_defaults_match_chronos() -> None:
    job = read_job(TRIVIAL, DEFAULTS, "scheduled", now=NOW)
    assert job["shell"] is True and job["retries"] == 2 and job["concurrent"] is False
    assert (job["cpus"], job["mem"], job["disk"]) == (0.1, 128.0, 256.0)
    assert job["runAsUser"] == "root"
    assert job["epsilon"] == "PT1M" and job["async"] is False
    assert job["successCount"] == 0 and job["lastSuccess"] == "" and job["errorsSinceLastSuccess"] == 0
    assert job["scheduleTimeZone"] == ""


def test_key_order_follows_the_3x_serializer_with_2x_fields_in_their_places() -> None:
    keys = list(rendered(read_job(TRIVIAL, DEFAULTS, "scheduled", now=NOW)))
    assert keys[:6] == ["name", "command", "shell", "epsilon", "executor", "executorFlags"]
    assert keys.index("async") == keys.index("description") + 1
    assert keys[-3:] == ["constraints", "schedule", "scheduleTimeZone"]


def test_zero_resources_take_the_server_defaults() -> None:
    job = read_job({**TRIVIAL, "cpus": 0, "mem": 0.0, "disk": 512}, JobDefaults(cpus=0.5, mem=64), "scheduled")
    assert (job["cpus"], job["mem"], job["disk"]) == (0.5, 64, 512)


def test_no_schedule_and_no_parents_runs_once_now() -> None:
    job = read_job({"name": "once", "command": "true"}, DEFAULTS, "scheduled", now=NOW)
    assert job["schedule"] == "R1/2024-05-01T12:00:00.000Z/PT24H"


def test_empty_start_is_fixed_at_submission() -> None:
    job = read_job({"name": "soon", "schedule": "R3//PT1H"}, DEFAULTS, "scheduled", now=NOW)
    assert job["schedule"] == "R3/2024-05-01T11:59:59.000Z/PT1H"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "my job", "schedule": "R//PT1H"}, "the job's name 'my job' is invalid"),
        ({"name": "", "schedule": "R//PT1H"}, "'name' is required"),
        ({"name": "a", "schedule": "R/2008-03-01T13:00:00Z"}, "Cannot parse schedule 'R/2008-03-01T13:00:00Z'"),
        ({"name": "a", "schedule": "R/2008-03-01T13:00:00Z/PX"}, "Cannot parse schedule 'R/2008-03-01T13:00:00Z/PX'"),
        ({"name": "a", "schedule": "R/1960-01-01T00:00:00Z/P1D"}, "is before 1970"),
        (
            {"name": "a", "schedule": "R//P1D", "fetch": [{"uri": "x"}], "uris": ["y"]},
            "both uri (deprecated) and fetch",
        ),
        ({"name": "a", "schedule": "R//P1D", "retries": "many"}, "'retries' must be an integer"),
        ({"name": "a", "schedule": "R//P1D", "cpus": -1}, "'cpus' must be a non-negative number"),
        ({"name": "a", "schedule": "R//P1D", "scheduleTimeZone": "Nowhere/City"}, "unknown time zone 'Nowhere/City'"),
        ({"name": "a", "schedule": "R//P1D", "container": {"type": "DOCKER"}}, "'container.image' is required"),
        ({"name": "a", "schedule": "R//P1D", "constraints": [["rack"]]}, "must be [attribute, operator, value]"),
        ({"name": "a", "schedule": "R//P1D", "epsilon": "soon"}, "invalid epsilon"),
        ({"name": "a", "parents": ["b"]}, "post it to /dependency"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_bad_scheduled_jobs_name_the_problem(body: object, fragment: str) -> None:
    with pytest.raises(JobError) as info:
        read_job(body, DEFAULTS, "scheduled", now=NOW)
    assert fragment in str(info.value)


def test_dependent_job_needs_parents() -> None:
    with pytest.raises(JobError, match="parent does not exist"):
        read_job({"name": "child", "parents": []}, DEFAULTS, "dependent")
    with pytest.raises(JobError, match="its own parent"):
        read_job({"name": "child", "parents": ["child"]}, DEFAULTS, "dependent")
    job = read_job({"name": "child", "parents": ["a", "b", "a"], "schedule": "ignored"}, DEFAULTS, "dependent")
    assert job["parents"] == ["a", "b"] and "schedule" not in job


def test_update_keeps_server_counters_unless_sent() -> None:
    stored = {**read_job(TRIVIAL, DEFAULTS, "scheduled"), "successCount": 7, "lastSuccess": "2024-01-01T00:00:00.000Z"}
    updated = read_job({**TRIVIAL, "command": "echo 2"}, DEFAULTS, "scheduled", existing=stored)
    assert updated["successCount"] == 7 and updated["lastSuccess"] == "2024-01-01T00:00:00.000Z"
    reset = read_job({**TRIVIAL, "successCount": 0}, DEFAULTS, "scheduled", existing=stored)
    assert reset["successCount"] == 0


def test_fetch_and_uris_are_copied_into_each_other_when_rendered() -> None:
    job = read_job({**TRIVIAL, "uris": ["http://x/a.tgz"]}, DEFAULTS, "scheduled")
    assert rendered(job)["fetch"] == [{"uri": "http://x/a.tgz", "executable": False, "cache": False, "extract": True}]
    job = read_job({**TRIVIAL, "fetch": [{"uri": "http://x/b", "executable": True}]}, DEFAULTS, "scheduled")
    assert rendered(job)["uris"] == ["http://x/b"]
    assert job["fetch"][0]["extract"] is True  # extract defaults to true


def test_container_is_normalised() -> None:
    job = read_job(
        {
            **TRIVIAL,
            "container": {
                "type": "docker",
                "image": "libmesos/ubuntu",
                "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "ro"}],
                "parameters": [{"key": "env", "value": "A=1"}],
                "forcePullImage": "true",
            },
        },
        DEFAULTS,
        "scheduled",
    )
    assert job["container"] == {
        "type": "DOCKER",
        "image": "libmesos/ubuntu",
        "network": "HOST",
        "networkInfos": [],
        "volumes": [{"hostPath": "/srv", "containerPath": "/data", "mode": "RO"}],
        "forcePullImage": True,
        "parameters": [{"key": "env", "value": "A=1"}],
    }


def test_unknown_constraint_operators_are_dropped() -> None:
    job = read_job({**TRIVIAL, "constraints": [["rack", "EQUALS", "1"], ["rack", "GROUP_BY", "2"]]}, DEFAULTS, "s")
    assert job["constraints"] == [["rack", "EQUALS", "1"]]


def test_last_state() -> None:
    assert last_state({"lastSuccess": "", "lastError": ""}) == "fresh"
    assert last_state({"lastSuccess": "", "lastError": "2024-01-01T00:00:00.000Z"}) == "failure"
    assert last_state({"lastSuccess": "2024-01-01T00:00:00.000Z", "lastError": ""}) == "success"
    later_error = {"lastSuccess": "2024-01-01T00:00:00.000Z", "lastError": "2024-01-02T00:00:00.000Z"}
    assert last_state(later_error) == "failure"
