"""Delivering Chronos' notifications: mail to the owners (``--mail_*``), Slack (``--slack_url``) and a generic HTTP
webhook (``--http_notification_url``), with upstream's payloads.

The state machine only returns notifications; the scheduler and the API hand them to :class:`Notifier`, which never
blocks them: each channel has its own bounded queue and thread (upstream had one actor per client), so a mail server
that does not answer delays neither the schedule nor Slack. A delivery is tried a few times with a growing pause;
what still fails, or does not fit in the queue, is logged and counted (``/metrics``), never raised. Notifications are
at most once: a leader that dies before delivering them does not leave them to the next one.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import requests

from mesolite.chronos.notifications import Notification

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one delivery attempt (connect and each read)
ATTEMPTS = 3
RETRY_DELAY = 1.0  # seconds before the second attempt, doubled for each further one
QUEUE_SIZE = 1000  # per channel
OUTCOMES = ("sent", "retried", "failed", "dropped")


class DeliveryError(Exception):
    """A delivery that did not go through; ``permanent`` ones (refused by the receiver) are not tried again."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def send(self, notification: Notification, to: str) -> None: ...


def parse_mail_server(value: str) -> tuple[str, int]:
    """``--mail_server host:port`` (upstream creates no mail client without the port; here it is an error)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--mail_server must be host:port, not '{value}'")
    return host.strip("[]"), int(port)


class MailChannel:
    """Mail through an SMTP server, as upstream's commons-email client: SSL on connect with ``--mail_ssl`` (no
    STARTTLS), login only when both a user and a password are given. An owner-less job cannot be mailed."""

    name = "mail"

    def __init__(
        self,
        server: str,
        sender: str,
        user: str | None = None,
        password: str | None = None,
        ssl_on_connect: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        self.host, self.port = parse_mail_server(server)
        self.sender = sender
        self.credentials = (user, password) if user and password else None
        self.ssl_on_connect = ssl_on_connect
        self.timeout = timeout

    def message(self, notification: Notification, to: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = to
        mail["Subject"] = notification.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mail.set_content(notification.message or "")
        return mail

    def send(self, notification: Notification, to: str) -> None:
        if not to:
            raise DeliveryError(f"job '{notification.job['name']}' has no owner to mail", permanent=True)
        try:
            smtp: smtplib.SMTP
            if self.ssl_on_connect:
                context = ssl.create_default_context()
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.credentials:
                    smtp.login(*self.credentials)
                smtp.send_message(self.message(notification, to))
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None


def _post(url: str, body: dict[str, Any], timeout: float, auth: tuple[str, str] | None = None) -> None:
    try:
        response = requests.post(url, json=body, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise DeliveryError(f"HTTP {response.status_code} {response.text[:200]!r}", permanent=permanent)


class SlackChannel:
    """Slack's incoming webhook: ``{"text": "<subject>: <message>"}``, ``{}`` when there is no message."""

    name = "slack"

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout

    @staticmethod
    def payload(notification: Notification) -> dict[str, str]:
        if not notification.message:
            return {}
        text = f"{notification.subject}: {notification.message}" if notification.subject else notification.message
        return {"text": text}

    def send(self, notification: Notification, to: str) -> None:
        _post(self.url, self.payload(notification), self.timeout)


