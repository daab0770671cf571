"""Quota: per-role guarantees and limits on scalar resources (Mesos' ``src/master/quota.cpp`` and
``quota_handler.cpp``), as pure values and checks.

A role's quota is ``guarantees`` (resources held back for it, served first) and ``limits`` (what it may consume at
most); a role without either has the default quota (no guarantee, no limit) and is not listed. Consumption is what
the role holds reserved plus the unreserved resources allocated or offered to it. The allocator enforces both
(``allocator.py``); this module validates what operators ask, with Mesos' messages, and renders ``QuotaStatus``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesolite.core.resources import ResourceError, format_number, validate_role

EXABYTE_IN_MB = 1024.0**4
TRILLION = 1e12


class QuotaError(ValueError):
    """A quota request Mesos refuses; ``status`` is the HTTP code it answers with (400 or 409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class QuotaConfig:
    role: str
    guarantees: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)

    @property
    def is_default(self) -> bool:
        return not self.guarantees and not self.limits

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role}
        if self.guarantees:
            out["guarantees"] = {name: {"value": value} for name, value in sorted(self.guarantees.items())}
        if self.limits:
            out["limits"] = {name: {"value": value} for name, value in sorted(self.limits.items())}
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> QuotaConfig:
        def scalars(key: str) -> dict[str, float]:
            return {str(n): float(v["value"]) for n, v in (obj.get(key) or {}).items()}

        return cls(str(obj["role"]), scalars("guarantees"), scalars("limits"))


def quantities(values: Mapping[str, float]) -> str:
    """Mesos' ``stringify`` of resource quantities: ``cpus:1; mem:2048``."""
    return "; ".join(f"{name}:{format_number(float(value))}" for name, value in sorted(values.items())) or "{}"


def limits_contain(limits: Mapping[str, float], wanted: Mapping[str, float]) -> bool:
    """``ResourceLimits::contains``: a name without a limit is unlimited."""
    return all(amount <= limits[name] + 1e-9 for name, amount in wanted.items() if name in limits and amount > 0)


def quantities_contain(have: Mapping[str, float], wanted: Mapping[str, float]) -> bool:
    return all(have.get(name, 0.0) + 1e-9 >= amount for name, amount in wanted.items() if amount > 0)


def config_error(config: QuotaConfig) -> str | None:
    """Mesos' ``quota::validate(QuotaConfig)`` (the caller prefixes ``Invalid QuotaConfig: ``)."""
    try:
        validate_role(config.role)
    except ResourceError as exc:
        return f"Invalid 'QuotaConfig.role': {exc}"
    if config.role == "*":
        return "Invalid 'QuotaConfig.role': setting quota for the default '*' role is not supported"
    for key, values in (("guarantees", config.guarantees), ("limits", config.limits)):
        for name, value in sorted(values.items()):
            bound, words = (EXABYTE_IN_MB, "1 exabyte") if name in ("mem", "disk") else (TRILLION, "1 trillion")
            if value > bound:
                shown = format_number(float(value))
                return (
                    f"Invalid 'QuotaConfig.{key}': {{'{name}': {shown}}} is invalid: values greater "
                    f"than {words} ({format_number(bound)}) are not supported"
                )
    for key, values in (("guarantee", config.guarantees), ("limit", config.limits)):
        for name, value in sorted(values.items()):
            if value < 0 or value != value:
                shown = format_number(float(value))
                return f"Invalid {key} configuration {{'{name}': {shown}}}: Negative values not supported"
    if not limits_contain(config.limits, config.guarantees):
        return (
            f"'QuotaConfig.guarantees' {quantities(config.guarantees)} is not contained within the "
            f"'QuotaConfig.limits' {quantities(config.limits)}"
        )
    return None


def check_update(
    configs: list[QuotaConfig],
    force: bool,
    quotas: Mapping[str, QuotaConfig],
    consumed: Mapping[str, Mapping[str, float]],
    capacity: Mapping[str, float],
) -> None:
    """UPDATE_QUOTA's checks in Mesos' order; raises ``QuotaError``. ``consumed`` is each role's current
    consumption, ``capacity`` the registered agents' non-revocable scalars."""
    for config in configs:
        if "/" in config.role:
            raise QuotaError(f"Updating quota on nested role '{config.role}' is not supported yet")
        error = config_error(config)
        if error:
            raise QuotaError(f"Invalid QuotaConfig: {error}")
    for config in configs:
        used = consumed.get(config.role, {})
        if not limits_contain(config.limits, used) and not force:
            raise QuotaError(
                f"Invalid QuotaConfig: Role '{config.role}' is already consuming '{quantities(used)}'; this is more "
                f"than the requested limits '{quantities(config.limits)}' (use 'force' flag to bypass this check)"
            )
    merged = {**quotas, **{c.role: c for c in configs}}
    total: dict[str, float] = {}
    for config in merged.values():
        for name, value in config.guarantees.items():
            total[name] = total.get(name, 0.0) + value
    if not quantities_contain(capacity, total) and not force:
        raise QuotaError(
            f"Invalid QuotaConfig: total quota guarantees '{quantities(total)}' exceed cluster capacity "
            f"'{quantities(capacity)}' (use 'force' flag to bypass this check)"
        )


