"""What apps and pods have in common, read the same way from either definition ("run specs" in Marathon's words).

Deployments, the launch queue, scaling, backoff and partition handling work on run specs; the two definitions keep
their own JSON shapes (an app's ``instances`` and ``upgradeStrategy``, a pod's ``scaling.instances`` and
``scheduling.upgrade``), so everything that does not care which it is asks here. A pod is told apart by its
``containers`` list, which no app has.
"""

from __future__ import annotations

from typing import Any

DEFAULT_UPGRADE = {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
DEFAULT_UNREACHABLE = {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
# What only changes how many instances run (or the bookkeeping of versions): everything else is a config change.
SCALE_FIELDS = ("instances", "version", "versionInfo")

Spec = dict[str, Any]


def is_pod(spec: Spec | None) -> bool:
    return bool(spec) and isinstance(spec.get("containers"), list)  # type: ignore[union-attr]


def instances(spec: Spec) -> int:
    if is_pod(spec):
        return int(spec["scaling"]["instances"])
    return int(spec["instances"])


def with_instances(spec: Spec, count: int) -> Spec:
    """A copy scaled to ``count`` instances."""
    if is_pod(spec):
        return {**spec, "scaling": {**spec["scaling"], "instances": count}}
    return {**spec, "instances": count}


def _scheduling(spec: Spec) -> dict[str, Any]:
    return spec.get("scheduling") or {}


def kill_selection(spec: Spec) -> str:
    if is_pod(spec):
        return str(_scheduling(spec).get("killSelection") or "YOUNGEST_FIRST")
    return str(spec.get("killSelection") or "YOUNGEST_FIRST")


def upgrade(spec: Spec) -> dict[str, float]:
    if is_pod(spec):
        return _scheduling(spec).get("upgrade") or dict(DEFAULT_UPGRADE)
    return spec.get("upgradeStrategy") or dict(DEFAULT_UPGRADE)


def unreachable(spec: Spec | None) -> Any:
    """``{inactiveAfterSeconds, expungeAfterSeconds}`` or ``"disabled"``."""
    if spec is None:
        return dict(DEFAULT_UNREACHABLE)
    value = _scheduling(spec).get("unreachableStrategy") if is_pod(spec) else spec.get("unreachableStrategy")
    return dict(DEFAULT_UNREACHABLE) if value is None else value


def backoff(spec: Spec) -> tuple[float, float, float]:
    """(first delay, factor, maximum) in seconds."""
    if is_pod(spec):
        policy = _scheduling(spec).get("backoff") or {}
        return (
            float(policy.get("backoff", 1)),
            float(policy.get("backoffFactor", 1.15)),
            float(policy.get("maxLaunchDelay", 300)),
        )
    return float(spec["backoffSeconds"]), float(spec["backoffFactor"]), float(spec["maxLaunchDelaySeconds"])


def constraints(spec: Spec) -> list[list[str]]:
    if is_pod(spec):
        return list((_scheduling(spec).get("placement") or {}).get("constraints") or [])
    return list(spec.get("constraints") or [])


def accepted_roles(spec: Spec) -> list[str] | None:
    if is_pod(spec):
        return (_scheduling(spec).get("placement") or {}).get("acceptedResourceRoles") or None
    return spec.get("acceptedResourceRoles") or None


def is_resident(spec: Spec) -> bool:
    if is_pod(spec):
        return any("persistent" in v for v in spec.get("volumes") or [])
    return any(v.get("persistent") for v in (spec.get("container") or {}).get("volumes") or [])


def config_of(spec: Spec) -> Spec:
    """The parts whose change needs new instances (everything but the instance count and version bookkeeping)."""
    config = {k: v for k, v in spec.items() if k not in SCALE_FIELDS}
    if is_pod(spec):
        config["scaling"] = {k: v for k, v in spec["scaling"].items() if k != "instances"}
    return config


def config_version(spec: Spec) -> str:
    return str(spec["versionInfo"]["lastConfigChangeAt"])
