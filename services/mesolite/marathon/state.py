"""What Marathon knows and must not lose: apps and their versions, groups, tasks, deployments, the framework id.

Everything lives in memory for fast reads and is written through to the :class:`~mesolite.core.store.Store` on every
change, under hierarchical keys, so a restarted Marathon (or, with ``--zk``, the next leader reading ZooKeeper) finds
the same apps, re-adopts the same running tasks and resumes the same deployments. Only the leader holds a loaded copy;
it is read afresh on every election and dropped on losing leadership. Launch backoff, health results and offer
statistics are deliberately in memory only, as in Marathon.

Keys: ``apps<id>`` (current definition), ``appversions<id>/<version>``, ``pods<id>``, ``podversions<id>/<version>``,
``groups<id>`` (the root group: ``groups/_root``), ``groupversions<id>/<version>``, ``tasks/<instance id>`` (an app's
task or a pod's instance with its containers), ``deployments/<id>``, ``framework/id``, ``subscribers`` (HTTP callback
URLs). In ZooKeeper each key is a znode below ``<zk path>/state`` (``apps/a/b`` for the
app ``/a/b``), values larger than ZooKeeper's 1 MB limit split into chunks by
:class:`~mesolite.core.zk.ZooKeeperStore`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mesolite.core.protocol import is_terminal
from mesolite.core.store import Store
from mesolite.marathon import pathid

MAX_VERSIONS = 50
ROOT_KEY = "/_root"


def iso(ts: float | None = None) -> str:
    """Marathon's timestamps: ISO-8601, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _key(path_id: str) -> str:
    """The store key part for a group id: ZooKeeper paths have no empty segment, so the root group ``/`` (whose
    plain key would end in a slash) is kept under ``/_root``, a name no Marathon id can have."""
    return ROOT_KEY if path_id == "/" else path_id


def gone(state: str) -> bool:
    """Over for Marathon: a terminal state, or TASK_UNKNOWN (the master has no record of the task: Marathon's
    Unknown condition is a failure, and the instance is replaced)."""
    return is_terminal(state) or state == "TASK_UNKNOWN"


class VersionClock:
    """Strictly increasing version timestamps: two changes in the same millisecond still get distinct versions."""

    def __init__(self) -> None:
        self._last = 0.0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            now = max(time.time(), self._last + 0.001)
            self._last = now
        return iso(now)


@dataclass
class Task:
    id: str
    app_id: str
    agent_id: str
    host: str
    ports: list[int]
    service_ports: list[int]
    version: str
    config_version: str
    staged_at: str
    state: str = "TASK_STAGING"
    started_at: str | None = None
    ip_addresses: list[dict[str, str]] = field(default_factory=list)
    placement: dict[str, str] = field(default_factory=dict)
    staged_time: float = field(default_factory=time.time)
    running_time: float | None = None
    killing: bool = False
    kill_sent: float = 0.0
    mesos_healthy: bool | None = None
    ready: bool = False
    # A pod instance: one entry per container (name, Mesos task id, state, health, endpoints); empty for an app.
    containers: list[dict[str, Any]] = field(default_factory=list)
    executor_id: str = ""
    # Partition awareness: when the master reported the task unreachable, and whether it has been unreachable for
    # longer than its run spec's inactiveAfterSeconds (then it no longer counts, and a replacement launches).
    unreachable_since: float | None = None
    inactive: bool = False
    condition_since: str = field(default_factory=lambda: iso())
    last_health: bool | None = None

    @property
    def active(self) -> bool:
        """Counts toward the run spec's instances: alive, not on its way out, not given up as unreachable."""
        return not self.killing and not self.inactive and not gone(self.state)

    @property
    def mesos_task_ids(self) -> list[str]:
        """The Mesos tasks of this instance: the task itself, or one per container of a pod."""
        return [c["taskId"] for c in self.containers] if self.containers else [self.id]

    @property
    def running(self) -> bool:
        return self.state == "TASK_RUNNING"

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Task:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Deployment:
    id: str
    version: str
    affected_apps: list[str]
    steps: list[list[dict[str, Any]]]
    original: dict[str, dict[str, Any] | None]
    target: dict[str, dict[str, Any] | None]
    current_step: int = 0
    runtime: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    # Which of ``affected_apps`` (every run spec the plan touches) are pods: their actions render as ``pod``.
    affected_pods: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Deployment:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def current_actions(self) -> list[dict[str, Any]]:
        if self.current_step < len(self.steps):
            return self.steps[self.current_step]
        return []


