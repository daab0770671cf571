"""What Chronos tells a job's owners, and when: the notifications the state machine returns as effects (pure).

The triggers and texts are upstream's (``JobNotificationObserver``, ``JobScheduler``): a run that failed beyond its
retries, a job disabled after ``--disable_after_failures`` failures, a finite schedule whose last recurrence
succeeded (the only notice that follows a success: a job asks for it by having an ``Rn`` schedule), and a deleted
job. Nothing is sent for a start, an intermediate retry or an ordinary success. ``notifier.py`` delivers them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Job = dict[str, Any]

_OWNER_SEPARATOR = re.compile(r"\s*,\s*")


@dataclass(frozen=True)
class Notification:
    """One event to tell every notification channel about, once per entry of the job's ``owner``."""

    job: Job  # the job as the event left it (the generic webhook sends its counters)
    subject: str
    message: str | None = None

    @property
    def recipients(self) -> list[str]:
        return recipients(self.job.get("owner") or "")


def recipients(owner: str) -> list[str]:
    """``owner`` split as Java's ``split("\\s*,\\s*")`` does: trailing empty entries dropped, but an empty owner is
    still one (empty) recipient, so the chat and webhook channels hear of an owner-less job too."""
    parts = _OWNER_SEPARATOR.split(owner)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _prefix(cluster_name: str | None) -> str:
    """``--cluster_name`` in brackets; without it upstream's subjects start with a space, kept for mail filters."""
    return f"[{cluster_name}]" if cluster_name else ""


def _with_scheduler_message(message: str, scheduler_message: str | None) -> str:
    if not scheduler_message:
        return message
    return f"{message}The scheduler provided this message:\n\n{scheduler_message}"


def retries_exhausted(
    job: Job, task_id: str, at: str, scheduler_message: str | None = None, cluster_name: str | None = None
) -> Notification:
    """A run failed and no retry is left; the job stays enabled. ``at`` is the UTC time, as Joda prints it."""
    message = f"\n'{at}'. Retries attempted: {job['retries']}.\nTask id: {task_id}\n"
    return Notification(
        job,
        f"{_prefix(cluster_name)} [Chronos] job '{job['name']}' failed!",
        _with_scheduler_message(message, scheduler_message),
    )


def disabled_after_failures(
    job: Job, task_id: str, at: str, scheduler_message: str | None = None, cluster_name: str | None = None
) -> Notification:
    """The failure that reached ``--disable_after_failures``: the job is disabled (instead of "failed!")."""
    failures = job["errorsSinceLastSuccess"]
    message = f"\nFailed at '{at}', {failures} failures since last success\nTask id: {task_id}\n"
    return disabled(job, _with_scheduler_message(message, scheduler_message), cluster_name)


def recurrences_exhausted(job: Job, cluster_name: str | None = None) -> Notification:
    """A run of a job whose schedule has no recurrence left (``R0``) succeeded."""
    message = (
        f"JobSchedule '{job['name']}' has exhausted all of its recurrences and has been disabled.\n"
        "Please consider either removing your job, or updating its schedule and re-enabling it.\n"
    )
    return disabled(job, message, cluster_name)


def disabled(job: Job, cause: str, cluster_name: str | None = None) -> Notification:
    return Notification(job, f"{_prefix(cluster_name)} [Chronos] job '{job['name']}' disabled", cause)


def deleted(job: Job, cluster_name: str | None = None) -> Notification:
    return Notification(job, f"{_prefix(cluster_name)} [Chronos] Your job '{job['name']}' was deleted!")
