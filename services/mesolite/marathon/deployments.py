"""Deployment plans and how their steps are carried out.

A plan (Marathon's ``DeploymentPlan.apply``) turns "the apps before" and "the apps after" into steps run one after
another: stop removed apps, start new ones, then scale or restart changed apps layer by layer along the dependency
graph (apps that depend on nothing first), so that a dependency is running and healthy before what needs it starts.

Steps are carried out level-triggered: every tick recomputes, from the tasks that exist now, what each action still
has to kill and how many instances it still needs launched. Nothing is remembered but a few numbers per action, so a
restarted Marathon resumes a persisted deployment exactly where the tasks say it is.

A rolling restart follows Marathon's ``TaskReplaceActor``: with ``n`` instances, keep at least
``ceil(n × minimumHealthCapacity)`` healthy and never run more than ``floor(n × (1 + maximumOverCapacity))``; kill an
old task only while the healthy count stays at or above the minimum (unhealthy old ones first), start new ones while
under the maximum, and count a new task only once it is running, healthy and ready.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mesolite.core.protocol import is_terminal
from mesolite.marathon import appdef, pathid
from mesolite.marathon.appdef import Invalid
from mesolite.marathon.state import Deployment, State, Task

START, SCALE, RESTART, STOP = "StartApplication", "ScaleApplication", "RestartApplication", "StopApplication"


# ---------------------------------------------------------------------------------------------- dependencies


def dependencies_of(
    app_id: str,
    apps: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]],
    app_group: dict[str, str],
) -> set[str]:
    """The apps ``app_id`` depends on: its own dependencies and those of every group it is declared in (group
    dependencies are inherited by everything below), each resolved to an app or to all apps under a group."""
    declared: list[str] = list(apps[app_id].get("dependencies") or [])
    group = app_group.get(app_id, pathid.parent(app_id))
    while True:
        declared.extend((groups.get(group) or {}).get("dependencies") or [])
        if group == "/":
            break
        group = pathid.parent(group)
    resolved: set[str] = set()
    for dep in declared:
        if dep in apps:
            resolved.add(dep)
        else:
            resolved.update(a for a, g in app_group.items() if a in apps and (g == dep or pathid.is_ancestor(dep, g)))
    resolved.discard(app_id)
    return resolved


def depths(
    apps: dict[str, dict[str, Any]], groups: dict[str, dict[str, Any]], app_group: dict[str, str]
) -> dict[str, int]:
    """Length of the longest dependency path from each app; a cycle is Marathon's 422."""
    graph = {a: dependencies_of(a, apps, groups, app_group) for a in apps}
    result: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(node: str) -> int:
        if node in result:
            return result[node]
        if node in visiting:
            raise Invalid([("/", "Dependency graph has cyclic dependencies.")])
        visiting.add(node)
        value = 1 + max((depth(d) for d in graph[node]), default=-1)
        visiting.discard(node)
        result[node] = value
        return value

    for node in graph:
        depth(node)
    return result


# ---------------------------------------------------------------------------------------------- plans


def build_steps(
    original: dict[str, dict[str, Any]],
    target: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]],
    app_group: dict[str, str],
    restart: set[str] | None = None,
    kills: dict[str, list[str]] | None = None,
) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """(steps, affected app ids) turning ``original`` into ``target`` (both: app id → definition)."""
    restart = restart or set()
    kills = kills or {}
    stops = [a for a in original if a not in target]
    starts = [a for a in target if a not in original]
    changed: dict[str, dict[str, Any]] = {}
    for app_id, app in target.items():
        old = original.get(app_id)
        if old is None:
            changed[app_id] = {"action": SCALE, "app": app_id, "instances": app["instances"], "kill": []}
        elif app_id in restart or appdef.config_of(old) != appdef.config_of(app):
            changed[app_id] = {"action": RESTART, "app": app_id}
        elif old["instances"] != app["instances"] or kills.get(app_id):
            changed[app_id] = {
                "action": SCALE,
                "app": app_id,
                "instances": app["instances"],
                "kill": list(kills.get(app_id) or []),
            }
    steps: list[list[dict[str, Any]]] = []
    if stops:
        steps.append([{"action": STOP, "app": a} for a in sorted(stops)])
    if starts:
        steps.append([{"action": START, "app": a} for a in sorted(starts)])
    if changed:
        layer_of = depths(target, groups, app_group)
        for layer in sorted({layer_of[a] for a in changed}):
            steps.append([changed[a] for a in sorted(changed) if layer_of[a] == layer])
    affected = sorted(set(stops) | set(starts) | set(changed))
    return steps, affected


def action_json(action: dict[str, Any]) -> dict[str, Any]:
    return {"action": action["action"], "app": action["app"]}


# ---------------------------------------------------------------------------------------------- execution


def kill_order(tasks: list[Task], selection: str, healthy: Callable[[Task], bool]) -> list[Task]:
    """Which tasks die first on a scale-down: not yet running, then unhealthy, then by age per killSelection."""
    youngest_first = selection != "OLDEST_FIRST"
    return sorted(
        tasks,
        key=lambda t: (t.running, healthy(t), -t.staged_time if youngest_first else t.staged_time),
    )