class State:
    """In-memory model with write-through persistence; callers hold the service lock around every use."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.apps: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.app_group: dict[str, str] = {}
        self.tasks: dict[str, Task] = {}
        self.tasks_by_app: dict[str, dict[str, Task]] = {}
        self.by_mesos_id: dict[str, Task] = {}  # a pod container's Mesos task id -> its instance
        self.deployments: dict[str, Deployment] = {}
        self.framework_id: str | None = None
        self.last_failures: dict[str, dict[str, Any]] = {}
        self.subscribers: list[str] = []

    # ------------------------------------------------------------------ loading

    def reset(self) -> None:
        """Forget everything held in memory (leadership lost): the store, not this copy, is the truth now."""
        self.apps.clear()
        self.pods.clear()
        self.groups.clear()
        self.app_group.clear()
        self.tasks.clear()
        self.tasks_by_app.clear()
        self.by_mesos_id.clear()
        self.deployments.clear()
        self.framework_id = None
        self.last_failures.clear()
        self.subscribers = []

    def load(self) -> None:
        for app in self.store.list("apps/").values():
            self.apps[app["id"]] = app["app"]
            self.app_group[app["id"]] = app.get("group") or pathid.parent(app["id"])
        for pod in self.store.list("pods/").values():
            self.pods[pod["id"]] = pod
        for group in self.store.list("groups/").values():
            self.groups[group["id"]] = group
        self.groups.setdefault("/", {"id": "/", "dependencies": [], "version": iso()})
        for record in self.store.list("tasks/").values():
            task = Task.from_record(record)
            self._index(task)
        for record in sorted(self.store.list("deployments/").values(), key=lambda d: d.get("created", 0)):
            deployment = Deployment.from_record(record)
            self.deployments[deployment.id] = deployment
        self.framework_id = self.store.get("framework/id")
        self.subscribers = list(self.store.get("subscribers") or [])

    # ------------------------------------------------------------------ apps and groups

    def put_app(self, app: dict[str, Any], group: str) -> None:
        previous = self.apps.get(app["id"])
        self.apps[app["id"]] = app
        self.app_group[app["id"]] = group
        self.store.put(f"apps{app['id']}", {"id": app["id"], "group": group, "app": app})
        if previous is None or previous.get("version") != app.get("version"):
            self.store.put(f"appversions{app['id']}/{app['version']}", app)
            self._prune_versions(f"appversions{app['id']}/")

    def delete_app(self, app_id: str) -> None:
        self.apps.pop(app_id, None)
        self.app_group.pop(app_id, None)
        self.store.delete(f"apps{app_id}")
        for key in self._version_keys(f"appversions{app_id}/"):
            self.store.delete(key)

    def app_versions(self, app_id: str) -> list[str]:
        prefix = f"appversions{app_id}/"
        return sorted((key[len(prefix) :] for key in self._version_keys(prefix)), reverse=True)

    def app_version(self, app_id: str, version: str) -> dict[str, Any] | None:
        return self.store.get(f"appversions{app_id}/{version}")

    def spec(self, spec_id: str) -> dict[str, Any] | None:
        """The app or pod with this id."""
        return self.apps.get(spec_id) or self.pods.get(spec_id)

    def put_pod(self, pod: dict[str, Any]) -> None:
        previous = self.pods.get(pod["id"])
        self.pods[pod["id"]] = pod
        self.store.put(f"pods{pod['id']}", pod)
        if previous is None or previous.get("version") != pod.get("version"):
            self.store.put(f"podversions{pod['id']}/{pod['version']}", pod)
            self._prune_versions(f"podversions{pod['id']}/")

    def delete_pod(self, pod_id: str) -> None:
        self.pods.pop(pod_id, None)
        self.store.delete(f"pods{pod_id}")
        for key in self._version_keys(f"podversions{pod_id}/"):
            self.store.delete(key)

    def pod_versions(self, pod_id: str) -> list[str]:
        prefix = f"podversions{pod_id}/"
        return sorted((key[len(prefix) :] for key in self._version_keys(prefix)), reverse=True)

    def pod_version(self, pod_id: str, version: str) -> dict[str, Any] | None:
        return self.store.get(f"podversions{pod_id}/{version}")

    def put_group(self, group: dict[str, Any]) -> None:
        self.groups[group["id"]] = group
        self.store.put(f"groups{_key(group['id'])}", group)

    def delete_group(self, group_id: str) -> None:
        self.groups.pop(group_id, None)
        self.store.delete(f"groups{_key(group_id)}")
        for key in self._version_keys(f"groupversions{_key(group_id)}/"):
            self.store.delete(key)

    def put_group_version(self, group_id: str, version: str, snapshot: dict[str, Any]) -> None:
        self.store.put(f"groupversions{_key(group_id)}/{version}", snapshot)
        self._prune_versions(f"groupversions{_key(group_id)}/")

    def group_versions(self, group_id: str) -> list[str]:
        prefix = f"groupversions{_key(group_id)}/"
        return sorted((key[len(prefix) :] for key in self._version_keys(prefix)), reverse=True)

    def group_version(self, group_id: str, version: str) -> dict[str, Any] | None:
        return self.store.get(f"groupversions{_key(group_id)}/{version}")

    def _version_keys(self, prefix: str) -> list[str]:
        # Versions are timestamps: keys of nested ids below this one (``/a/b/...``) do not start with a digit.
        return [k for k in self.store.list(prefix) if "/" not in k[len(prefix) :] and k[len(prefix) :][:1].isdigit()]

    def _prune_versions(self, prefix: str) -> None:
        keys = sorted(self._version_keys(prefix))
        for key in keys[:-MAX_VERSIONS]:
            self.store.delete(key)

    def apps_in_group(self, group_id: str) -> list[str]:
        """Apps declared in this group or any group below it."""
        return [a for a, g in self.app_group.items() if g == group_id or pathid.is_ancestor(group_id, g)]

    def pods_in_group(self, group_id: str) -> list[str]:
        return [p for p in self.pods if pathid.parent(p) == group_id or pathid.is_ancestor(group_id, p)]

    def specs(self) -> dict[str, dict[str, Any]]:
        """Every app and pod by id."""
        return {**self.apps, **self.pods}

    # ------------------------------------------------------------------ tasks

    def _index(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.tasks_by_app.setdefault(task.app_id, {})[task.id] = task
        for entry in task.containers:
            self.by_mesos_id[entry["taskId"]] = task

    def task_of(self, mesos_task_id: str) -> Task | None:
        """The instance a Mesos task id belongs to (an app's task, or a pod container's instance)."""
        return self.tasks.get(mesos_task_id) or self.by_mesos_id.get(mesos_task_id)

    def add_task(self, task: Task) -> None:
        self._index(task)
        self.save_task(task)

    def save_task(self, task: Task) -> None:
        self.store.put(f"tasks/{task.id}", task.record())

    def expunge_task(self, task_id: str) -> Task | None:
        task = self.tasks.pop(task_id, None)
        if task is not None:
            for entry in task.containers:
                self.by_mesos_id.pop(entry["taskId"], None)
            by_app = self.tasks_by_app.get(task.app_id)
            if by_app is not None:
                by_app.pop(task_id, None)
                if not by_app:
                    self.tasks_by_app.pop(task.app_id, None)
            self.store.delete(f"tasks/{task_id}")
        return task

    def app_tasks(self, app_id: str) -> list[Task]:
        return list(self.tasks_by_app.get(app_id, {}).values())

    # ------------------------------------------------------------------ deployments and framework

    def save_deployment(self, deployment: Deployment) -> None:
        self.deployments[deployment.id] = deployment
        self.store.put(f"deployments/{deployment.id}", deployment.record())

    def delete_deployment(self, deployment_id: str) -> Deployment | None:
        deployment = self.deployments.pop(deployment_id, None)
        self.store.delete(f"deployments/{deployment_id}")
        return deployment

    def deployments_of(self, app_id: str) -> list[Deployment]:
        return [d for d in self.deployments.values() if app_id in d.affected_apps]

    def set_framework_id(self, framework_id: str | None) -> None:
        self.framework_id = framework_id
        if framework_id is None:
            self.store.delete("framework/id")
        else:
            self.store.put("framework/id", framework_id)

    def set_subscribers(self, urls: list[str]) -> None:
        self.subscribers = list(urls)
        self.store.put("subscribers", self.subscribers)
