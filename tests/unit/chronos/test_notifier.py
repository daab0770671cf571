"""Delivering notifications to real receivers on loopback: an SMTP server (aiosmtpd, plain, with login, over TLS),
and an HTTP server standing in for Slack and a generic webhook; retries, failures and a hung server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesolite.chronos import notifications
from mesolite.chronos.jobs import JobDefaults, read_job
from mesolite.chronos.notifier import HttpChannel, MailChannel, Notifier, SlackChannel
from tests.cluster import free_port, wait_until
from tests.sinks import MailSink, SilentServer, WebhookSink, basic_auth, self_signed_certificate

SENDER = "chronos@example.com"


def failed(owner: str = "ops@example.com, dev@example.com") -> notifications.Notification:
    body = {"name": "nightly-etl", "command": "run-etl", "schedule": "R//P1D", "owner": owner, "cpus": 0.5,
            "uris": ["http://x/a.tgz"], "errorCount": 3, "errorsSinceLastSuccess": 2, "softError": True}  # fmt: skip
    job = read_job(body, JobDefaults(), "scheduled")
    return notifications.retries_exhausted(job, "ct:1:2:nightly-etl:", "2024-05-01T12:00:00.000Z", "exit 7")


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


def running(*channels: object, **options: float) -> Notifier:
    notifier = Notifier(channels, **options)  # type: ignore[arg-type]
    notifier.start()
    return notifier


def test_mail_goes_to_each_owner_with_upstreams_subject_and_text(mail: MailSink) -> None:
    notifier = running(MailChannel(mail.address, SENDER))
    try:
        notifier.submit([failed()])
        received = mail.wait_for(lambda m: True, count=2)
    finally:
        notifier.stop()
    assert sorted(rcpt for _, rcpts, _ in received for rcpt in rcpts) == ["dev@example.com", "ops@example.com"]
    sender, _, message = received[0]
    assert sender == SENDER and message["From"] == SENDER
    assert message["Subject"].strip() == "[Chronos] job 'nightly-etl' failed!"
    body = message.get_content().replace("\r\n", "\n")  # as the wire carries it
    assert "Retries attempted: 2." in body and "Task id: ct:1:2:nightly-etl:" in body
    assert "The scheduler provided this message:\n\nexit 7" in body
    assert notifier.counters()["notifications.mail.sent"] == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the server's own warning
def test_mail_logs_in_when_given_a_user_and_refuses_are_not_retried() -> None:
    sink = MailSink(credentials=("chronos", "s3cret")).start()
    try:
        good = running(MailChannel(sink.address, SENDER, "chronos", "s3cret"))
        bad = running(MailChannel(sink.address, SENDER, "chronos", "wrong"), retry_delay=0.01)
        try:
            good.submit([failed("ops@example.com")])
            bad.submit([failed("ops@example.com")])
            sink.wait_for(lambda m: True)
            wait_until(lambda: bad.counters()["notifications.mail.failed"] == 1, what="the refused login")
        finally:
            good.stop()
            bad.stop()
        assert len(sink.messages) == 1
        assert bad.counters()["notifications.mail.retried"] == 0  # 535: permanent
    finally:
        sink.stop()


def test_mail_ssl_connects_with_tls_and_checks_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    sink = MailSink(tls=(cert, key)).start()
    try:
        untrusted = running(MailChannel(sink.address, SENDER, ssl_on_connect=True), attempts=1)
        try:
            untrusted.submit([failed("ops@example.com")])
            wait_until(lambda: untrusted.counters()["notifications.mail.failed"] == 1, what="the untrusted server")
        finally:
            untrusted.stop()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = running(MailChannel(sink.address, SENDER, ssl_on_connect=True))
        try:
            trusted.submit([failed("ops@example.com")])
            (_, rcpts, _), *_ = sink.wait_for(lambda m: True)
        finally:
            trusted.stop()
        assert rcpts == ["ops@example.com"]
    finally:
        sink.stop()


def test_slack_and_webhook_payloads(webhook: WebhookSink) -> None:
    notifier = running(SlackChannel(webhook.url("/slack")), HttpChannel(webhook.url("/hook"), "chronos:pa:ss"))
    try:
        notifier.submit([failed("ops@example.com"), notifications.deleted(failed("").job)])
        slack = webhook.wait_for("/slack", lambda body: True, count=2)
        hooks = webhook.wait_for("/hook", lambda body: True, count=2)
    finally:
        notifier.stop()
    first = failed("ops@example.com")
    assert slack[0]["json"] == {"text": f"{first.subject}: {first.message}"}
    assert slack[1]["json"] == {}  # a notice without a message: upstream posts an empty object
    assert hooks[0]["json"] == {
        "subject": " [Chronos] job 'nightly-etl' failed!",
        "message": first.message,
        "to": "ops@example.com",
        "job": "nightly-etl",
        "command": "run-etl",
        "cpus": "0.5",
        "softError": "true",
        "errorCount": "3",
        "errorsSinceLastSuccess": "2",
        "executor": "",
        "executorFlags": "",
        "lastError": "",
        "lastSuccess": "",
        "mem": "128.0",
        "retries": "2",
        "successCount": "0",
        "uris": "http://x/a.tgz",
    }
    assert set(hooks[1]["json"]) >= {"subject", "job"} and "to" not in hooks[1]["json"]  # no owner, no "to"
    assert basic_auth(hooks[0]["headers"].get("Authorization")) == ("chronos", "pa:ss")
    assert hooks[0]["headers"]["Content-Type"] == "application/json"


def test_a_failing_receiver_is_retried_then_counted(webhook: WebhookSink) -> None:
    webhook.status = 503
    notifier = running(SlackChannel(webhook.url("/slack")), retry_delay=0.3)
    try:
        notifier.submit([failed("ops@example.com")])
        wait_until(lambda: notifier.counters()["notifications.slack.retried"] >= 1, what="a retry")
        webhook.status = 200
        wait_until(lambda: notifier.counters()["notifications.slack.sent"] == 1, what="the delivery")
        assert notifier.counters()["notifications.slack.failed"] == 0
        refused = running(MailChannel(f"127.0.0.1:{free_port()}", SENDER), retry_delay=0.01)
        try:
            refused.submit([failed("ops@example.com")])
            wait_until(lambda: refused.counters()["notifications.mail.failed"] == 1, what="giving up")
            assert refused.counters()["notifications.mail.retried"] == 2  # three attempts in all
        finally:
            refused.stop()
    finally:
        notifier.stop()


def test_a_hung_mail_server_blocks_neither_the_caller_nor_the_other_channels(webhook: WebhookSink) -> None:
    silent = SilentServer()
    notifier = running(MailChannel(silent.address, SENDER, timeout=30), SlackChannel(webhook.url("/slack")),
                       queue_size=5)  # fmt: skip
    try:
        started = time.monotonic()
        notifier.submit([failed("ops@example.com")] * 20)
        assert time.monotonic() - started < 1.0
        webhook.wait_for("/slack", lambda body: True, count=5)  # its own queue keeps draining
        wait_until(lambda: notifier.counters()["notifications.slack.queued"] == 0, what="slack's queue to drain")
        counters = notifier.counters()
        assert counters["notifications.slack.sent"] + counters["notifications.slack.dropped"] == 20
        assert counters["notifications.mail.sent"] == 0 and counters["notifications.mail.dropped"] >= 14
        assert counters["notifications.mail.queued"] <= 5
    finally:
        stopping = time.monotonic()
        notifier.stop(timeout=1.0)
        assert time.monotonic() - stopping < 5.0
        silent.close()


def test_an_owner_less_job_is_not_mailed_but_still_reaches_the_webhook(mail: MailSink, webhook: WebhookSink) -> None:
    notifier = running(MailChannel(mail.address, SENDER), HttpChannel(webhook.url("/hook")))
    try:
        notifier.submit([failed("")])
        webhook.wait_for("/hook", lambda body: body["job"] == "nightly-etl")
        wait_until(lambda: notifier.counters()["notifications.mail.failed"] == 1, what="the mail to give up")
    finally:
        notifier.stop()
    assert mail.messages == [] and notifier.counters()["notifications.mail.retried"] == 0
