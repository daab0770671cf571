"""Form ⇄ API translation of the Marathon and Chronos UIs, and how API errors find their field."""

from __future__ import annotations

import json

from mesolite.ui.chronos import error_field, form_to_job, graph_layout, job_to_form, ordered_jobs
from mesolite.ui.common import ApiResult
from mesolite.ui.marathon import app_status, field_errors, form_to_app, health_of


def test_new_app_form_becomes_an_app_definition() -> None:
    app = form_to_app(
        {
            "id": " web ",
            "cpus": "0.5",
            "mem": "64",
            "disk": "",
            "instances": "2",
            "cmd": "python3 -m http.server $PORT0",
            "ports": "0, 8080",
            "uris": "http://a/x.tgz, http://b/y",
            "constraints": "hostname:UNIQUE, rack:LIKE:r[0-9]:x",
        }
    )
    assert app == {
        "id": "web",
        "cpus": 0.5,
        "mem": 64,
        "instances": 2,
        "cmd": "python3 -m http.server $PORT0",
        "ports": [0, 8080],
        "uris": ["http://a/x.tgz", "http://b/y"],
        "constraints": [["hostname", "UNIQUE"], ["rack", "LIKE", "r[0-9]:x"]],
    }
    assert form_to_app({"id": "x", "cpus": "lots"})["cpus"] == "lots", "the API, not the UI, judges bad numbers"


def _answer(status: int, body: object) -> ApiResult:
    return ApiResult(status, json.dumps(body), {})


def test_marathon_errors_go_next_to_their_fields() -> None:
    body = {
        "message": "Object is not valid",
        "details": [
            {"path": "/id", "errors": ["bad id"]},
            {"path": "/constraints(0)", "errors": ["bad op"]},
            {"path": "/portDefinitions(1)/port", "errors": ["taken"]},
            {"path": "/upgradeStrategy/minimumHealthCapacity", "errors": ["> 1"]},
        ],
    }
    errors = field_errors(_answer(422, body), json_mode=False)
    assert errors == {
        "id": ["bad id"],
        "constraints": ["bad op"],
        "ports": ["taken"],
        "_general": ["/upgradeStrategy/minimumHealthCapacity: > 1"],
    }
    assert field_errors(_answer(422, body), json_mode=True)["json"][0] == "/id: bad id"
    assert field_errors(_answer(409, {"message": "An app with id [/x] already exists."}), False) == {
        "_general": ["An app with id [/x] already exists."]
    }


def test_marathon_app_status() -> None:
    running = {"instances": 2, "tasksRunning": 2, "deployments": []}
    assert app_status(running, None, 0.0) == "Running"
    assert app_status({**running, "deployments": [{"id": "d"}]}, None, 0.0) == "Deploying"
    assert app_status({"instances": 0, "tasksRunning": 0, "deployments": []}, None, 0.0) == "Suspended"
    delayed = {"delay": {"timeLeftSeconds": 30, "overdue": False}, "since": None}
    assert app_status({**running, "deployments": [{"id": "d"}]}, delayed, 0.0) == "Waiting"
    starved = {
        "delay": {"timeLeftSeconds": 0},
        "since": "1970-01-01T00:00:00Z",
        "processedOffersSummary": {"lastUnusedOfferAt": "1970-01-01T00:00:05Z", "lastUsedOfferAt": None},
    }
    assert app_status({**running, "deployments": [{"id": "d"}]}, starved, 6.0) == "Waiting"
    fresh = {"delay": {"timeLeftSeconds": 0}, "since": "1970-01-01T00:00:00Z", "processedOffersSummary": {}}
    assert app_status({**running, "deployments": [{"id": "d"}]}, fresh, 5.0) == "Deploying"
    assert app_status({**running, "deployments": [{"id": "d"}]}, fresh, 60.0) == "Waiting"


def test_marathon_health_summary() -> None:
    assert health_of({"healthChecks": []}) is None
    app = {"healthChecks": [{}], "tasksRunning": 4, "tasksHealthy": 2, "tasksUnhealthy": 1}
    assert health_of(app) == {"healthy": 2, "unhealthy": 1, "unknown": 1}


def test_chronos_form_round_trip_keeps_what_the_form_does_not_show() -> None:
    stored = {
        "name": "etl",
        "command": "run.sh",
        "schedule": "R/2030-01-01T00:00:00Z/PT1H",
        "cpus": 0.5,
        "retries": 2,
        "shell": True,
        "container": {"type": "DOCKER", "image": "busybox"},
    }
    form = job_to_form(stored)
    assert form["cpus"] == "0.5" and form["shell"] == "on" and form["disabled"] == "" and form["parents"] == ""
    form["command"] = "run.sh --all"
    job = form_to_job(form, stored)
    assert job["command"] == "run.sh --all" and job["container"] == stored["container"]
    assert job["cpus"] == 0.5 and job["retries"] == 2 and job["shell"] is True and job["disabled"] is False
    form["parents"] = "a, b"
    dependent = form_to_job(form, stored)
    assert dependent["parents"] == ["a", "b"] and "schedule" not in dependent
    assert form_to_job({"name": "n", "cpus": "many"}, None)["cpus"] == "many"


def test_chronos_messages_find_their_field() -> None:
    assert error_field("Cannot parse schedule 'x'") == "schedule"
    assert error_field("invalid scheduleTimeZone: unknown time zone 'Nowhere'") == "scheduleTimeZone"
    assert error_field("Error, parent does not exist") == "parents"
    assert error_field("the job's name 'a b' is invalid") == "name"
    assert error_field("'mem' must be a number") == "mem"
    assert error_field("something else broke") == "_general"


def test_chronos_list_order_is_most_recent_run_first() -> None:
    jobs = [
        {"name": "never", "lastSuccess": "", "lastError": ""},
        {"name": "old", "lastSuccess": "2020-01-01T00:00:00.000Z", "lastError": ""},
        {"name": "new-failure", "lastSuccess": "2020-01-01T00:00:00.000Z", "lastError": "2024-01-01T00:00:00.000Z"},
        {"name": "alpha", "lastSuccess": "", "lastError": ""},
    ]
    summary = {"new-failure": {"status": "failure", "state": "1 running"}}
    rows = ordered_jobs(jobs, summary)
    assert [r["job"]["name"] for r in rows] == ["new-failure", "old", "alpha", "never"]
    assert rows[0]["status"] == "failure" and rows[0]["state"] == "1 running"
    assert rows[1]["status"] == "fresh" and rows[1]["state"] == "idle"


def test_chronos_graph_layout_puts_children_right_of_their_parents() -> None:
    csv = (
        "node,a,success,idle\nnode,b,fresh,idle\nnode,c,failure,1 running\nlink,a,b\nlink,b,c\nlink,a,c\nlink,a,gone\n"
    )
    layout = graph_layout(csv)
    x = {n["name"]: n["x"] for n in layout["nodes"]}
    assert x["a"] < x["b"] < x["c"]
    assert {(e["parent"], e["child"]) for e in layout["edges"]} == {("a", "b"), ("b", "c"), ("a", "c")}
    states = {n["name"]: n["state"] for n in layout["nodes"]}
    assert states["c"] == "1 running"
    assert graph_layout("")["nodes"] == []
