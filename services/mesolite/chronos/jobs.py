"""Chronos job definitions: reading a posted job with Chronos' defaults, validating it, and writing it back in the
3.x serializer's key order (clients diff what they read against what they posted).

A job is kept as the plain JSON dict Chronos prints — the store holds exactly what ``GET /jobs`` returns — and this
module is the only place that knows its fields. Fields from 2.x clients (``epsilon``, ``async``) are accepted and
kept; unknown fields are ignored, as Jackson's custom deserializer did.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mesolite.chronos.schedule import (
    Schedule,
    ScheduleError,
    format_datetime,
    parse_period,
    parse_schedule,
    parse_zone,
)

Job = dict[str, Any]

NAME_PATTERN = r"([\w\.-]+)"
_NAME = re.compile(r"[\w.-]+", re.ASCII)
CONSTRAINT_OPERATORS = ("EQUALS", "LIKE", "UNLIKE")
# Counters the server maintains; an update that leaves them out keeps the stored values.
COUNTERS = ("successCount", "errorCount", "errorsSinceLastSuccess", "lastSuccess", "lastError")


class JobError(ValueError):
    """A job Chronos would answer with 400; the message names the offending field or value."""


@dataclass(frozen=True)
class JobDefaults:
    """Server-side defaults (Chronos' ``--mesos_task_*``, ``--user``, ``--task_epsilon`` flags)."""

    cpus: float = 0.1
    mem: float = 128.0
    disk: float = 256.0
    user: str = "root"
    epsilon_seconds: int = 60


def now_iso(now: datetime | None = None) -> str:
    """Joda's ``DateTime.now(UTC).toString``: how Chronos stamps lastSuccess and lastError."""
    return format_datetime((now or datetime.now(UTC)).astimezone(UTC))


def is_scheduled(job: Job) -> bool:
    return "schedule" in job


def job_schedule(job: Job) -> Schedule:
    return parse_schedule(job["schedule"], job.get("scheduleTimeZone") or "")


def job_epsilon(job: Job) -> timedelta:
    period = parse_period(job.get("epsilon") or "PT60S")
    # Calendar fields in a grace window are taken at their nominal length.
    return timedelta(seconds=period.nominal_seconds)


def last_state(job: Job) -> str:
    """``fresh`` / ``success`` / ``failure`` as Exporter.getLastState decides it."""
    success, error = job.get("lastSuccess") or "", job.get("lastError") or ""
    if not success and not error:
        return "fresh"
    if not success:
        return "failure"
    if not error:
        return "success"
    return "success" if instant(success) > instant(error) else "failure"


def instant(text: str) -> datetime:
    """A stored lastSuccess/lastError; unreadable ones (clients may send anything) sort first."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------- reading


def _string(body: Job, key: str, default: str = "") -> str:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise JobError(f"'{key}' must be a string")
    return str(value)


def _bool(body: Job, key: str, default: bool = False) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise JobError(f"'{key}' must be a boolean")


def _int(body: Job, key: str, default: int = 0, minimum: int = 0) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise JobError(f"'{key}' must be an integer")
    try:
        number = int(value)
    except ValueError:
        raise JobError(f"'{key}' must be an integer") from None
    if number < minimum:
        raise JobError(f"'{key}' must be at least {minimum}")
    return number


def _resource(body: Job, key: str, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise JobError(f"'{key}' must be a number")
    try:
        number = float(value)
    except ValueError:
        raise JobError(f"'{key}' must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise JobError(f"'{key}' must be a non-negative number")
    return number if number > 0 else default


def _list(body: Job, key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise JobError(f"'{key}' must be an array")
    return value


def _strings(body: Job, key: str) -> list[str]:
    items = _list(body, key)
    if not all(isinstance(item, str | int | float) and not isinstance(item, bool) for item in items):
        raise JobError(f"'{key}' must be an array of strings")
    return [str(item) for item in items]


def _pairs(items: list[Any], key: str, first: str, second: str) -> list[dict[str, str]]:
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(first), str):
            raise JobError(f"each entry of '{key}' needs a string '{first}'")
        value = item.get(second)
        pairs.append({first: item[first], second: "" if value is None else str(value)})
    return pairs


def _fetch(body: Job) -> list[dict[str, Any]]:
    entries = []
    for item in _list(body, "fetch"):
        if not isinstance(item, dict) or not isinstance(item.get("uri", ""), str):
            raise JobError("each entry of 'fetch' must be an object with a string 'uri'")
        entry: dict[str, Any] = {
            "uri": item.get("uri", ""),
            "executable": _bool(item, "executable"),
            "cache": _bool(item, "cache"),
            "extract": _bool(item, "extract", True),
        }
        if item.get("output_file"):
            entry["output_file"] = _string(item, "output_file")
        entries.append(entry)
    return entries


def _container(body: Job) -> dict[str, Any] | None:
    raw = body.get("container")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise JobError("'container' must be an object")
    image = raw.get("image")
    if not isinstance(image, str) or not image:
        raise JobError("'container.image' is required")
    kind = _string(raw, "type", "DOCKER").upper()
    if kind not in ("DOCKER", "MESOS"):
        raise JobError(f"'container.type' must be DOCKER or MESOS, not '{kind}'")
    network = _string(raw, "network", "HOST").upper()
    if network not in ("HOST", "BRIDGE", "USER"):
        raise JobError(f"'container.network' must be HOST, BRIDGE or USER, not '{network}'")
    container: dict[str, Any] = {"type": kind, "image": image, "network": network}
    if raw.get("networkName"):
        container["networkName"] = _string(raw, "networkName")
    networks = []
    for item in _list(raw, "networkInfos"):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise JobError("each entry of 'container.networkInfos' needs a string 'name'")
        network_info: dict[str, Any] = {"name": item["name"]}
        if item.get("protocol") is not None:
            network_info["protocol"] = _string(item, "protocol")
        network_info["labels"] = _pairs(_list(item, "labels"), "labels", "key", "value")
        mappings = []
        for mapping in _list(item, "portMappings"):
            if not isinstance(mapping, dict):
                raise JobError("each entry of 'portMappings' must be an object")
            entry: dict[str, Any] = {
                "hostPort": _int(mapping, "hostPort"),
                "containerPort": _int(mapping, "containerPort"),
            }
            if mapping.get("protocol"):
                entry["protocol"] = _string(mapping, "protocol")
            mappings.append(entry)
        network_info["portMappings"] = mappings
        networks.append(network_info)
    container["networkInfos"] = networks
    volumes = []
    for item in _list(raw, "volumes"):
        if not isinstance(item, dict) or not isinstance(item.get("containerPath"), str):
            raise JobError("each entry of 'container.volumes' needs a string 'containerPath'")
        volume: dict[str, Any] = {}
        if item.get("hostPath") is not None:
            volume["hostPath"] = _string(item, "hostPath")
        volume["containerPath"] = item["containerPath"]
        if item.get("mode") is not None:
            mode = _string(item, "mode").upper()
            if mode not in ("RO", "RW"):
                raise JobError(f"volume mode must be RO or RW, not '{mode}'")
            volume["mode"] = mode
        external = item.get("external")
        if external is not None:
            if not isinstance(external, dict) or not isinstance(external.get("name"), str):
                raise JobError("'external' volumes need a string 'name'")
            volume["external"] = {
                "name": external["name"],
                "provider": _string(external, "provider", "dvdi"),
                "options": _pairs(_list(external, "options"), "options", "key", "value"),
            }
        volumes.append(volume)
    container["volumes"] = volumes
    container["forcePullImage"] = _bool(raw, "forcePullImage")
    container["parameters"] = _pairs(_list(raw, "parameters"), "container.parameters", "key", "value")
    return container


def _constraints(body: Job) -> list[list[str]]:
    constraints = []
    for item in _list(body, "constraints"):
        if not isinstance(item, list) or len(item) != 3 or not all(isinstance(part, str) for part in item):
            raise JobError(f"constraint {item!r} must be [attribute, operator, value]")
        if item[1] == "LIKE" or item[1] == "UNLIKE":
            try:
                re.compile(item[2])
            except re.error as exc:
                raise JobError(f"constraint {item!r}: invalid regular expression: {exc}") from None
        if item[1] in CONSTRAINT_OPERATORS:  # Chronos drops operators it does not know
            constraints.append(list(item))
    return constraints


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise JobError("the job's 'name' is required")
    if not _NAME.fullmatch(name):
        raise JobError(f"the job's name '{name}' is invalid. Allowed names: '{NAME_PATTERN}'")
    return name


def read_job(
    body: Any,
    defaults: JobDefaults,
    kind: str,
    now: datetime | None = None,
    existing: Job | None = None,
) -> Job:
    """A posted job (``kind`` = ``scheduled`` for /iso8601, ``dependent`` for /dependency) as Chronos stores it.

    Parents are checked against the graph by the caller; everything else that makes a job unusable is a JobError.
    """
    if not isinstance(body, dict):
        raise JobError("the request body must be a JSON object describing a job")
    name = validate_name(body.get("name"))
    fetch, uris = _fetch(body), _strings(body, "uris")
    if fetch and uris:
        raise JobError(f"Tried to add both uri (deprecated) and fetch parameters on {name}")
    epsilon = _string(body, "epsilon", f"PT{defaults.epsilon_seconds}S")
    try:
        parse_period(epsilon)
    except ScheduleError as exc:
        raise JobError(f"invalid epsilon: {exc}") from None
    job: Job = {
        "name": name,
        "command": _string(body, "command"),
        "shell": _bool(body, "shell", True),
        "epsilon": epsilon,
        "executor": _string(body, "executor"),
        "executorFlags": _string(body, "executorFlags"),
        "taskInfoData": _string(body, "taskInfoData"),
        "retries": _int(body, "retries", 2),
        "owner": _string(body, "owner"),
        "ownerName": _string(body, "ownerName"),
        "description": _string(body, "description"),
        "async": _bool(body, "async"),
        "successCount": _int(body, "successCount"),
        "errorCount": _int(body, "errorCount"),
        "lastSuccess": _string(body, "lastSuccess"),
        "lastError": _string(body, "lastError"),
        "cpus": _resource(body, "cpus", defaults.cpus),
        "disk": _resource(body, "disk", defaults.disk),
        "mem": _resource(body, "mem", defaults.mem),
        "disabled": _bool(body, "disabled"),
        "softError": _bool(body, "softError"),
        "dataProcessingJobType": _bool(body, "dataProcessingJobType"),
        "errorsSinceLastSuccess": _int(body, "errorsSinceLastSuccess"),
        "fetch": fetch,
        "uris": uris,
        "environmentVariables": _pairs(_list(body, "environmentVariables"), "environmentVariables", "name", "value"),
        "arguments": _strings(body, "arguments"),
        "highPriority": _bool(body, "highPriority"),
        "runAsUser": _string(body, "runAsUser", defaults.user) or defaults.user,
        "concurrent": _bool(body, "concurrent"),
        "maxCompletionTime": _int(body, "maxCompletionTime"),
    }
    container = _container(body)
    if container is not None:
        job["container"] = container
    job["constraints"] = _constraints(body)
    if existing is not None:
        for key in COUNTERS:
            if key not in body:
                job[key] = existing.get(key, job[key])
    if kind == "dependent":
        parents = _strings(body, "parents")
        if not parents:
            raise JobError("Error, parent does not exist")
        if name in parents:
            raise JobError(f"job '{name}' cannot be its own parent")
        job["parents"] = list(dict.fromkeys(parents))
        return job
    if "parents" in body and "schedule" not in body:
        raise JobError("a job with 'parents' is a dependent job: post it to /dependency")
    time_zone = _string(body, "scheduleTimeZone")
    if time_zone:
        try:
            parse_zone(time_zone)
        except ScheduleError as exc:
            raise JobError(f"invalid scheduleTimeZone: {exc}") from None
    moment = now or datetime.now(UTC)
    schedule_text = body.get("schedule")
    if schedule_text is None:
        schedule_text = f"R1/{now_iso(moment)}/PT24H"  # neither schedule nor parents: run once, now
    if not isinstance(schedule_text, str):
        raise JobError("'schedule' must be a string")
    try:
        schedule = parse_schedule(schedule_text, time_zone, now=moment)
    except ScheduleError as exc:
        message = str(exc)
        if schedule_text not in message:
            message = f"Cannot parse schedule '{schedule_text}': {message}"
        raise JobError(message) from None
    if schedule_text.strip().split("/")[1:2] == [""]:
        schedule_text = str(schedule)  # "empty start = now" is fixed at submission, not re-read as now forever
    job["schedule"] = schedule_text
    job["scheduleTimeZone"] = time_zone
    return job


def rendered(job: Job) -> Job:
    """The job as ``GET /jobs`` shows it: ``fetch`` and ``uris`` copied into each other (only one is ever set)."""
    shown = dict(job)
    if not job.get("fetch"):
        shown["fetch"] = [
            {"uri": uri, "executable": False, "cache": False, "extract": True} for uri in job.get("uris") or []
        ]
    else:
        shown["uris"] = [entry["uri"] for entry in job["fetch"]]
    return shown


def converted_to_scheduled(child: Job, schedule: str, time_zone: str) -> Job:
    """A dependent job whose only parent (a scheduled job) is deleted inherits that job's schedule (Chronos)."""
    job = {key: value for key, value in child.items() if key != "parents"}
    job["schedule"] = schedule
    job["scheduleTimeZone"] = time_zone
    return job
