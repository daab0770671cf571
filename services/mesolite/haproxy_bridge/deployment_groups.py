"""Blue/green deployment groups, the bridge's half of ``mesolite zdd`` (marathon-lb's ``get_apps`` merge).

Apps labelled with the same ``HAPROXY_DEPLOYMENT_GROUP`` are one routing entry, named after the group
(``/shop`` port 10000 → backend ``shop_10000``), bound on the port of the oldest member (``HAPROXY_0_PORT``, which
zdd sets to the original service port): both colours serve behind the same frontend while the new one takes over.
The newest member by ``HAPROXY_DEPLOYMENT_STARTED_AT`` is the new version; the others are old.

Old tasks are drained as new ones turn healthy: of the old tasks, sorted by id (so the same ones every time), the
first ``min(old tasks, healthy new tasks, healthy new + old instances - HAPROXY_DEPLOYMENT_TARGET_INSTANCES)`` are
written ``disabled`` (MAINT on the stats page): HAProxy sends them no new request and lets the ones in flight end.
zdd watches for MAINT servers with no session left and only then kills their tasks, so no request meets a task being
killed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mesolite.haproxy_bridge.errors import LabelError

GROUP = "HAPROXY_DEPLOYMENT_GROUP"
STARTED_AT = "HAPROXY_DEPLOYMENT_STARTED_AT"
TARGET = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
NEW_INSTANCES = "HAPROXY_DEPLOYMENT_NEW_INSTANCES"
PREFILTERED = "_mesolite_prefiltered"  # tasks already judged routable against their own app's health checks


def group_id(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise LabelError(f"label {GROUP}: '{value}' is not an app id")
    return value if value.startswith("/") else "/" + value


def started_at(labels: dict[str, Any]) -> datetime:
    """zdd writes ``datetime.now().isoformat()``; an app deployed without zdd sorts first (oldest)."""
    value = labels.get(STARTED_AT)
    if value is None:
        return datetime.min
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise LabelError(f"label {STARTED_AT}: '{value}' is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=None)


def _count(labels: dict[str, Any], key: str) -> int | None:
    value = labels.get(key)
    if value is None:
        return None
    try:
        count = int(str(value).strip())
    except ValueError:
        raise LabelError(f"label {key}: '{value}' is not a number of instances") from None
    if count < 0:
        raise LabelError(f"label {key}: '{value}' is negative")
    return count


def merge_deployment_groups(
    apps: list[dict[str, Any]], routable: Callable[[dict[str, Any], dict[str, Any]], bool]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Apps with each deployment group merged into one app named after the group; problems by app id."""
    out: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    groups: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for app in apps:
        labels = app.get("labels") or {}
        if GROUP not in labels:
            out.append(app)
            continue
        try:
            group = group_id(str(labels[GROUP]))
            when = started_at(labels)
            _count(labels, TARGET)
            _count(labels, NEW_INSTANCES)
        except LabelError as exc:
            problems[str(app.get("id", ""))] = str(exc)
            continue
        groups.setdefault(group, []).append((when, app))
    for group, members in sorted(groups.items()):
        members.sort(key=lambda m: (m[0], str(m[1].get("id", ""))))
        out.append(_merge(group, [app for _when, app in members], routable))
    return out, problems


def _merge(
    group: str, members: list[dict[str, Any]], routable: Callable[[dict[str, Any], dict[str, Any]], bool]
) -> dict[str, Any]:
    new, olds = members[-1], members[:-1]
    if len(olds) == 1 and (_count(new.get("labels") or {}, NEW_INSTANCES) or 0) != 0:
        # Hybrid deployment (zdd --new-instances): the one scaled last is the one taking over (marathon-lb's rule).
        if _scaled_at(olds[0]) > _scaled_at(new):
            new, olds = olds[0], [new]
    merged = copy.deepcopy(olds[0] if olds else new)
    merged["id"] = group
    merged[PREFILTERED] = True
    merged["deploymentGroupApps"] = [str(m.get("id", "")) for m in members]
    new_tasks = [dict(t) for t in new.get("tasks") or [] if routable(t, new)]
    old_tasks = sorted(
        (dict(t) for app in olds for t in app.get("tasks") or [] if routable(t, app)), key=lambda t: str(t.get("id"))
    )
    if olds:
        target = _count(new.get("labels") or {}, TARGET)
        if target is None:
            target = int(new.get("instances") or 0)
        old_instances = sum(int(app.get("instances") or 0) for app in olds)
        drainable = max(0, len(new_tasks) + old_instances - target)
        for task in old_tasks[: min(len(old_tasks), len(new_tasks), drainable)]:
            task["draining"] = True
    merged["tasks"] = old_tasks + new_tasks
    return merged


def _scaled_at(app: dict[str, Any]) -> str:
    return str((app.get("versionInfo") or {}).get("lastScalingAt") or "")
