"""Deployment plans and how their steps are carried out.

A plan (Marathon's ``DeploymentPlan.apply``) turns "the apps before" and "the apps after" into steps run one after
another: stop removed apps, start new ones, then scale or restart changed apps layer by layer along the dependency
graph (apps that depend on nothing first), so that a dependency is running and healthy before what needs it starts.

Steps are carried out level-triggered: every tick recomputes, from the tasks that exist now, what each action still
has to kill and how many instances it still needs launched. Nothing is remembered but a few numbers per action, so a
restarted Marathon resumes a persisted deployment exactly where the tasks say it is.

Apps and pods are planned and carried out alike (their differences are read through ``runspec.py``); a pod's
actions render with ``pod`` in place of ``app``, as in Marathon's deployment JSON.

A rolling restart follows Marathon's ``TaskReplaceActor``: with ``n`` instances, keep at least
``ceil(n × minimumHealthCapacity)`` healthy and never run more than ``floor(n × (1 + maximumOverCapacity))``; kill an
old task only while the healthy count stays at or above the minimum (unhealthy old ones first), start new ones while
under the maximum, and count a new task only once it is running, healthy and ready.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mesolite.marathon import pathid, runspec
from mesolite.marathon.appdef import Invalid
from mesolite.marathon.state import Deployment, State, Task, gone

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
    """(steps, affected run spec ids) turning ``original`` into ``target`` (both: id → app or pod definition)."""
    restart = restart or set()
    kills = kills or {}
    stops = [a for a in original if a not in target]
    starts = [a for a in target if a not in original]
    kinds = {a: "pod" for a, spec in list(original.items()) + list(target.items()) if runspec.is_pod(spec)}

    def action(kind: str, spec_id: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"action": kind, "app": spec_id, **extra}
        if spec_id in kinds:
            out["kind"] = "pod"
        return out

    changed: dict[str, dict[str, Any]] = {}
    for spec_id, spec in target.items():
        old = original.get(spec_id)
        if old is None:
            changed[spec_id] = action(SCALE, spec_id, instances=runspec.instances(spec), kill=[])
        elif spec_id in restart or runspec.config_of(old) != runspec.config_of(spec):
            changed[spec_id] = action(RESTART, spec_id)
        elif runspec.instances(old) != runspec.instances(spec) or kills.get(spec_id):
            changed[spec_id] = action(
                SCALE, spec_id, instances=runspec.instances(spec), kill=list(kills.get(spec_id) or [])
            )
    steps: list[list[dict[str, Any]]] = []
    if stops:
        steps.append([action(STOP, a) for a in sorted(stops)])
    if starts:
        steps.append([action(START, a) for a in sorted(starts)])
    if changed:
        layer_of = depths(target, groups, app_group)
        for layer in sorted({layer_of[a] for a in changed}):
            steps.append([changed[a] for a in sorted(changed) if layer_of[a] == layer])
    affected = sorted(set(stops) | set(starts) | set(changed))
    return steps, affected


def action_json(action: dict[str, Any]) -> dict[str, Any]:
    """``{"action", "app"}``, or ``{"action", "pod"}`` for a pod."""
    return {"action": action["action"], "pod" if action.get("kind") == "pod" else "app": action["app"]}


def plan_json(deployment: Deployment) -> dict[str, Any]:
    """The ``plan`` of deployment events: the original and target root groups hold what the plan changes."""

    def group_of(specs: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
        present = [s for s in specs.values() if s is not None]
        return {
            "id": "/",
            "apps": [s for s in present if not runspec.is_pod(s)],
            "groups": [],
            "dependencies": [],
            "version": deployment.version,
            "pods": [{k: v for k, v in s.items() if k != "versionInfo"} for s in present if runspec.is_pod(s)],
        }

    return {
        "id": deployment.id,
        "version": deployment.version,
        "original": group_of(deployment.original),
        "target": group_of(deployment.target),
        "steps": [{"actions": [action_json(a) for a in step]} for step in deployment.steps],
    }


def step_json(deployment: Deployment) -> dict[str, Any]:
    return {"actions": [action_json(a) for a in deployment.current_actions()]}


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
        """Counts as a replacement: running, healthy, and ready when the app has a readiness check (pods have
        none)."""
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
        app = self.state.spec(action["app"])
        if kind == STOP or (app is None and kind != START):
            for task in self.state.app_tasks(action["app"]):
                if task.active or task.inactive:  # an unreachable instance given up is expunged by the kill
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
        wanted = int(action.get("instances", runspec.instances(app)))
        if len(active) > wanted:
            ordered = kill_order(active, runspec.kill_selection(app), lambda t: self.healthy(t, app))
            for task in ordered[: len(active) - wanted]:
                self.kill(task, "deployment: scale down")
            return 0
        return wanted - len(active)

    def _restart_bounds(self, runtime: dict[str, Any], app: dict[str, Any], tasks: list[Task]) -> tuple[int, int]:
        if "minHealthy" not in runtime:
            n = runspec.instances(app)
            strategy = runspec.upgrade(app)
            min_healthy = math.ceil(n * float(strategy["minimumHealthCapacity"]) - 1e-9)
            max_capacity = math.floor(n * (1 + float(strategy["maximumOverCapacity"])) + 1e-9)
            healthy_now = sum(1 for t in tasks if t.active and t.running and self.healthy(t, app))
            if min_healthy == max_capacity and max_capacity <= healthy_now:
                if runspec.is_resident(app):
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
        config = runspec.config_version(app)
        n = runspec.instances(app)
        new = [t for t in tasks if t.active and t.config_version == config]
        old = [t for t in tasks if t.active and t.config_version != config]
        if len(new) > n:  # left over from an earlier forced deployment
            for task in kill_order(new, runspec.kill_selection(app), lambda t: self.healthy(t, app))[: len(new) - n]:
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
        occupied = sum(1 for t in self.state.app_tasks(app["id"]) if not gone(t.state) and not t.inactive)
        return max(0, min(n - len(new), max_capacity - occupied))

    def _done(self, deployment: Deployment, action: dict[str, Any]) -> bool:
        kind = action["action"]
        if kind == START:
            return True
        tasks = self.state.app_tasks(action["app"])
        app = self.state.spec(action["app"])
        if kind == STOP or app is None:
            return not tasks
        if any(t.killing for t in tasks):
            return False
        active = [t for t in tasks if t.active]
        if kind == SCALE:
            wanted = int(action.get("instances", runspec.instances(app)))
            return len(active) == wanted and all(self.good(t, app) for t in active)
        config = runspec.config_version(app)
        n = runspec.instances(app)
        return len(active) == n and all(t.config_version == config and self.good(t, app) for t in active)
