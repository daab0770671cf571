"""Chronos telling people, with real parts: jobs run on a real agent, their owners' mail is received by a real SMTP
server (aiosmtpd), the Slack and generic webhooks by a local HTTP server; jobs report their progress and (2.x)
their asynchronous end themselves with curl, as users' jobs do; a mail server that never answers stalls nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.cluster import wait_until
from tests.integration.chronos.conftest import ChronosCluster
from tests.sinks import MailSink, SilentServer, WebhookSink, basic_auth

FAR_FUTURE = "R/2100-01-01T00:00:00Z/P1D"
SENDER = "chronos@example.com"


@pytest.fixture(scope="module")
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def chronos(tmp_path_factory: pytest.TempPathFactory, mail: MailSink, hooks: WebhookSink) -> Iterator[ChronosCluster]:
    flags = ["--mail_server", mail.address, "--mail_from", SENDER, "--slack_url", hooks.url("/slack"),
             "--http_notification_url", hooks.url("/hook"), "--http_notification_credentials", "chronos:s3cret",
             "--cluster_name", "itest"]  # fmt: skip
    cluster = ChronosCluster(tmp_path_factory.mktemp("chronos-notify"), flags)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def about(job: str) -> Any:
    return lambda message: f"'{job}'" in str(message["Subject"])


def run_now(chronos: ChronosCluster, name: str, prefix: str = "/v1/scheduler") -> None:
    assert requests.put(f"{chronos.url}{prefix}/job/{name}", timeout=10).status_code == 204


def metrics(chronos: ChronosCluster) -> dict[str, Any]:
    return requests.get(f"{chronos.url}/metrics", timeout=10).json()


def test_a_failing_jobs_owners_get_mail_slack_and_the_webhook(
    chronos: ChronosCluster, mail: MailSink, hooks: WebhookSink
) -> None:
    job = {"name": "nightly-report", "command": "exit 3", "schedule": FAR_FUTURE, "retries": 1,
           "owner": "ops@example.com, oncall@example.com"}  # fmt: skip
    assert chronos.post_job(job).status_code == 204
    run_now(chronos, "nightly-report")

    received = mail.wait_for(about("nightly-report"), count=2)
    assert sorted(rcpt for _, rcpts, _ in received for rcpt in rcpts) == ["oncall@example.com", "ops@example.com"]
    sender, _, message = received[0]
    assert sender == SENDER
    assert message["Subject"] == "[itest] [Chronos] job 'nightly-report' failed!"
    body = message.get_content().replace("\r\n", "\n")
    assert "Retries attempted: 1." in body and ":1:nightly-report:" in body  # the last attempt's task id
    assert "The scheduler provided this message:\n\n" in body and "status 3" in body

    slack = hooks.wait_for("/slack", lambda b: "'nightly-report' failed!" in b.get("text", ""), count=2)
    assert slack[0]["json"]["text"].startswith("[itest] [Chronos] job 'nightly-report' failed!: \n'")
    posted = hooks.wait_for("/hook", lambda b: b["job"] == "nightly-report", count=2)
    assert sorted(p["json"]["to"] for p in posted) == ["oncall@example.com", "ops@example.com"]
    assert all(basic_auth(p["headers"].get("Authorization")) == ("chronos", "s3cret") for p in posted)
    assert posted[0]["json"]["errorCount"] == "1" and posted[0]["json"]["command"] == "exit 3"

    time.sleep(1.0)  # the first attempt's failure told nobody: one notice per owner in all
    assert len([m for m in mail.messages if about("nightly-report")(m[2])]) == 2
    counters = metrics(chronos)["counters"]
    assert counters["notifications.mail.sent"]["count"] >= 2
    assert counters["notifications.mail.failed"]["count"] == 0


def test_success_mail_only_when_the_job_asks_for_it(chronos: ChronosCluster, mail: MailSink) -> None:
    assert chronos.post_job({"name": "daily-ok", "command": "true", "schedule": FAR_FUTURE,
                             "owner": "ops@example.com"}).status_code == 204  # fmt: skip
    run_now(chronos, "daily-ok")
    wait_until(lambda: chronos.job("daily-ok")["successCount"] == 1, timeout=30, what="daily-ok to succeed")

    # A finite schedule asks to hear when it is over: its last run's success is mailed (upstream's rule).
    assert chronos.post_job({"name": "one-off", "command": "true", "schedule": "R1//PT1H",
                             "owner": "dev@example.com"}).status_code == 204  # fmt: skip
    ((_, rcpts, message),) = mail.wait_for(about("one-off"))
    assert rcpts == ["dev@example.com"]
    assert message["Subject"] == "[itest] [Chronos] job 'one-off' disabled"
    assert "has exhausted all of its recurrences and has been disabled" in message.get_content()
    assert chronos.job("one-off")["successCount"] == 1 and chronos.job("one-off")["disabled"] is True
    assert not [m for m in mail.messages if about("daily-ok")(m[2])]


def test_progress_reported_by_a_running_task_shows_in_its_stats(chronos: ChronosCluster) -> None:
    def report(prefix: str, count: int) -> str:
        url = f"{chronos.url}{prefix}/job/crunch/task/$mesos_task_id/progress"
        return (f"curl -sf -X POST -H 'Content-Type: application/json' "
                f"-d '{{\"numAdditionalElementsProcessed\": {count}}}' \"{url}\"")  # fmt: skip

    command = f"{report('/scheduler', 5)} && {report('/v1/scheduler', 7)}"
    job = {"name": "crunch", "command": command, "schedule": FAR_FUTURE, "dataProcessingJobType": True}
    assert chronos.post_job(job).status_code == 204
    run_now(chronos, "crunch")
    wait_until(lambda: chronos.job("crunch")["successCount"] == 1, timeout=30, what="crunch to report and finish")
    (entry,) = requests.get(f"{chronos.api}/job/stat/crunch", timeout=10).json()["taskStatHistory"]
    assert (entry["status"], entry["numElementsProcessed"]) == ("Success", 12)

    late = requests.post(f"{chronos.api}/job/crunch/task/{entry['taskId']}/progress",
                         json={"numAdditionalElementsProcessed": 1}, timeout=10)  # fmt: skip
    assert late.status_code == 204
    (entry,) = requests.get(f"{chronos.api}/job/stat/crunch", timeout=10).json()["taskStatHistory"]
    assert entry["numElementsProcessed"] == 13
    refused = requests.post(f"{chronos.api}/job/daily-ok/task/{entry['taskId']}/progress",
                            json={"numAdditionalElementsProcessed": 1}, timeout=10)  # fmt: skip
    assert refused.status_code == 400 and "not enabled to track data" in refused.json()["message"]


def test_async_jobs_end_when_they_report(chronos: ChronosCluster, mail: MailSink) -> None:
    api = f"{chronos.url}/scheduler"
    report = (f"curl -sf -X PUT -H 'Content-Type: application/json' -d '{{\"statusCode\": 0}}' "
              f"\"{api}/task/$mesos_task_id\"")  # fmt: skip
    job = {"name": "async-etl", "command": report, "schedule": FAR_FUTURE, "async": True}
    assert requests.put(f"{api}/iso8601", json=job, timeout=10).status_code == 204
    child = {"name": "after-async", "command": "true", "parents": ["async-etl"]}
    assert requests.put(f"{api}/dependency", json=child, timeout=10).status_code == 204
    run_now(chronos, "async-etl", "/scheduler")
    wait_until(lambda: chronos.job("after-async")["successCount"] == 1, timeout=40, what="the report to fire the child")
    assert chronos.job("async-etl")["successCount"] == 1

    # A task that ends without reporting leaves its run waiting; the report, when it comes, decides.
    silent = {"name": "async-quiet", "command": "true", "schedule": FAR_FUTURE, "async": True, "retries": 0,
              "owner": "data@example.com"}  # fmt: skip
    assert requests.put(f"{api}/iso8601", json=silent, timeout=10).status_code == 204
    run_now(chronos, "async-quiet", "/scheduler")
    (task,) = wait_until(lambda: [t for t in chronos.cluster.master.get("/master/tasks").json()["tasks"]  # type: ignore[union-attr]
                                  if t["name"] == "ChronosTask:async-quiet" and t["state"] == "TASK_FINISHED"],
                         timeout=30, what="the quiet task to end")  # fmt: skip
    time.sleep(1.0)
    assert chronos.csv()["async-quiet"] == ("fresh", "1 running")
    assert chronos.job("async-quiet")["successCount"] == 0
    reported = requests.put(f"{api}/task/{task['id']}", json={"statusCode": 2}, timeout=10)
    assert reported.status_code == 204
    assert chronos.csv()["async-quiet"] == ("failure", "idle")
    mail.wait_for(lambda m: m["Subject"] == "[itest] [Chronos] job 'async-quiet' failed!")

    refused = requests.put(f"{chronos.api}/task/{task['id']}", json={"statusCode": 0}, timeout=10)
    assert refused.status_code == 404 and "removed in 3.0" in refused.json()["message"]


def test_an_unreachable_mail_server_never_stalls_the_scheduler(chronos: ChronosCluster, hooks: WebhookSink) -> None:
    silent = SilentServer()  # takes the connection, never greets: each attempt waits for the client's timeout
    try:
        chronos.extra_args = ["--mail_server", silent.address, "--mail_from", SENDER, "--slack_url",
                              hooks.url("/slack")]  # fmt: skip
        chronos.restart_chronos()
        job = {"name": "broken", "command": "exit 1", "schedule": FAR_FUTURE, "retries": 0,
               "owner": "a@example.com, b@example.com"}  # fmt: skip
        assert chronos.post_job(job).status_code == 204
        run_now(chronos, "broken")
        wait_until(lambda: chronos.job("broken")["errorCount"] == 1, timeout=30, what="broken to fail")
        wait_until(lambda: metrics(chronos)["gauges"]["notifications.mail.queued"]["value"] == 1,
                   timeout=10, what="the second mail to wait behind the first")  # fmt: skip

        # With the mail channel stuck, everything else goes on: the API, runs, and the Slack channel.
        started = time.monotonic()
        assert requests.get(f"{chronos.api}/jobs", timeout=10).ok
        assert time.monotonic() - started < 2.0
        hooks.wait_for("/slack", lambda b: "'broken' failed!" in b.get("text", ""), count=2, timeout=10)
        assert chronos.post_job({"name": "meanwhile", "command": "true", "schedule": FAR_FUTURE}).ok
        run_now(chronos, "meanwhile")
        wait_until(lambda: chronos.job("meanwhile")["successCount"] == 1, timeout=20, what="a run while mail is stuck")
        run_now(chronos, "meanwhile")
        wait_until(lambda: chronos.job("meanwhile")["successCount"] == 2, timeout=20, what="another run")
        assert metrics(chronos)["counters"]["notifications.mail.sent"]["count"] == 0
    finally:
        silent.close()