class Runner:
    """Carries out one deployment step per tick; callbacks keep it free of scheduler and health-check details."""

    def __init__(
        self,
        state: State,
        kill: Callable[[Task, str], None],
        healthy: Callable[[Task, dict[str, Any]], bool],
    ) -> None:
        self.state = state
        self.kill = kill
        self.healthy = healthy

    def good(self, task: Task, app: dict[str, Any]) -> bool:
        """Counts as a replacement: running, healthy, and ready when the app has a readiness check."""
        return task.running and self.healthy(task, app) and (not app.get("readinessChecks") or task.ready)

    def advance(self, deployment: Deployment) -> dict[str, int]:
        """Work on the current step; returns launches still needed per app. Step completion is left to the
        caller (``step_done``) so it can emit its events."""
        demand: dict[str, int] = {}
        for action in deployment.current_actions():
            needed = self._run(deployment, action)
            if needed:
                demand[action["app"]] = demand.get(action["app"], 0) + needed
        return demand

    def step_done(self, deployment: Deployment) -> bool:
        return all(self._done(deployment, action) for action in deployment.current_actions())

    # -------------------------------------------------------------- per action

    def _runtime(self, deployment: Deployment, action: dict[str, Any]) -> dict[str, Any]:
        return deployment.runtime.setdefault(f"{deployment.current_step}:{action['app']}", {})

    def _run(self, deployment: Deployment, action: dict[str, Any]) -> int:
        kind = action["action"]
        app = self.state.apps.get(action["app"])
        if kind == STOP or (app is None and kind != START):
            for task in self.state.app_tasks(action["app"]):
                if task.active:
                    self.kill(task, "deployment: stop")
            return 0
        if kind == START or app is None:
            return 0
        if kind == SCALE:
            return self._scale(deployment, action, app)
        return self._restart(deployment, action, app)

    def _scale(self, deployment: Deployment, action: dict[str, Any], app: dict[str, Any]) -> int:
        runtime = self._runtime(deployment, action)
        if not runtime.get("started"):
            for task_id in action.get("kill") or []:
                task = self.state.tasks.get(task_id)
                if task is not None and task.active:
                    self.kill(task, "deployment: scale (sentenced)")
            runtime["started"] = True
            self.state.save_deployment(deployment)
        active = [t for t in self.state.app_tasks(app["id"]) if t.active]
        wanted = int(action.get("instances", app["instances"]))
        if len(active) > wanted:
            ordered = kill_order(active, app.get("killSelection", "YOUNGEST_FIRST"), lambda t: self.healthy(t, app))
            for task in ordered[: len(active) - wanted]:
                self.kill(task, "deployment: scale down")
            return 0
        return wanted - len(active)

    def _restart_bounds(self, runtime: dict[str, Any], app: dict[str, Any], tasks: list[Task]) -> tuple[int, int]:
        if "minHealthy" not in runtime:
            n = int(app["instances"])
            strategy = app.get("upgradeStrategy") or appdef.DEFAULT_UPGRADE
            min_healthy = math.ceil(n * float(strategy["minimumHealthCapacity"]) - 1e-9)
            max_capacity = math.floor(n * (1 + float(strategy["maximumOverCapacity"])) + 1e-9)
            healthy_now = sum(1 for t in tasks if t.active and t.running and self.healthy(t, app))
            if min_healthy == max_capacity and max_capacity <= healthy_now:
                if appdef.is_resident(app):
                    min_healthy -= 1
                else:
                    max_capacity += 1
            runtime["minHealthy"], runtime["maxCapacity"] = min_healthy, max_capacity
        return int(runtime["minHealthy"]), int(runtime["maxCapacity"])

    def _restart(self, deployment: Deployment, action: dict[str, Any], app: dict[str, Any]) -> int:
        runtime = self._runtime(deployment, action)
        tasks = self.state.app_tasks(app["id"])
        fresh = "minHealthy" not in runtime
        min_healthy, max_capacity = self._restart_bounds(runtime, app, tasks)
        if fresh:  # the next leader must go on with the same bounds, not recompute them from a changed fleet
            self.state.save_deployment(deployment)
        config = app["versionInfo"]["lastConfigChangeAt"]
        n = int(app["instances"])
        new = [t for t in tasks if t.active and t.config_version == config]
        old = [t for t in tasks if t.active and t.config_version != config]
        if len(new) > n:  # left over from an earlier forced deployment
            for task in kill_order(new, app.get("killSelection", "YOUNGEST_FIRST"), lambda t: self.healthy(t, app))[
                : len(new) - n
            ]:
                self.kill(task, "deployment: restart surplus")
            new = [t for t in new if t.active]
        healthy_count = sum(1 for t in new if self.good(t, app)) + sum(
            1 for t in old if t.running and self.healthy(t, app)
        )
        for task in sorted(old, key=lambda t: (t.running and self.healthy(t, app), t.staged_time)):
            task_healthy = task.running and self.healthy(task, app)
            if not task_healthy:
                self.kill(task, "deployment: replace unhealthy")
            elif healthy_count - 1 >= min_healthy:
                self.kill(task, "deployment: replace")
                healthy_count -= 1
            else:
                break
        # Tasks on their way out still hold their resources: they count toward the capacity until they are gone.
        occupied = sum(1 for t in self.state.app_tasks(app["id"]) if not is_terminal(t.state))
        return max(0, min(n - len(new), max_capacity - occupied))

    def _done(self, deployment: Deployment, action: dict[str, Any]) -> bool:
        kind = action["action"]
        if kind == START:
            return True
        tasks = self.state.app_tasks(action["app"])
        app = self.state.apps.get(action["app"])
        if kind == STOP or app is None:
            return not tasks
        if any(t.killing for t in tasks):
            return False
        active = [t for t in tasks if t.active]
        if kind == SCALE:
            wanted = int(action.get("instances", app["instances"]))
            return len(active) == wanted and all(self.good(t, app) for t in active)
        config = app["versionInfo"]["lastConfigChangeAt"]
        return len(active) == app["instances"] and all(t.config_version == config and self.good(t, app) for t in active)
