"""Mesos v1 wire vocabulary shared by master, agent and frameworks: ids, task states (which are terminal, which are
failures: defined here once), status updates, RecordIO framing.

The v1 JSON dialect is the protobuf JSON mapping with proto field names (snake_case, enums as strings, bytes as
base64, ids wrapped as ``{"value": ...}``); these helpers keep that mapping in one place.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)
# Terminal and neither a success nor a kill: the task failed, could not be launched, or was lost with its agent.
FAILURE_STATES = TERMINAL_STATES - {"TASK_FINISHED", "TASK_KILLED"}
# Not terminal, but the framework may never hear of the task again: its agent is partitioned away, or the master
# has no record of it.
UNREACHABLE_STATES = frozenset({"TASK_UNREACHABLE", "TASK_UNKNOWN"})
ALL_STATES = (
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_KILLED",
    "TASK_FAILED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_UNREACHABLE",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
)
# States a framework only sees when it declared PARTITION_AWARE; others get TASK_LOST in their place.
PARTITION_AWARE_STATES = frozenset(
    {"TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"}
)


def new_id() -> str:
    return str(uuid.uuid4())


def wrap(value: str) -> dict[str, str]:
    """Mesos ids travel as ``{"value": "..."}``."""
    return {"value": value}


def unwrap(obj: Any) -> str | None:
    """Read a wrapped id; tolerate a bare string since some clients send one."""
    if isinstance(obj, dict):
        value = obj.get("value")
        return value if isinstance(value, str) else None
    if isinstance(obj, str):
        return obj
    return None


def new_status_uuid() -> str:
    """Status update uuids are 16 raw bytes, base64 encoded in JSON."""
    return base64.b64encode(uuid.uuid4().bytes).decode()


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def task_status(
    task_id: str,
    state: str,
    *,
    agent_id: str | None = None,
    executor_id: str | None = None,
    source: str = "SOURCE_AGENT",
    reason: str | None = None,
    message: str | None = None,
    with_uuid: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A TaskStatus in v1 JSON. Updates that must be acknowledged carry a uuid (and therefore an agent_id:
    pymesos acknowledges every update that has a uuid and reads agent_id to do so)."""
    status: dict[str, Any] = {
        "task_id": wrap(task_id),
        "state": state,
        "source": source,
        "timestamp": time.time(),
    }
    if agent_id:
        status["agent_id"] = wrap(agent_id)
    if executor_id:
        status["executor_id"] = wrap(executor_id)
    if reason:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    if with_uuid:
        status["uuid"] = new_status_uuid()
    status.update({k: v for k, v in extra.items() if v is not None})
    return status


def for_framework(status: dict[str, Any], partition_aware: bool) -> dict[str, Any]:
    """Downgrade partition-aware states to TASK_LOST for frameworks that did not opt in."""
    if partition_aware or status.get("state") not in PARTITION_AWARE_STATES:
        return status
    return {**status, "state": "TASK_LOST"}


def recordio(event: dict[str, Any]) -> bytes:
    """One RecordIO record: ASCII decimal length, LF, then the JSON bytes."""
    data = json.dumps(event, separators=(",", ":")).encode()
    return str(len(data)).encode() + b"\n" + data


class RecordIODecoder:
    """Incremental RecordIO parser: proxies may re-chunk a stream, so records are cut from the byte stream and
    never from chunk boundaries."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self._buffer += data
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                return
            header = self._buffer[:newline]
            if not header.isdigit():
                raise ValueError(f"Bad RecordIO length header: {header[:20]!r}")
            length = int(header)
            end = newline + 1 + length
            if len(self._buffer) < end:
                return
            record = self._buffer[newline + 1 : end]
            self._buffer = self._buffer[end:]
            yield json.loads(record)
