"""Maintenance primitives (Mesos' ``src/master/maintenance.cpp`` and the master's machine handling).

One schedule per cluster: windows of machines with an unavailability. A machine in the schedule is DRAINING (its
agents' offers carry the unavailability and their frameworks get inverse offers) until the operator brings it DOWN
(its agents are removed, their tasks lost, and agents there are refused until the machine comes UP again, which
also takes it out of the schedule). A machine is a ``hostname`` and an ``ip``; the master derives an agent's from
its hostname and IP, so a schedule entry matches agents only when it names both.

``Maintenance`` is the schedule and the modes, with Mesos' validation and messages, and no I/O; the master keeps it
in the registry and applies its consequences to agents (``Master``, ``inverse_offers.py``).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

UP, DRAINING, DOWN = "UP", "DRAINING", "DOWN"


class MaintenanceError(ValueError):
    """A schedule or machine list Mesos refuses (400 with this message)."""


@dataclass(frozen=True, eq=False)
class MachineID:
    hostname: str = ""
    ip: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """Equality as Mesos has it: the hostname case-insensitively, the IP exactly, an absent field only
        equal to an absent field."""
        return (self.hostname.lower(), self.ip)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MachineID) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def debug_string(self) -> str:
        """protobuf's DebugString, which Mesos' messages quote the machine with."""
        text = f'hostname: "{self.hostname}"\n' if self.hostname else ""
        return text + (f'ip: "{self.ip}"\n' if self.ip else "")

    def to_json(self) -> dict[str, str]:
        out = {}
        if self.hostname:
            out["hostname"] = self.hostname
        if self.ip:
            out["ip"] = self.ip
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MachineID:
        return cls(str(obj.get("hostname") or ""), str(obj.get("ip") or ""))

    @classmethod
    def of_agent(cls, hostname: str, ip: str) -> MachineID:
        return cls(hostname, ip)


@dataclass(frozen=True)
class Unavailability:
    start_ns: int
    duration_ns: int | None = None  # None: forever

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": {"nanoseconds": self.start_ns}}
        if self.duration_ns is not None:
            out["duration"] = {"nanoseconds": self.duration_ns}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Unavailability:
        duration = obj.get("duration")
        return cls(
            int(obj["start"]["nanoseconds"]),
            int(duration["nanoseconds"]) if isinstance(duration, dict) and "nanoseconds" in duration else None,
        )


@dataclass(frozen=True)
class Window:
    machines: tuple[MachineID, ...]
    unavailability: Unavailability

    def to_json(self) -> dict[str, Any]:
        return {
            "machine_ids": [m.to_json() for m in self.machines],
            "unavailability": self.unavailability.to_json(),
        }


def unavailability_overlaps(unavailability: dict[str, Any], now: float, horizon: float = 0.0) -> bool:
    """Whether an ``Unavailability`` (JSON, as offers carry it) covers any moment of ``[now, now + horizon]``."""
    try:
        start = int(unavailability["start"]["nanoseconds"]) / 1e9
    except (KeyError, TypeError, ValueError):
        return False
    duration = unavailability.get("duration")
    end = start + int(duration["nanoseconds"]) / 1e9 if isinstance(duration, dict) else float("inf")
    return start <= now + horizon and end > now


def _machine_error(machine: MachineID) -> str | None:
    if not machine.hostname and not machine.ip:
        return "Both 'hostname' and 'ip' for a machine are empty"
    if machine.ip:
        try:
            ipaddress.IPv4Address(machine.ip)
        except ValueError:
            return f"Failed to parse IPv4: {machine.ip}"
    return None


def schedule_error(windows: Sequence[Window], down: Iterable[MachineID]) -> str | None:
    """Mesos' ``validation::schedule``: windows with machines, durations not negative, machines valid and unique,
    and no DOWN machine left out."""
    seen: set[MachineID] = set()
    for window in windows:
        if not window.machines:
            return "List of machines in the maintenance window is empty"
        if window.unavailability.duration_ns is not None and window.unavailability.duration_ns < 0:
            return "Unavailability 'duration' is negative"
        for machine in window.machines:
            error = _machine_error(machine)
            if error:
                return error
            if machine in seen:
                return f"Machine '{machine.debug_string()}' appears more than once in the schedule"
            seen.add(machine)
    for machine in down:
        if machine not in seen:
            return f"Machine '{machine.debug_string()}' is deactivated and cannot be removed from the schedule"
    return None


def machines_error(machines: Sequence[MachineID]) -> str | None:
    """Mesos' ``validation::machines`` for ``/machine/down`` and ``/machine/up``."""
    if not machines:
        return "List of machines is empty"
    seen: set[MachineID] = set()
    for machine in machines:
        error = _machine_error(machine)
        if error:
            return error
        if machine in seen:
            return f"Machine '{machine.debug_string()}' appears more than once in the schedule"
        seen.add(machine)
    return None


