"""Mesos' checks on what a framework asks of the master (src/master/validation.cpp), as pure functions.

They read the master's records and change nothing; the first failure's text is what the framework sees, in a
TASK_ERROR or TASK_LOST update for a task or offer, or in the 400 answer to an UPDATE_FRAMEWORK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesolite.core.resources import ResourceError, Resources
from mesolite.master.calls import TaskSpec
from mesolite.master.model import Agent, Framework, Offer

# FrameworkInfo fields a framework cannot change once registered.
FIXED_FRAMEWORK_FIELDS = ("principal", "user", "checkpoint")


@dataclass(frozen=True)
class TaskResources:
    """What a valid task takes from the offer: its own resources, and its executor's when that starts with it."""

    task: Resources
    executor: Resources


def id_error(value: str) -> str | None:
    """Ids become directory names in the agent's sandbox path, so Mesos restricts them."""
    if not value:
        return "must not be empty"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    if "/" in value or "\\" in value:
        return f"'{value}' contains invalid characters"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return f"'{value}' contains invalid characters"
    return None


def offers_error(
    framework: Framework,
    offer_ids: Sequence[str | None],
    offers: Mapping[str, Offer],
    agents: Mapping[str, Agent],
) -> tuple[list[Offer], str | None]:
    """The offers of an ACCEPT, checked as Mesos checks them: those found for this framework, and the reason the
    ACCEPT is refused (which goes into the TASK_LOST message of every task in it), or None."""
    if not offer_ids:
        return [], "No offers specified"
    found: list[Offer] = []
    for offer_id in offer_ids:
        offer = offers.get(offer_id or "")
        if offer is None:
            mine = (offers.get(i or "") for i in offer_ids)
            return [o for o in mine if o and o.framework_id == framework.id], f"Offer {offer_id} is no longer valid"
        if offer.framework_id != framework.id:
            return [], (
                f"Offer {offer_id} has invalid framework {offer.framework_id} "
                f"while framework {framework.id} is expected"
            )
        found.append(offer)
    if len(set(offer_ids)) != len(offer_ids):
        return found, "Duplicate offer ids"
    if len({o.agent_id for o in found}) > 1:
        return found, "Aggregated offers must belong to one single agent"
    if len({o.role for o in found}) > 1:
        return found, "Aggregated offers must be allocated to the same role"
    agent = agents.get(found[0].agent_id)
    if agent is None or not agent.active:
        return found, f"Agent {found[0].agent_id} is not available"
    return found, None


def task_error(
    framework: Framework,
    agent: Agent,
    task: TaskSpec,
    group_executor: dict[str, Any] | None,
    available: Resources,
) -> tuple[str | None, TaskResources]:
    """Mesos' TaskInfo checks; the first failure is the TASK_ERROR message. On success, what the task takes."""
    empty = TaskResources(Resources(), Resources())
    invalid_id = id_error(task.task_id)
    if invalid_id:
        return f"Task ID {invalid_id}", empty
    if task.task_id in framework.tasks:
        return f"Task has duplicate ID: {task.task_id}", empty
    if task.agent_id != agent.id:
        return f"Task uses invalid agent: {task.agent_id} (the offer is for agent {agent.id})", empty
    shape = _command_or_executor_error(task.info, group_executor)
    if shape:
        return shape, empty
    try:
        resources = Resources.from_v1(task.info.get("resources") or [])
    except ResourceError as exc:
        return f"Task uses invalid resources: {exc}", empty
    if not resources:
        return "Task uses no resources", empty
    executor_resources = Resources()
    if task.executor is not None:
        if not task.executor_id:
            return "ExecutorInfo is missing 'executor_id'", empty
        if (framework.id, task.executor_id) not in agent.executors:
            try:
                executor_resources = Resources.from_v1(task.executor.get("resources") or [])
            except ResourceError as exc:
                return f"Executor uses invalid resources: {exc}", empty
    needed = resources + executor_resources
    if not available.contains(needed):
        return f"Total resources {needed} required by task and its executor is more than available {available}", empty
    return None, TaskResources(resources, executor_resources)


def _command_or_executor_error(task_info: dict[str, Any], group_executor: dict[str, Any] | None) -> str | None:
    has_command = isinstance(task_info.get("command"), dict)
    has_executor = isinstance(task_info.get("executor"), dict)
    if group_executor is not None:
        if has_executor:
            return "'TaskInfo.executor' must not be set for a task in a task group"
        if not has_command:
            return "'TaskInfo.command' must be set for a task in a task group"
    elif has_command == has_executor:
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    return None


def framework_update_error(current: dict[str, Any], update: dict[str, Any]) -> str | None:
    """UPDATE_FRAMEWORK may change a FrameworkInfo, except for the fields that identify who runs the framework."""
    for fixed in FIXED_FRAMEWORK_FIELDS:
        if fixed in update and update[fixed] != current.get(fixed):
            return f"Failed to validate scheduler::Call: '{fixed}' cannot be changed"
    return None
