"""The edge of the v1 operator API (``POST /api/v1``): a body becomes a typed call, or Mesos' 400 message.

Mesos turns the JSON into a ``master::Call`` protobuf with stout's converter and then validates it, and operator
scripts see the converter's words: ``Failed to convert JSON into Call protobuf: Missing required fields:
drain_agent.agent_id``, ``Not expecting a JSON string for field 'max_grace_period'``, ``Failed to validate
master::Call: Expecting 'type' to be present``. So the fields the master reads are described here as protobuf
schemas (type, required, repeated) and converted the way stout does it: unknown keys and ``null`` are ignored,
numbers and booleans may come as strings, an enum name the master does not know drops the field. The typed calls
that come out carry bare ids and plain values; the state machine never sees JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mesolite.core.protobuf_json import CallError, F, Schema, convert
from mesolite.core.resources import validate_role
from mesolite.master.maintenance import MachineID, Unavailability, Window
from mesolite.master.quota import QuotaConfig

VALIDATE = "Failed to validate master::Call"

CALL_TYPES = (
    "UNKNOWN GET_HEALTH GET_FLAGS SET_LOGGING_LEVEL GET_LOGGING_LEVEL LIST_FILES READ_FILE GET_STATE GET_AGENTS "
    "GET_FRAMEWORKS GET_EXECUTORS GET_OPERATIONS GET_TASKS GET_ROLES GET_WEIGHTS UPDATE_WEIGHTS GET_MASTER SUBSCRIBE "
    "RESERVE_RESOURCES UNRESERVE_RESOURCES CREATE_VOLUMES DESTROY_VOLUMES GROW_VOLUME SHRINK_VOLUME "
    "GET_MAINTENANCE_STATUS GET_MAINTENANCE_SCHEDULE UPDATE_MAINTENANCE_SCHEDULE START_MAINTENANCE STOP_MAINTENANCE "
    "DRAIN_AGENT DEACTIVATE_AGENT REACTIVATE_AGENT GET_QUOTA UPDATE_QUOTA SET_QUOTA REMOVE_QUOTA TEARDOWN "
    "MARK_AGENT_GONE GET_VERSION GET_METRICS"
).split()
# Calls Mesos has that this master does not carry out (offer operations by the operator): refused, never ignored.
UNSUPPORTED = frozenset(
    {"RESERVE_RESOURCES", "UNRESERVE_RESOURCES", "CREATE_VOLUMES", "DESTROY_VOLUMES", "GROW_VOLUME", "SHRINK_VOLUME"}
)


# ---------------------------------------------------------------------------------------------------- schemas


ID: Schema = {"value": F("string", required=True)}
DURATION_INFO: Schema = {"nanoseconds": F("int", required=True)}
DURATION: Schema = {"seconds": F("int"), "nanos": F("int")}
SCALAR: Schema = {"value": F("double", required=True)}
MACHINE_ID: Schema = {"hostname": F("string"), "ip": F("string")}
UNAVAILABILITY: Schema = {
    "start": F({"nanoseconds": F("int", required=True)}, required=True),
    "duration": F(DURATION_INFO),
}
SCHEDULE: Schema = {
    "windows": F(
        {"machine_ids": F(MACHINE_ID, repeated=True), "unavailability": F(UNAVAILABILITY, required=True)}, repeated=True
    )
}
QUOTA_CONFIG: Schema = {
    "role": F("string", required=True),
    "guarantees": F(SCALAR, repeated=True, names=("map",)),
    "limits": F(SCALAR, repeated=True, names=("map",)),
}
AGENT: Schema = {"agent_id": F(ID, required=True)}
MACHINES: Schema = {"machines": F(MACHINE_ID, repeated=True)}

SUB_MESSAGES: dict[str, Schema] = {
    "get_metrics": {"timeout": F(DURATION_INFO)},
    "set_logging_level": {"level": F("int", required=True), "duration": F(DURATION_INFO, required=True)},
    "list_files": {"path": F("string", required=True)},
    "read_file": {"path": F("string", required=True), "offset": F("int", required=True), "length": F("int")},
    "update_weights": {"weight_infos": F({"weight": F("double", required=True), "role": F("string")}, repeated=True)},
    "update_maintenance_schedule": {"schedule": F(SCHEDULE, required=True)},
    "start_maintenance": MACHINES,
    "stop_maintenance": MACHINES,
    "drain_agent": {**AGENT, "max_grace_period": F(DURATION), "mark_gone": F("bool")},
    "deactivate_agent": AGENT,
    "reactivate_agent": AGENT,
    "mark_agent_gone": AGENT,
    "update_quota": {"force": F("bool"), "quota_configs": F(QUOTA_CONFIG, repeated=True)},
    "set_quota": {"quota_request": F({"role": F("string"), "force": F("bool")}, required=True)},
    "remove_quota": {"role": F("string", required=True)},
    "teardown": {"framework_id": F(ID, required=True)},
}
CALL: Schema = {"type": F("enum", names=tuple(CALL_TYPES)), **{k: F(v) for k, v in SUB_MESSAGES.items()}}


# ---------------------------------------------------------------------------------------------------- typed calls


@dataclass(frozen=True)
class Call:
    """A converted and validated operator call: its type and its sub-message (``{}`` when it has none)."""

    type: str
    body: dict[str, Any]
    raw: dict[str, Any]  # the sub-message as sent, for the deprecated calls that carry whole Resources


def parse(raw: Any) -> Call:
    """Convert, then validate as ``validation::master::call`` does: the type is known and set, and a call with a
    sub-message carries it."""
    converted = convert(CALL, raw)
    kind = converted.get("type")
    if kind is None:
        raise CallError(f"{VALIDATE}: Expecting 'type' to be present")
    key = kind.lower()
    if key in SUB_MESSAGES and key not in converted:
        raise CallError(f"{VALIDATE}: Expecting '{key}' to be present")
    raw_body = raw.get(key)
    return Call(kind, converted.get(key, {}), raw_body if isinstance(raw_body, dict) else {})


def agent_id(call: Call) -> str:
    return str(call.body["agent_id"]["value"])


@dataclass(frozen=True)
class DrainAgent:
    agent_id: str
    max_grace_period: float | None  # seconds; None: each task's own kill policy
    mark_gone: bool


def drain_agent(call: Call) -> DrainAgent:
    grace = call.body.get("max_grace_period")
    seconds = None
    if grace is not None:
        seconds = int(grace.get("seconds", 0)) + int(grace.get("nanos", 0)) / 1e9
        if seconds < 0:
            raise CallError(f"{VALIDATE}: Invalid 'max_grace_period': a duration cannot be negative")
    return DrainAgent(agent_id(call), seconds, bool(call.body.get("mark_gone", False)))


def weights(call: Call) -> dict[str, float]:
    out: dict[str, float] = {}
    for info in call.body.get("weight_infos", []):
        role = info.get("role", "*")
        weight = float(info["weight"])
        if weight <= 0:
            raise CallError(f"Failed to validate weights: Invalid weight '{weight:g}': Weights must be positive")
        try:
            validate_role(role)
        except ValueError as exc:
            raise CallError(f"Failed to validate weights: {exc}") from None
        out[role] = weight
    return out


def _machine(obj: Mapping[str, Any]) -> MachineID:
    return MachineID(obj.get("hostname", ""), obj.get("ip", ""))


def machines(call: Call) -> list[MachineID]:
    return [_machine(m) for m in call.body.get("machines", [])]


def schedule_windows(schedule: Mapping[str, Any]) -> list[Window]:
    """A converted ``maintenance::Schedule``."""
    windows = []
    for window in schedule.get("windows", []):
        unavailability = window["unavailability"]
        duration = unavailability.get("duration")
        windows.append(
            Window(
                tuple(_machine(m) for m in window.get("machine_ids", [])),
                Unavailability(
                    int(unavailability["start"]["nanoseconds"]),
                    int(duration["nanoseconds"]) if duration is not None else None,
                ),
            )
        )
    return windows


def quota_configs(call: Call) -> tuple[list[QuotaConfig], bool]:
    configs = [
        QuotaConfig(
            c["role"],
            {n: float(v["value"]) for n, v in c.get("guarantees", {}).items()},
            {n: float(v["value"]) for n, v in c.get("limits", {}).items()},
        )
        for c in call.body.get("quota_configs", [])
    ]
    return configs, bool(call.body.get("force", False))


def framework_id(call: Call) -> str:
    return str(call.body["framework_id"]["value"])
