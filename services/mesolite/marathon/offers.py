"""Offer matching: carve app instances out of one resource offer.

An offer is consumed instance by instance: scalars (cpus, mem, disk, gpus) and host ports are taken from the offer's
resources in the roles the app accepts, keeping each piece's role, reservation and allocation info so the master
recognises what is being used. Every refusal is named with Marathon's reason strings (``InsufficientCpus``,
``UnfulfilledConstraint``, ...) for ``/v2/queue``'s ``processedOffersSummary``, which is how an operator finds out
why a deployment is not progressing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from mesolite.marathon import appdef

SCALARS = (
    ("cpus", "InsufficientCpus"),
    ("mem", "InsufficientMemory"),
    ("disk", "InsufficientDisk"),
    ("gpus", "InsufficientGpus"),
)


@dataclass
class _Piece:
    """A part of the offer in one role: a scalar amount or a list of port ranges."""

    template: dict[str, Any]
    amount: float = 0.0
    ranges: list[list[int]] = field(default_factory=list)


class OfferResources:
    def __init__(self, offer: dict[str, Any]) -> None:
        self.scalars: dict[str, list[_Piece]] = {}
        self.ports: list[_Piece] = []
        for resource in offer.get("resources") or []:
            template = {k: v for k, v in resource.items() if k not in ("scalar", "ranges", "set")}
            name, rtype = resource.get("name"), resource.get("type")
            if rtype == "SCALAR":
                value = float((resource.get("scalar") or {}).get("value", 0.0))
                self.scalars.setdefault(name, []).append(_Piece(template, amount=value))
            elif rtype == "RANGES" and name == "ports":
                ranges = [[int(r["begin"]), int(r["end"])] for r in (resource.get("ranges") or {}).get("range") or []]
                self.ports.append(_Piece(template, ranges=ranges))

    @staticmethod
    def _role(piece: _Piece) -> str:
        reservations = piece.template.get("reservations") or []
        if reservations:
            return str(reservations[-1].get("role", "*"))
        return str(piece.template.get("role", "*"))

    def available(self, name: str, roles: set[str] | None) -> float:
        return sum(p.amount for p in self.scalars.get(name, []) if roles is None or self._role(p) in roles)

    def snapshot(self) -> OfferResources:
        return copy.deepcopy(self)

    def take_scalar(self, name: str, amount: float, roles: set[str] | None) -> list[dict[str, Any]]:
        taken: list[dict[str, Any]] = []
        remaining = round(amount, 3)
        for piece in self.scalars.get(name, []):
            if remaining <= 0:
                break
            if roles is not None and self._role(piece) not in roles or piece.amount <= 0:
                continue
            use = round(min(piece.amount, remaining), 3)
            piece.amount = round(piece.amount - use, 3)
            remaining = round(remaining - use, 3)
            taken.append({**piece.template, "scalar": {"value": use}})
        return taken

    def _ports_in_roles(self, roles: set[str] | None) -> list[_Piece]:
        return [p for p in self.ports if roles is None or self._role(p) in roles]

    def take_ports(
        self, wanted: list[int | None], roles: set[str] | None
    ) -> tuple[list[int], list[dict[str, Any]]] | None:
        """Assign host ports: a number means exactly that port, None means any free one (the lowest). Fixed
        ports are taken first so that "any" never steals one; None when impossible (the caller's copy is then
        discarded)."""
        pieces = self._ports_in_roles(roles)
        chosen: list[tuple[_Piece, int] | None] = [None] * len(wanted)
        for i, port in enumerate(wanted):
            if port is None:
                continue
            piece = next((p for p in pieces if any(b <= port <= e for b, e in p.ranges)), None)
            if piece is None:
                return None
            _remove_port(piece, port)
            chosen[i] = (piece, port)
        for i, port in enumerate(wanted):
            if port is not None:
                continue
            piece = next((p for p in pieces if p.ranges), None)
            if piece is None:
                return None
            value = piece.ranges[0][0]
            _remove_port(piece, value)
            chosen[i] = (piece, value)
        placed = [pair for pair in chosen if pair is not None]
        result = [value for _, value in placed]
        resources = [
            {**piece.template, "ranges": {"range": [{"begin": value, "end": value}]}} for piece, value in placed
        ]
        return result, resources


def _remove_port(piece: _Piece, port: int) -> None:
    ranges: list[list[int]] = []
    for begin, end in piece.ranges:
        if begin <= port <= end:
            if begin < port:
                ranges.append([begin, port - 1])
            if port < end:
                ranges.append([port + 1, end])
        else:
            ranges.append([begin, end])
    piece.ranges = ranges


def requested_host_ports(app: dict[str, Any]) -> list[int | None]:
    """One entry per host port the task needs: a fixed port number, or None for "any"."""
    mappings = appdef.port_mappings(app)
    network = appdef.network(app)
    if mappings:
        if network == "USER":
            return [m["hostPort"] for m in mappings if m["hostPort"]]
        return [m["hostPort"] or None for m in mappings]
    if network in ("BRIDGE", "USER"):
        return []
    if app.get("requirePorts"):
        return [d["port"] or None for d in app.get("portDefinitions") or []]
    return [None for _ in app.get("portDefinitions") or []]


def fit(app: dict[str, Any], resources: OfferResources) -> tuple[list[int], list[dict[str, Any]]] | str:
    """Take one app instance's resources out of ``resources`` (all or nothing): host ports and v1 resources, or the
    Marathon reason it does not fit."""
    accepted = app.get("acceptedResourceRoles")
    got = fit_parts(
        [{name: float(app.get(name) or 0) for name, _ in SCALARS}], requested_host_ports(app), accepted, resources
    )
    if isinstance(got, str):
        return got
    host_ports, (taken,), port_resources = got
    return host_ports, taken + port_resources


def fit_pod(
    pod: dict[str, Any], resources: OfferResources
) -> tuple[list[int], list[dict[str, Any]], list[list[dict[str, Any]]]] | str:
    """One pod instance: (host ports, the executor's resources with the ports, each container's resources), or the
    reason it does not fit. The executor's share and every container's are taken separately, so each TaskInfo and
    the ExecutorInfo name exactly what they use, as Marathon's ``TaskGroupBuilder`` bin-packs them."""
    from mesolite.marathon import pods, runspec

    parts = [{k: float(v) for k, v in pod["executorResources"].items()}]
    parts += [{k: float(v) for k, v in c["resources"].items()} for c in pod["containers"]]
    got = fit_parts(parts, pods.requested_host_ports(pod), runspec.accepted_roles(pod), resources)
    if isinstance(got, str):
        return got
    host_ports, taken, port_resources = got
    return host_ports, taken[0] + port_resources, taken[1:]


def fit_parts(
    parts: list[dict[str, float]],
    wanted_ports: list[int | None],
    accepted_roles: list[str] | None,
    resources: OfferResources,
) -> tuple[list[int], list[list[dict[str, Any]]], list[dict[str, Any]]] | str:
    """Take the scalars of every part and the host ports, all or nothing: (host ports, resources per part, port
    resources), or the Marathon reason the offer falls short."""
    roles = set(accepted_roles) if accepted_roles else None
    for name, reason in SCALARS:
        needed = sum(part.get(name, 0.0) for part in parts)
        if needed > 0 and resources.available(name, roles) + 1e-9 < needed:
            return reason
    trial = resources.snapshot()
    taken: list[list[dict[str, Any]]] = []
    for part in parts:
        mine: list[dict[str, Any]] = []
        for name, _ in SCALARS:
            if part.get(name, 0.0) > 0:
                mine.extend(trial.take_scalar(name, part[name], roles))
        taken.append(mine)
    ports = trial.take_ports(wanted_ports, roles)
    if ports is None:
        return "InsufficientPorts"
    host_ports, port_resources = ports
    resources.scalars, resources.ports = trial.scalars, trial.ports
    return host_ports, taken, port_resources
