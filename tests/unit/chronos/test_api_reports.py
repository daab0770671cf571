"""The REST side of jobs reporting back (progress, 2.x's asynchronous end) and of the notification flags: paths,
refusals where Chronos 3.x has no such thing, and error shapes. The successful paths run on a real cluster in
tests/integration/chronos/test_notifications.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from mesolite.chronos.api import create_app
from mesolite.chronos.config import ChronosConfig
from mesolite.cli import main
from mesolite.core.store import MemoryStore

FAR = "R/2030-01-01T00:00:00Z/P1D"


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    config = ChronosConfig(master="127.0.0.1:1", work_dir="/nonexistent", hostname="chronos.local")
    yield create_app(config, store=MemoryStore(), start_framework=False).test_client()


def message(response: object) -> str:
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["status"] == "Bad Request" or body["status"] == "Not Found", body
    return str(body["message"])


def test_async_jobs_only_under_the_2x_prefix(client: FlaskClient) -> None:
    job = {"name": "hadoop", "command": "submit", "schedule": FAR, "async": True}
    response = client.post("/v1/scheduler/iso8601", json=job)
    assert response.status_code == 400 and "removed in Chronos 3.0" in message(response)
    response = client.post("/v1/scheduler/dependency", json={**job, "name": "child", "parents": ["x"]})
    assert response.status_code == 400 and "/scheduler/dependency" in message(response)
    assert client.post("/v1/scheduler/iso8601", json={**job, "async": False}).status_code == 204
    assert client.put("/scheduler/iso8601", json=job).status_code == 204
    assert client.get("/v1/scheduler/job/hadoop").get_json()["async"] is True

    response = client.put("/v1/scheduler/task/ct:1:0:hadoop:", json={"statusCode": 0})
    assert response.status_code == 404
    assert "PUT /scheduler/task/{taskId}" in message(response) and "removed in 3.0" in message(response)


@pytest.mark.parametrize(
    ("task_id", "body", "expected"),
    [
        ("nonsense", {"statusCode": 0}, "Invalid task id format nonsense"),
        ("ct:1:0:ghost:", {"statusCode": 0}, "JobSchedule 'ghost' not found"),
        ("ct:1:0:hadoop:", {"statusCode": 0}, "Task id ct:1:0:hadoop: not found"),
        ("ct:1:0:hadoop:a/b", {"statusCode": 0}, "Task id ct:1:0:hadoop:a/b not found"),
        ("ct:1:0:hadoop:", {}, "'statusCode' is required"),
        ("ct:1:0:hadoop:", {"statusCode": "0"}, "'statusCode' must be an integer"),
        ("ct:1:0:hadoop:", None, 'needs {"statusCode": n}'),
    ],
)
def test_async_reports_that_cannot_count_are_400(
    client: FlaskClient, task_id: str, body: object, expected: str
) -> None:
    client.put("/scheduler/iso8601", json={"name": "hadoop", "schedule": FAR, "async": True})
    path = f"/scheduler/task/{task_id}"
    response = client.put(path, json=body) if body is not None else client.put(path)
    assert response.status_code == 400 and expected in message(response)


@pytest.mark.parametrize("prefix", ["/scheduler", "/v1/scheduler"])
@pytest.mark.parametrize(
    ("job", "task_id", "body", "expected"),
    [
        ("ghost", "ct:1:0:ghost:", {"numAdditionalElementsProcessed": 1}, "JobSchedule 'ghost' not found"),
        ("data", "nonsense", {"numAdditionalElementsProcessed": 1}, "Invalid task id format nonsense"),
        ("plain", "ct:1:0:plain:", {"numAdditionalElementsProcessed": 1}, "'plain' is not enabled to track data"),
        ("data", "ct:1:0:data:", {"numAdditionalElementsProcessed": -1}, "(-1) is not positive"),
        ("data", "ct:1:0:data:", {"numAdditionalElementsProcessed": 1.5}, "must be an integer"),
        ("data", "ct:1:0:data:", {}, "'numAdditionalElementsProcessed' is required"),
        ("data", "ct:1:0:data:", {"numAdditionalElementsProcessed": 1}, "Task id ct:1:0:data: not found"),
    ],
)
def test_progress_that_cannot_count_is_400(
    client: FlaskClient, prefix: str, job: str, task_id: str, body: object, expected: str
) -> None:
    client.post("/v1/scheduler/iso8601", json={"name": "data", "schedule": FAR, "dataProcessingJobType": True})
    client.post("/v1/scheduler/iso8601", json={"name": "plain", "schedule": FAR})
    response = client.post(f"{prefix}/job/{job}/task/{task_id}/progress", json=body)
    assert response.status_code == 400 and expected in message(response)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--mail_server", "smtp.example.com"], "--mail_server must be host:port"),
        (["--mail_server", "smtp.example.com:25"], "--mail_server needs --mail_from"),
        (["--mail_from", "chronos@example.com"], "need --mail_server"),
        (["--mail_server", "h:25", "--mail_from", "c@example.com", "--mail_user", "u"], "go together"),
        (["--http_notification_url", "http://h/", "--http_notification_credentials", "u"], "user:password"),
        (["--http_notification_credentials", "u:p"], "needs --http_notification_url"),
    ],
)
def test_notification_flags_upstream_would_drop_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    assert main(["chronos", "--master", "127.0.0.1:5050", "--work_dir", str(tmp_path), *flags]) == 2
    assert expected in capsys.readouterr().err


def test_each_configured_destination_gets_a_channel() -> None:
    base = ChronosConfig(master="m:5050", work_dir="/w")
    assert base.notifier().channels == []
    config = ChronosConfig(
        master="m:5050",
        work_dir="/w",
        mail_server="smtp.example.com:465",
        mail_from="chronos@example.com",
        mail_user="chronos",
        mail_password="secret",
        mail_ssl=True,
        slack_url="https://hooks.example.com/T0/B0/x",
        http_notification_url="https://alerts.example.com/chronos",
        http_notification_credentials="chronos:secret",
        cluster_name="prod",
    )
    assert config.notifier().channels == ["mail", "slack", "http"]
    assert config.state_config().cluster_name == "prod"