@dataclass
class InverseOfferStatus:
    status: str  # ACCEPT | DECLINE | UNKNOWN
    framework_id: str
    timestamp: float

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "framework_id": {"value": self.framework_id},
            "timestamp": {"nanoseconds": int(self.timestamp * 1e9)},
        }


@dataclass
class Maintenance:
    """The schedule and the DOWN machines (what the registry keeps), and the frameworks' answers to inverse offers
    (which, as in Mesos, a failover forgets)."""

    windows: list[Window] = field(default_factory=list)
    down: set[MachineID] = field(default_factory=set)
    statuses: dict[MachineID, dict[str, InverseOfferStatus]] = field(default_factory=dict)

    def _scheduled(self) -> dict[MachineID, Unavailability]:
        return {machine: window.unavailability for window in self.windows for machine in window.machines}

    def mode(self, machine: MachineID) -> str:
        if machine in self.down:
            return DOWN
        return DRAINING if machine in self._scheduled() else UP

    def unavailability(self, machine: MachineID) -> Unavailability | None:
        """The unavailability offers from this machine carry: only while it is DRAINING."""
        if machine in self.down:
            return None
        return self._scheduled().get(machine)

    def machine_of(self, hostname: str, ip: str) -> MachineID | None:
        """The scheduled machine an agent is on, if any."""
        agent = MachineID.of_agent(hostname, ip)
        return agent if agent in self._scheduled() or agent in self.down else None

    # ------------------------------------------------------------------ operator calls

    def update_schedule(self, windows: Sequence[Window]) -> None:
        """Replace the schedule: new machines start DRAINING, machines left out return UP."""
        error = schedule_error(windows, self.down)
        if error:
            raise MaintenanceError(error)
        self.windows = list(windows)
        scheduled = self._scheduled()
        for machine in list(self.statuses):
            if machine not in scheduled:
                del self.statuses[machine]

    def start(self, machines: Sequence[MachineID]) -> None:
        """DRAINING → DOWN."""
        self._check(machines, DRAINING, "is not in DRAINING mode and cannot be brought down")
        self.down.update(machines)
        for machine in machines:
            self.statuses.pop(machine, None)

    def stop(self, machines: Sequence[MachineID]) -> None:
        """DOWN → UP: the machines leave the schedule, and windows left empty are dropped."""
        self._check(machines, DOWN, "is not in DOWN mode and cannot be brought up")
        gone = set(machines)
        self.down -= gone
        windows = []
        for window in self.windows:
            kept = tuple(m for m in window.machines if m not in gone)
            if kept:
                windows.append(Window(kept, window.unavailability))
        self.windows = windows

    def _check(self, machines: Sequence[MachineID], wanted: str, wrong_mode: str) -> None:
        error = machines_error(machines)
        if error:
            raise MaintenanceError(error)
        scheduled = self._scheduled()
        for machine in machines:
            if machine not in scheduled and machine not in self.down:
                raise MaintenanceError(f"Machine '{machine.debug_string()}' is not part of a maintenance schedule")
            if self.mode(machine) != wanted:
                raise MaintenanceError(f"Machine '{machine.debug_string()}' {wrong_mode}")

    def record_answer(self, machine: MachineID, framework_id: str, status: str, now: float | None = None) -> None:
        self.statuses.setdefault(machine, {})[framework_id] = InverseOfferStatus(
            status, framework_id, now or time.time()
        )

    # ------------------------------------------------------------------ documents

    def schedule_json(self) -> dict[str, Any]:
        """``/maintenance/schedule`` and GET_MAINTENANCE_SCHEDULE's ``schedule``: ``{}`` when there is none."""
        return {"windows": [w.to_json() for w in self.windows]} if self.windows else {}

    def status_json(self) -> dict[str, Any]:
        """``/maintenance/status`` (ClusterStatus): DRAINING machines with the frameworks' answers, and DOWN
        machines; UP machines are not listed."""
        draining = []
        for machine in self._scheduled():
            if machine in self.down:
                continue
            entry: dict[str, Any] = {"id": machine.to_json()}
            answers = [s.to_json() for s in self.statuses.get(machine, {}).values()]
            if answers:
                entry["statuses"] = answers
            draining.append(entry)
        out: dict[str, Any] = {}
        if draining:
            out["draining_machines"] = draining
        if self.down:
            out["down_machines"] = [m.to_json() for m in sorted(self.down, key=lambda m: m.key)]
        return out

    # ------------------------------------------------------------------ registry

    def to_record(self) -> dict[str, Any]:
        return {
            "windows": [w.to_json() for w in self.windows],
            "down": [m.to_json() for m in sorted(self.down, key=lambda m: m.key)],
        }

    @classmethod
    def from_record(cls, record: Any) -> Maintenance:
        if not isinstance(record, dict):
            return cls()
        windows = [
            Window(
                tuple(MachineID.from_json(m) for m in w.get("machine_ids") or []),
                Unavailability.from_json(w["unavailability"]),
            )
            for w in record.get("windows") or []
        ]
        return cls(windows, {MachineID.from_json(m) for m in record.get("down") or []})
