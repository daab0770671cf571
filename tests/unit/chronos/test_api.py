"""The REST surface on an in-memory store (no master): paths, status codes, error shapes, response bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from mesolite.chronos.api import create_app
from mesolite.chronos.config import ChronosConfig, zk_url
from mesolite.chronos.election import zk_paths as zk_path_layout
from mesolite.cli import main
from mesolite.core.store import MemoryStore

TRIVIAL = {
    "async": False,
    "command": "echo 1",
    "epsilon": "PT1M",
    "name": "myjob",
    "owner": "",
    "disabled": False,
    "schedule": "R/2014-01-01T00:00:00Z/PT60M",
}


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    config = ChronosConfig(master="127.0.0.1:1", work_dir="/nonexistent", hostname="chronos.local", http_port=4400)
    app = create_app(config, store=MemoryStore(), start_framework=False)
    yield app.test_client()


def post(client: FlaskClient, path: str, body: Any, method: str = "POST") -> Any:
    return client.open(path, method=method, json=body)


@pytest.mark.parametrize("prefix", ["/scheduler", "/v1/scheduler"])
def test_create_list_get_and_delete_under_both_prefixes(client: FlaskClient, prefix: str) -> None:
    assert post(client, f"{prefix}/iso8601", TRIVIAL).status_code == 204
    jobs = client.get(f"{prefix}/jobs").get_json()
    assert [job["name"] for job in jobs] == ["myjob"]
    job = client.get(f"{prefix}/job/myjob").get_json()
    assert job["schedule"] == TRIVIAL["schedule"] and job["epsilon"] == "PT1M"
    assert client.delete(f"{prefix}/job/myjob").status_code == 204
    assert client.get(f"{prefix}/jobs").get_json() == []


def test_2x_clients_may_put_jobs(client: FlaskClient) -> None:
    assert post(client, "/scheduler/iso8601", TRIVIAL, "PUT").status_code == 204
    assert (
        post(client, "/scheduler/dependency", {**TRIVIAL, "name": "child", "parents": ["myjob"]}, "PUT").status_code
        == 204
    )


def test_bad_jobs_are_400_with_a_message(client: FlaskClient) -> None:
    response = post(client, "/v1/scheduler/iso8601", {**TRIVIAL, "name": "my job"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "Bad Request" and "'my job'" in body["message"]
    response = post(client, "/v1/scheduler/iso8601", {**TRIVIAL, "schedule": "R/2014-01-01T00:00:00Z"})
    assert response.status_code == 400 and "R/2014-01-01T00:00:00Z" in response.get_json()["message"]
    response = post(client, "/v1/scheduler/dependency", {**TRIVIAL, "name": "c", "parents": ["nope"]})
    assert response.status_code == 400 and "'nope'" in response.get_json()["message"]
    response = client.post("/v1/scheduler/iso8601", data="{not json", content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.get_json()["message"]
    response = client.post("/v1/scheduler/iso8601")
    assert response.status_code == 400


def test_unknown_jobs_are_400(client: FlaskClient) -> None:
    for method, path in (
        ("GET", "/v1/scheduler/job/ghost"),
        ("PUT", "/v1/scheduler/job/ghost"),
        ("DELETE", "/v1/scheduler/job/ghost"),
        ("DELETE", "/v1/scheduler/task/kill/ghost"),
        ("GET", "/v1/scheduler/job/stat/ghost"),
    ):
        response = client.open(path, method=method)
        assert response.status_code == 400, path
        assert response.get_json()["message"] == "JobSchedule 'ghost' not found"


def test_run_now_and_summary(client: FlaskClient) -> None:
    post(client, "/v1/scheduler/iso8601", {**TRIVIAL, "schedule": "R/2030-01-01T00:00:00Z/P1D"})
    post(client, "/v1/scheduler/dependency", {**TRIVIAL, "name": "child", "parents": ["myjob"]})
    assert client.put("/v1/scheduler/job/myjob?arguments=--fast").status_code == 204
    assert client.get("/v1/scheduler/jobs/summary").get_json() == {
        "jobs": [
            {
                "name": "child",
                "status": "fresh",
                "state": "idle",
                "schedule": "",
                "parents": ["myjob"],
                "disabled": False,
            },
            {
                "name": "myjob",
                "status": "fresh",
                "state": "queued",
                "schedule": "R/2030-01-01T00:00:00Z/P1D",
                "parents": [],
                "disabled": False,
            },
        ]
    }


def test_search(client: FlaskClient) -> None:
    for n in range(12):
        post(client, "/v1/scheduler/iso8601", {**TRIVIAL, "name": f"job{n:02d}", "command": f"run {n % 3}"})
    search = lambda query: [j["name"] for j in client.get(f"/v1/scheduler/jobs/search?{query}").get_json()]  # noqa: E731
    assert len(search("name=JOB")) == 10  # default limit
    assert search("name=job&limit=3&offset=10") == ["job10", "job11"]
    assert search("name=job0&command=RUN 1") == ["job01", "job04", "job07"]
    assert search("name=zzz&any=job11") == ["job11"]
    assert client.get("/v1/scheduler/jobs/search?limit=x").status_code == 400


def test_mark_success_answers_text(client: FlaskClient) -> None:
    post(client, "/v1/scheduler/iso8601", TRIVIAL)
    response = client.put("/v1/scheduler/job/success/myjob")
    assert response.status_code == 200 and response.text == "marked job myjob as successful: true"
    assert client.get("/v1/scheduler/job/myjob").get_json()["successCount"] == 1
    assert client.put("/v1/scheduler/job/success/ghost").text == "marked job ghost as successful: false"


def test_chronos_python_itest_expectations(client: FlaskClient) -> None:
    post(client, "/v1/scheduler/iso8601", TRIVIAL)
    assert client.get("/v1/scheduler/job/stat/myjob").get_json() == {
        "histogram": {
            "median": 0.0,
            "98thPercentile": 0.0,
            "75thPercentile": 0.0,
            "95thPercentile": 0.0,
            "99thPercentile": 0.0,
            "count": 0,
            "mean": 0.0,
        },
        "taskStatHistory": [],
    }
    for percentile in ("99thPercentile", "98thPercentile", "95thPercentile", "75thPercentile", "median", "mean"):
        assert client.get(f"/v1/scheduler/stats/{percentile}").get_json() == [{"jobNameLabel": "myjob", "time": 0.0}]
    post(client, "/v1/scheduler/iso8601", {**TRIVIAL, "name": "other"})
    csv = client.get("/v1/scheduler/graph/csv")
    assert csv.mimetype == "text/plain" and len(csv.text.splitlines()) == 2
    assert client.get("/metrics").get_json()["counters"]["jobs.run.success.myjob"] == {"count": 0}
    assert client.get("/").status_code == 200


def test_graph_leader_ping_and_cors(client: FlaskClient) -> None:
    post(client, "/v1/scheduler/iso8601", TRIVIAL)
    post(client, "/v1/scheduler/dependency", {**TRIVIAL, "name": "child", "parents": ["myjob"]})
    assert client.get("/v1/scheduler/graph/csv").text == (
        "node,child,fresh,idle\nnode,myjob,fresh,idle\nlink,myjob,child\n"
    )
    assert "1 -> 2" in client.get("/scheduler/graph/dot").text or "2 -> 1" in client.get("/scheduler/graph/dot").text
    assert client.get("/v1/scheduler/leader").get_json() == {"leader": "chronos.local:4400"}
    response = client.get("/ping", headers={"Origin": "http://ui.example"})
    assert response.text == "pong" and response.headers["Access-Control-Allow-Origin"] == "http://ui.example"
    assert client.get("/v1/scheduler/nothing-here").status_code == 404


def test_status_page_lists_jobs(client: FlaskClient) -> None:
    post(client, "/v1/scheduler/iso8601", {"name": "JOB1386722360277", "command": "sleep 50", "owner": "rob@fake.com",
                                          "schedule": "R/2013-12-11T00:39:20.277836/PT24H"})  # fmt: skip
    page = client.get("/").text
    assert "TOTAL JOBS <b id='total'>1</b>" in page and "rob@fake.com" in page and "sleep 50" in page


def test_zookeeper_flags_in_both_forms() -> None:
    assert zk_url("zk://h1:2181,h2:2181/chronos") == "zk://h1:2181,h2:2181/chronos"
    assert zk_url(None, "h1:2181,h2:2181") == "zk://h1:2181,h2:2181/chronos/state"
    hosts, group, base = zk_path_layout("zk://h1:2181/chronos/state")
    assert (hosts, group, base) == ("h1:2181", "/chronos/state/candidate", "/chronos/state/state")
    assert zk_url(None, None) is None


def test_chronos_without_a_store_or_zookeeper_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chronos", "--master", "127.0.0.1:5050"]) == 2
    assert "--work_dir" in capsys.readouterr().err
