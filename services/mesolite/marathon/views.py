"""The JSON (and text/plain) renderings of apps, tasks, groups, deployments and the queue.

Only keys that the strict marathon-python models accept appear (any other key makes its ``from_json`` raise), which
rules out later Marathon fields such as ``tty``, ``check`` or ``role`` on queue items.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from mesolite.marathon import appdef, pathid, pods
from mesolite.marathon.deployments import action_json
from mesolite.marathon.service import Marathon
from mesolite.marathon.state import Deployment, Task

EMBED_PREFIXES = ("apps.", "app.", "group.apps.")


def parse_embed(values: list[str]) -> set[str]:
    """``apps.tasks``, ``app.tasks`` and ``group.apps.tasks`` all mean "tasks"."""
    out: set[str] = set()
    for value in values:
        for item in value.split(","):
            for prefix in EMBED_PREFIXES:
                if item.startswith(prefix):
                    out.add(item[len(prefix) :])
                    break
    if "failures" in out:
        out.add("lastTaskFailure")
    return out


def app_definition(app: dict[str, Any]) -> dict[str, Any]:
    out = dict(app)
    out["ports"] = appdef.service_ports(app)
    out["uris"] = [f["uri"] for f in app.get("fetch") or []]
    return out


def task_json(m: Marathon, task: Task, app: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "appId": task.app_id,
        "healthCheckResults": m.health.task_results(task, app),
        "host": task.host,
        "id": task.id,
        "ipAddresses": task.ip_addresses,
        "ports": task.ports,
        "servicePorts": task.service_ports,
        "slaveId": task.agent_id,
        "stagedAt": task.staged_at,
        "startedAt": task.started_at,
        "state": task.state,
        "version": task.version,
        "localVolumes": [],
    }


def counts(m: Marathon, app: dict[str, Any], tasks: list[Task]) -> dict[str, int]:
    staged = running = healthy = unhealthy = 0
    has_checks = bool(app.get("healthChecks"))
    for task in tasks:
        if task.state in ("TASK_STAGING", "TASK_STARTING"):
            staged += 1
        elif task.running:
            running += 1
        if has_checks:
            verdict = m.health.healthy(task, app)
            if verdict is True:
                healthy += 1
            elif verdict is False:
                unhealthy += 1
    return {"tasksStaged": staged, "tasksRunning": running, "tasksHealthy": healthy, "tasksUnhealthy": unhealthy}


def task_stats(m: Marathon, app: dict[str, Any], tasks: list[Task]) -> dict[str, Any]:
    def stats(selected: list[Task]) -> dict[str, Any] | None:
        if not selected:
            return None
        now = time.time()
        lifetimes = [now - t.running_time for t in selected if t.running_time]
        return {
            "stats": {
                "counts": {
                    "staged": sum(1 for t in selected if t.state in ("TASK_STAGING", "TASK_STARTING")),
                    "running": sum(1 for t in selected if t.running),
                    "healthy": sum(1 for t in selected if m.health.healthy(t, app) is True and app.get("healthChecks")),
                    "unhealthy": sum(1 for t in selected if m.health.healthy(t, app) is False),
                },
                "lifeTime": {
                    "averageSeconds": statistics.fmean(lifetimes) if lifetimes else 0.0,
                    "medianSeconds": statistics.median(lifetimes) if lifetimes else 0.0,
                },
            }
        }

    config = app["versionInfo"]["lastConfigChangeAt"]
    scaling = app["versionInfo"]["lastScalingAt"]
    out: dict[str, Any] = {}
    for key, selected in (
        ("startedAfterLastScaling", [t for t in tasks if t.staged_at >= scaling]),
        ("withLatestConfig", [t for t in tasks if t.config_version == config]),
        ("withOutdatedConfig", [t for t in tasks if t.config_version != config]),
        ("totalSummary", tasks),
    ):
        value = stats(selected)
        if value is not None:
            out[key] = value
    return out


def app_json(m: Marathon, app: dict[str, Any], embed: set[str], always: bool = True) -> dict[str, Any]:
    """An AppInfo; counts and deployments are always there (as Marathon's index and show add them)."""
    out = app_definition(app)
    tasks = m.state.app_tasks(app["id"])
    if always or "counts" in embed:
        out.update(counts(m, app, tasks))
    if always or "deployments" in embed or "tasks" in embed:
        out["deployments"] = [{"id": d.id} for d in m.state.deployments_of(app["id"])]
    if "tasks" in embed:
        out["tasks"] = [task_json(m, t, app) for t in tasks]
    if "lastTaskFailure" in embed and app["id"] in m.state.last_failures:
        out["lastTaskFailure"] = m.state.last_failures[app["id"]]
    if "taskStats" in embed:
        out["taskStats"] = task_stats(m, app, tasks)
    if "readiness" in embed:
        out["readinessCheckResults"] = [m.health.readiness[t.id] for t in tasks if t.id in m.health.readiness]
    return out


def group_json(m: Marathon, group_id: str, embed: set[str], group_embed: set[str]) -> dict[str, Any]:
    group = m.state.groups.get(group_id) or {"id": group_id, "dependencies": [], "version": None}
    out: dict[str, Any] = {
        "id": group_id,
        "dependencies": group.get("dependencies") or [],
        "version": group.get("version"),
        "pods": [pods.pod_json(m.state.pods[p]) for p in sorted(m.state.pods) if pathid.parent(p) == group_id],
    }
    if "apps" in group_embed:
        app_ids = sorted(a for a, g in m.state.app_group.items() if g == group_id and a in m.state.apps)
        out["apps"] = [
            app_json(m, m.state.apps[a], embed, always=False) if embed else app_definition(m.state.apps[a])
            for a in app_ids
        ]
    else:
        out["apps"] = []
    if "groups" in group_embed:
        children = sorted(g for g in m.state.groups if g != group_id and g != "/" and pathid.parent(g) == group_id)
        out["groups"] = [group_json(m, g, embed, group_embed) for g in children]
    else:
        out["groups"] = []
    return out


def group_snapshot_json(group_id: str, snapshot: dict[str, Any], version: str) -> dict[str, Any]:
    """A stored group version (``groups.snapshot``) in the shape of ``GET /v2/groups/{id}``."""
    groups = snapshot["groups"]

    def render(gid: str) -> dict[str, Any]:
        group = groups.get(gid) or {"dependencies": []}
        return {
            "id": gid,
            "apps": [
                app_definition(a)
                for a_id, a in sorted(snapshot["apps"].items())
                if snapshot["app_group"].get(a_id) == gid
            ],
            "groups": [render(g) for g in sorted(groups) if g != gid and pathid.parent(g) == gid],
            "dependencies": group.get("dependencies") or [],
            "version": version,
            "pods": [
                pods.pod_json(p)
                for p_id, p in sorted((snapshot.get("pods") or {}).items())
                if pathid.parent(p_id) == gid
            ],
        }

    return render(group_id)


def deployment_json(m: Marathon, deployment: Deployment) -> dict[str, Any]:
    current = deployment.current_actions()
    actions = []
    for action in current:
        entry = action_json(action)
        entry["readinessCheckResults"] = [
            m.health.readiness[t.id] for t in m.state.app_tasks(action["app"]) if t.id in m.health.readiness
        ]
        actions.append(entry)
    return {
        "id": deployment.id,
        "version": deployment.version,
        "affectedApps": [a for a in deployment.affected_apps if a not in deployment.affected_pods],
        "affectedPods": list(deployment.affected_pods),
        "steps": [{"actions": [action_json(a) for a in step]} for step in deployment.steps],
        "currentActions": actions,
        "currentStep": min(deployment.current_step + 1, max(len(deployment.steps), 1)),
        "totalSteps": len(deployment.steps),
    }


def waiting_reason(m: Marathon, app_id: str) -> str | None:
    """Why an app in a deployment is not progressing, in words (``/v2/deployments?details=true``)."""
    demand = m.scheduler.demand.get(app_id, 0)
    if not demand:
        return None
    parts = [f"{demand} instance(s) waiting to be launched"]
    backoff = m.scheduler.delay_of(app_id)
    if backoff is not None and backoff.time_left(time.time()) > 0:
        parts.append(f"launch delayed {backoff.time_left(time.time()):.0f}s by backoff after failures")
    stats = m.scheduler.offer_stats.get(app_id)
    if stats is not None and stats.reasons:
        reasons = ", ".join(f"{r} ({n})" for r, n in stats.reasons.most_common())
        parts.append(f"offers declined: {reasons}")
    elif stats is None or not stats.processed:
        parts.append("no offers received yet")
    return "; ".join(parts)


def queue_json(m: Marathon, embed_offers: bool) -> dict[str, Any]:
    now = time.time()
    items = []
    for app_id, count in sorted(m.scheduler.demand.items()):
        app = m.state.apps.get(app_id)
        if app is None or count <= 0:
            continue
        backoff = m.scheduler.delay_of(app_id)
        left = backoff.time_left(now) if backoff else 0.0
        stats = m.scheduler.offer_stats.get(app_id)
        item: dict[str, Any] = {
            "app": app_definition(app),
            "count": count,
            "delay": {"timeLeftSeconds": int(round(left)), "overdue": left <= 0},
            "since": m.scheduler.queue_since.get(app_id),
            "processedOffersSummary": stats.json() if stats else _empty_summary(),
        }
        if embed_offers:
            item["lastUnusedOffers"] = []
        items.append(item)
    return {"queue": items}


def _empty_summary() -> dict[str, Any]:
    from mesolite.marathon.scheduler import OfferStats

    return OfferStats().json()


def tasks_text(m: Marathon, apps: list[dict[str, Any]]) -> str:
    """``app<TAB>servicePort<TAB>host:port<TAB>...`` per app and service port: what haproxy-marathon-bridge reads."""
    lines: list[str] = []
    for app in apps:
        running = [t for t in m.state.app_tasks(app["id"]) if t.running]
        safe_id = pathid.safe(app["id"])
        service = appdef.service_ports(app)
        if not service:
            lines.append(f"{safe_id}\t \t" + "".join(f"{t.host}\t" for t in running))
            continue
        for index, port in enumerate(service):
            hosts = "".join(f"{t.host}:{t.ports[index] if index < len(t.ports) else 0}\t" for t in running)
            lines.append(f"{safe_id}\t{port}\t{hosts}")
    return "".join(line + "\n" for line in lines)
