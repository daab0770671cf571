"""From a job run to a Mesos TaskInfo, and whether an offer can take it (pure functions, unit-tested).

Task ids keep Chronos' format ``ct:<dueMillis>:<attempt>:<jobName>:<args>`` because operators grep for them and
Mesos-DNS derives names from the task name ``ChronosTask:<name>``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from mesolite.chronos.jobs import Job
from mesolite.core.attributes import Attributes

Kill = tuple[str, str | None]  # (task id, agent id)
TASK_NAME = "ChronosTask:{}"
_TASK_ID = re.compile(r"^ct:(\d+):(\d+):([\w.-]+):?(.*)$", re.ASCII | re.DOTALL)


@dataclass(frozen=True)
class TaskRef:
    due_ms: int
    attempt: int
    job: str
    arguments: str


@dataclass
class Run:
    """One queued or launched task of a job."""

    task_id: str
    job: str
    due_ms: int
    attempt: int
    arguments: str | None  # a run-now override; None runs the job's own arguments
    seq: int
    high_priority: bool = False
    not_before: float = 0.0  # a retry waits --failure_retry before it may launch
    state: str = "queued"  # queued | launched | running | finished (an async job's task ended, its report awaited)
    agent_id: str | None = None
    launched_at: float | None = None
    started_at: float | None = None
    elements_processed: int | None = None  # progress reports of a dataProcessingJobType job; None before the first

    @property
    def active(self) -> bool:
        return self.state != "queued"


def offer_agent(offer: dict[str, Any]) -> str | None:
    return (offer.get("agent_id") or {}).get("value")


def never_launched(state: str, status: dict[str, Any]) -> bool:
    """The master's reconciliation answer for a task it has never heard of (on an agent it knows)."""
    return status.get("reason") == "REASON_RECONCILIATION" and state in ("TASK_GONE", "TASK_UNKNOWN", "TASK_LOST")


def task_id(job_name: str, due_ms: int, attempt: int, arguments: str) -> str:
    return f"ct:{due_ms}:{attempt}:{job_name}:{arguments.replace(';', '')}"


def parse_task_id(value: str) -> TaskRef | None:
    match = _TASK_ID.match(value)
    if not match:
        return None
    return TaskRef(int(match.group(1)), int(match.group(2)), match.group(3), match.group(4))


def default_arguments(job: Job) -> str:
    return " ".join(job.get("arguments") or [])


# ------------------------------------------------------------------------------------------------- offers


@dataclass
class OfferSpace:
    """What is left of one offer while tasks are packed into it."""

    offer: dict[str, Any]
    free: dict[str, dict[str, float]]  # resource name -> role -> amount
    attributes: dict[str, list[str]]

    @classmethod
    def of(cls, offer: dict[str, Any]) -> OfferSpace:
        free: dict[str, dict[str, float]] = {}
        for resource in offer.get("resources") or []:
            if resource.get("type") == "SCALAR":
                role = resource.get("role") or (resource.get("reservation") or {}).get("role") or "*"
                by_role = free.setdefault(resource["name"], {})
                by_role[role] = by_role.get(role, 0.0) + float(resource["scalar"]["value"])
        return cls(offer, free, offer_attributes(offer))

    def take(self, name: str, amount: float) -> dict[str, Any] | None:
        """Reserve ``amount`` of ``name``, reserved roles first (as Chronos prefers them); None if it does not fit."""
        roles = sorted(self.free.get(name, {}).items(), key=lambda item: item[0] == "*")
        for role, available in roles:
            if available + 1e-9 >= amount:
                self.free[name][role] = available - amount
                resource: dict[str, Any] = {"name": name, "type": "SCALAR", "scalar": {"value": amount}}
                resource["role"] = role
                return resource
        return None

    def fits(self, cpus: float, mem: float, disk: float) -> bool:
        wanted = {"cpus": cpus, "mem": mem, "disk": disk}
        return all(
            max(self.free.get(name, {}).values(), default=0.0) + 1e-9 >= amount for name, amount in wanted.items()
        )


def offer_attributes(offer: dict[str, Any]) -> dict[str, list[str]]:
    """Attribute values as text, with ``hostname`` added when the agent does not set it (ConstraintChecker)."""
    values: dict[str, list[str]] = {}
    try:
        attributes = Attributes.from_v1(offer.get("attributes") or [])
    except ValueError:
        attributes = Attributes()
    for attribute in attributes:
        if attribute.type == "SCALAR":
            # Both how operators write it (``2``) and how Chronos printed it from a Java double (``2.0``).
            values[attribute.name] = list(dict.fromkeys([attribute.value_text(), repr(attribute.scalar)]))
        elif attribute.type == "TEXT":
            values[attribute.name] = [attribute.text]
        else:
            values[attribute.name] = []  # RANGES: Chronos' constraints never match them
    values.setdefault("hostname", [str(offer.get("hostname") or "")])
    return values


def constraints_match(constraints: list[list[str]], attributes: dict[str, list[str]]) -> bool:
    """EQUALS: some value equals; LIKE: some value fully matches the regex; UNLIKE: no value matches it.

    An attribute the agent lacks fails EQUALS and LIKE and passes UNLIKE, as in Chronos.
    """
    for attribute, operator, value in constraints:
        present = attributes.get(attribute)
        if operator == "EQUALS":
            ok = present is not None and value in present
        elif operator == "LIKE":
            ok = present is not None and any(re.fullmatch(value, item) for item in present)
        else:  # UNLIKE
            ok = present is None or not any(re.fullmatch(value, item) for item in present)
        if not ok:
            return False
    return True