def from_request(request: Mapping[str, Any]) -> tuple[QuotaConfig, bool]:
    """A deprecated ``QuotaRequest`` (v0 ``POST /quota``, SET_QUOTA): the guarantee is also the limit."""
    role = request.get("role")
    if not isinstance(role, str) or not role:
        raise QuotaError("Failed to create 'QuotaInfo' from set quota request: 'QuotaRequest.role' must be set")
    guarantee = request.get("guarantee") or []
    if not guarantee:
        raise QuotaError("Failed to validate set quota request: QuotaInfo with empty 'guarantee'")
    amounts: dict[str, float] = {}
    for resource in guarantee:
        if not isinstance(resource, dict):
            raise QuotaError("Failed to validate set quota request: a guarantee must be a Resource object")
        if resource.get("reservations") or resource.get("reservation") or resource.get("role", "*") != "*":
            raise QuotaError("Failed to validate set quota request: QuotaInfo must not contain any ReservationInfo")
        if "disk" in resource:
            raise QuotaError("Failed to validate set quota request: QuotaInfo must not contain DiskInfo")
        if "revocable" in resource:
            raise QuotaError("Failed to validate set quota request: QuotaInfo must not contain RevocableInfo")
        if resource.get("type") != "SCALAR" or not isinstance(resource.get("scalar"), dict):
            raise QuotaError("Failed to validate set quota request: QuotaInfo must not include non-scalar resources")
        name = str(resource.get("name", ""))
        if name in amounts:
            raise QuotaError(
                f"Failed to validate set quota request: QuotaInfo contains duplicate resource name '{name}'"
            )
        try:
            amounts[name] = float(resource["scalar"]["value"])
        except (KeyError, TypeError, ValueError):
            raise QuotaError("Failed to validate set quota request: a scalar needs a numeric 'value'") from None
    config = QuotaConfig(role, amounts, dict(amounts))
    error = config_error(config)
    if error:
        raise QuotaError(f"Failed to validate set quota request: {error}")
    force = request.get("force", False)
    return config, force is True or force == "true"


def check_set(
    config: QuotaConfig, force: bool, quotas: Mapping[str, QuotaConfig], capacity: Mapping[str, float]
) -> None:
    """The v0 ``POST /quota`` checks after parsing: no quota yet, not nested, and no overcommit (409)."""
    if config.role in quotas:
        raise QuotaError(
            f"Failed to validate set quota request: Cannot set quota for role '{config.role}' which already has quota"
        )
    if "/" in config.role:
        raise QuotaError(f"Setting quota on nested role '{config.role}' is not supported yet")
    if force:
        return
    total: dict[str, float] = dict(config.guarantees)
    for other in quotas.values():
        for name, value in other.guarantees.items():
            total[name] = total.get(name, 0.0) + value
    if not quantities_contain(capacity, total):
        raise QuotaError(
            "Quota guarantees overcommit the cluster (use 'force' to bypass this check): "
            f"Total quota guarantees '{quantities(total)}' exceed cluster capacity '{quantities(capacity)}'",
            409,
        )


def status_json(quotas: Mapping[str, QuotaConfig]) -> dict[str, Any]:
    """``QuotaStatus``: the legacy ``infos`` (guarantees as Resources) beside the ``configs``."""
    infos = []
    configs = []
    for role in sorted(quotas):
        config = quotas[role]
        info: dict[str, Any] = {"role": role}
        if config.guarantees:
            info["guarantee"] = [
                {"name": n, "type": "SCALAR", "scalar": {"value": v}} for n, v in sorted(config.guarantees.items())
            ]
        infos.append(info)
        configs.append(config.to_json())
    out: dict[str, Any] = {}
    if infos:
        out["infos"] = infos
        out["configs"] = configs
    return out