def _text(value: Any) -> str:
    """A value as Scala's ``toString`` prints it (every field of the webhook's JSON is a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class HttpChannel:
    """The generic webhook: a JSON object of strings (subject, message, recipient, the job's fields and counters),
    with Basic authentication from ``--http_notification_credentials user:password``."""

    name = "http"

    def __init__(self, url: str, credentials: str | None = None, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.auth: tuple[str, str] | None = None
        if credentials:
            user, sep, password = credentials.partition(":")
            if not sep:
                raise ValueError("--http_notification_credentials must be user:password")
            self.auth = (user, password)
        self.timeout = timeout

    @staticmethod
    def payload(notification: Notification, to: str) -> dict[str, str]:
        job = notification.job
        body: dict[str, str] = {}
        if notification.subject:
            body["subject"] = notification.subject
        if notification.message:
            body["message"] = notification.message
        if to:
            body["to"] = to
        for key in ("name", "command", "cpus", "softError", "errorCount", "errorsSinceLastSuccess", "executor",
                    "executorFlags", "lastError", "lastSuccess", "mem", "retries", "successCount"):  # fmt: skip
            body["job" if key == "name" else key] = _text(job.get(key))
        uris = [entry["uri"] for entry in job.get("fetch") or []] + list(job.get("uris") or [])
        body["uris"] = ",".join(uris)
        return body

    def send(self, notification: Notification, to: str) -> None:
        _post(self.url, self.payload(notification, to), self.timeout, self.auth)


_STOP = object()


class _Lane:
    """One channel's queue, thread and counters."""

    def __init__(self, channel: Channel, queue_size: int, attempts: int, retry_delay: float) -> None:
        self.channel = channel
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def offer(self, notification: Notification, to: str) -> None:
        try:
            self.queue.put_nowait((notification, to))
        except queue.Full:
            self.count("dropped")
            log.warning("%s notification dropped (queue full): %s", self.channel.name, notification.subject)

    def start(self) -> None:
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, name=f"chronos-notify-{self.channel.name}", daemon=True)
        self.thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        try:
            self.queue.put_nowait(_STOP)
        except queue.Full:
            pass  # the worker sees the stop flag after its current delivery
        if self.thread is not None:
            self.thread.join(timeout)
        left = self.queue.qsize()
        if left:
            log.info("%d %s notification(s) not sent: stopping", left, self.channel.name)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self.queue.get()
            if item is _STOP:
                return
            self._deliver(*item)

    def _deliver(self, notification: Notification, to: str) -> None:
        name = self.channel.name
        for attempt in range(1, self.attempts + 1):
            try:
                self.channel.send(notification, to)
            except DeliveryError as exc:
                if exc.permanent or attempt == self.attempts or self._stop.is_set():
                    self.count("failed")
                    log.warning("could not send %s notification to %r (%s): %s", name, to, notification.subject, exc)
                    return
                self.count("retried")
                log.info("%s notification to %r failed (%s), trying again", name, to, exc)
                if self._stop.wait(self.retry_delay * 2 ** (attempt - 1)):
                    self.count("failed")
                    return
            except Exception:  # a bug in one delivery must not end the channel's thread
                self.count("failed")
                log.exception("%s notification to %r failed", name, to)
                return
            else:
                self.count("sent")
                log.info("sent %s notification to %r: %s", name, to, notification.subject)
                return


class Notifier:
    """Fans notifications out to the channels, once per owner entry each (as upstream), without ever blocking."""

    def __init__(
        self,
        channels: Iterable[Channel] = (),
        queue_size: int = QUEUE_SIZE,
        attempts: int = ATTEMPTS,
        retry_delay: float = RETRY_DELAY,
    ) -> None:
        self._lanes = [_Lane(channel, queue_size, attempts, retry_delay) for channel in channels]

    @property
    def channels(self) -> list[str]:
        return [lane.channel.name for lane in self._lanes]

    def start(self) -> None:
        for lane in self._lanes:
            lane.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Waits a little for the deliveries under way; a channel stuck in a slow server is left to its timeout."""
        for lane in self._lanes:
            lane.stop(timeout)

    def submit(self, notifications: Iterable[Notification]) -> None:
        for notification in notifications:
            log.info("%s", notification.subject)
            for lane in self._lanes:
                for to in notification.recipients:
                    lane.offer(notification, to)

    def counters(self) -> dict[str, int]:
        """``notifications.<channel>.<sent|retried|failed|dropped>``, and ``...queued`` (waiting now)."""
        result: dict[str, int] = {}
        for lane in self._lanes:
            for outcome, value in lane.snapshot().items():
                result[f"notifications.{lane.channel.name}.{outcome}"] = value
            result[f"notifications.{lane.channel.name}.queued"] = lane.queue.qsize()
        return result