# -------------------------------------------------------------------------------------------- task infos


def _number(value: float) -> str:
    """Java's Double.toString for the resource environment variables (``0.1``, ``128.0``)."""
    return repr(float(value))


def environment(job: Job, task: str, hostname: str, due_ms: int, attempt: int) -> list[dict[str, str]]:
    """MesosTaskBuilder.envs: the CHRONOS_* variables; the job's own variables never override them."""
    base = {
        "mesos_task_id": task,
        "MESOS_TASK_ID": task,
        "CHRONOS_JOB_OWNER": job.get("owner", ""),
        "CHRONOS_JOB_NAME": job["name"],
        "HOST": hostname,
        "CHRONOS_RESOURCE_MEM": _number(job["mem"]),
        "CHRONOS_RESOURCE_CPU": _number(job["cpus"]),
        "CHRONOS_RESOURCE_DISK": _number(job["disk"]),
        "CHRONOS_JOB_RUN_TIME": str(due_ms),
        "CHRONOS_JOB_RUN_ATTEMPT": str(attempt),
    }
    for variable in job.get("environmentVariables") or []:
        base.setdefault(variable["name"], variable["value"])
    return [{"name": name, "value": value} for name, value in base.items()]


def command_info(job: Job, arguments: str | None, env: list[dict[str, str]]) -> dict[str, Any]:
    """CommandInfo for the job.

    ``shell: true`` runs ``/bin/sh -c command`` (run-now arguments appended to it, as Chronos does). ``shell:
    false`` runs ``command`` as an executable with ``arguments``: for a Docker container they are the container's
    arguments as Chronos passes them; for a command task ``argv[0]`` is the command itself, because Mesos takes
    ``arguments[0]`` as ``argv[0]`` and would otherwise swallow the first argument.
    """
    fetch = list(job.get("fetch") or []) + [
        {"uri": uri, "executable": False, "cache": False, "extract": True} for uri in job.get("uris") or []
    ]
    uris = []
    for entry in fetch:
        uri: dict[str, Any] = {
            "value": entry["uri"],
            "executable": bool(entry.get("executable")),
            "extract": bool(entry.get("extract", True)),
            "cache": bool(entry.get("cache")),
        }
        if entry.get("output_file"):
            uri["output_file"] = entry["output_file"]
        uris.append(uri)
    command: dict[str, Any] = {"environment": {"variables": env}, "uris": uris}
    value = job.get("command") or ""
    if job.get("shell", True):
        if arguments:
            value = f"{value} {arguments}"
        command.update(shell=True, value=value)
    else:
        args = shlex.split(arguments) if arguments else list(job.get("arguments") or [])
        command.update(shell=False, value=value)
        command["arguments"] = args if "container" in job else [value, *args]
    if job.get("runAsUser"):
        command["user"] = job["runAsUser"]
    return command


def container_info(container: dict[str, Any]) -> dict[str, Any]:
    """MesosTaskBuilder.createContainerInfo in v1 JSON."""
    volumes = []
    for volume in container.get("volumes") or []:
        entry: dict[str, Any] = {"container_path": volume["containerPath"], "mode": volume.get("mode", "RW")}
        if "hostPath" in volume:
            entry["host_path"] = volume["hostPath"]
        external = volume.get("external")
        if external:
            entry["source"] = {
                "type": "DOCKER_VOLUME",
                "docker_volume": {
                    "driver": external["provider"],
                    "name": external["name"],
                    "driver_options": {"parameter": external.get("options") or []},
                },
            }
        volumes.append(entry)
    info: dict[str, Any] = {"type": container["type"], "volumes": volumes}
    if container["type"] == "DOCKER":
        info["docker"] = {
            "image": container["image"],
            "network": container.get("network", "HOST"),
            "force_pull_image": bool(container.get("forcePullImage")),
            "parameters": container.get("parameters") or [],
        }
    else:
        info["mesos"] = {
            "image": {
                "type": "DOCKER",
                "docker": {"name": container["image"]},
                "cached": not container.get("forcePullImage"),
            }
        }
    network_infos = []
    if container.get("networkName"):
        network_infos.append({"name": container["networkName"]})
    for network in container.get("networkInfos") or []:
        network_infos.append({"name": network["name"], "labels": {"labels": network.get("labels") or []}})
    if network_infos:
        info["network_infos"] = network_infos
    return info


def task_info(
    job: Job,
    task: str,
    ref: TaskRef,
    arguments: str | None,
    space: OfferSpace,
) -> dict[str, Any] | None:
    """The TaskInfo to launch on this offer, taking its resources out of ``space``; None if it does not fit."""
    if not space.fits(job["cpus"], job["mem"], job["disk"]):
        return None
    resources = [space.take(name, job[name]) for name in ("cpus", "mem", "disk")]
    offer = space.offer
    env = environment(job, task, str(offer.get("hostname") or ""), ref.due_ms, ref.attempt)
    info: dict[str, Any] = {
        "name": TASK_NAME.format(job["name"]),
        "task_id": {"value": task},
        "agent_id": offer["agent_id"],
        "resources": resources,
        "command": command_info(job, arguments, env),
    }
    if "container" in job:
        info["container"] = container_info(job["container"])
    if job.get("maxCompletionTime"):
        info["max_completion_time"] = {"nanoseconds": int(job["maxCompletionTime"]) * 1_000_000_000}
    return info
