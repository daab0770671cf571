"""The tree of apps and groups, and the changes requests make to it.

Every change works on a :class:`Root`, a copy of the apps and groups that :meth:`Marathon.deploy` versions, plans
and commits only when the change went through; nothing here touches the store or knows about HTTP. The requests
arrive parsed (:class:`AppUpdate`, :class:`GroupUpdate`: ids absolute, apps validated) and the refusals are the
domain errors of :mod:`mesolite.marathon.errors`.

Group semantics follow Marathon's ``GroupsResource``: a GroupUpdate replaces the dependencies, apps and subgroups it
names (those it leaves out stay); ``scaleBy`` multiplies every app below the group, rounding up; a group version is
a snapshot of the subtree, and rolling back restores it as it was. Pods live in the group their id names; they are
changed only through ``/v2/pods`` (a GroupUpdate leaves them alone), but deleting or rolling back a group takes
its pods with it.

:func:`finalize` is the last step of every change: what changed gets the new version, and apps their service
ports.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesolite.marathon import appdef, pathid, runspec
from mesolite.marathon.appdef import Invalid, merge_update, normalize_app
from mesolite.marathon.errors import AlreadyExists, NotFound, Unsatisfiable
from mesolite.marathon.state import State

# Looks up an app as it was in a version (``State.app_version``).
AppVersions = Callable[[str, str], dict[str, Any] | None]


class Root:
    """A mutable copy of the apps and groups a request rewrites; the original stays untouched until it commits."""

    def __init__(self, state: State) -> None:
        self.apps = dict(state.apps)
        self.pods = dict(state.pods)
        self.groups = {k: dict(v) for k, v in state.groups.items()}
        self.app_group = dict(state.app_group)
        self.restart: set[str] = set()
        self.kills: dict[str, list[str]] = {}

    def put_app(self, app: dict[str, Any], group: str | None = None) -> None:
        self.apps[app["id"]] = app
        self.app_group[app["id"]] = group or self.app_group.get(app["id"]) or pathid.parent(app["id"])

    def remove_app(self, app_id: str) -> None:
        self.apps.pop(app_id, None)
        self.app_group.pop(app_id, None)

    def apps_under(self, group_id: str) -> list[str]:
        return [a for a, g in self.app_group.items() if g == group_id or pathid.is_ancestor(group_id, g)]

    def remove_group(self, group_id: str) -> None:
        for app_id in self.apps_under(group_id):
            self.remove_app(app_id)
        for pod_id in [p for p in self.pods if pathid.is_ancestor(group_id, p)]:
            self.pods.pop(pod_id)
        for gid in [g for g in self.groups if g == group_id or pathid.is_ancestor(group_id, g)]:
            if gid != "/":
                self.groups.pop(gid, None)


@dataclass(frozen=True)
class AppUpdate:
    """``PUT``/``PATCH`` of one app: the fields as sent, for the app ``app_id``. With ``partial`` (Marathon's
    ``partialUpdate``, and always for PATCH) fields left out keep their old values; otherwise they get defaults."""

    app_id: str
    fields: dict[str, Any]
    partial: bool = True

    @property
    def rollback_to(self) -> str | None:
        """``{"version": v}`` alone is a rollback to that version (marathon-python's ``rollback_app``)."""
        if set(self.fields) - {"id"} == {"version"}:
            return str(self.fields["version"])
        return None


@dataclass(frozen=True)
class GroupUpdate:
    """A parsed GroupUpdate for the group ``id``; ``None`` means "not given, keep what is there"."""

    id: str
    dependencies: list[str] | None = None
    apps: list[dict[str, Any]] | None = None
    groups: list[GroupUpdate] | None = None


def new_group(group_id: str, version: str | None = None) -> dict[str, Any]:
    return {"id": group_id, "dependencies": [], "version": version}


# ---------------------------------------------------------------------------------------------------------- apps


def create_app(root: Root, app: dict[str, Any]) -> None:
    if app["id"] in root.apps:
        raise AlreadyExists(f"An app with id [{app['id']}] already exists.")
    _free_id(root, app["id"])
    root.put_app(app)


def _free_id(root: Root, spec_id: str) -> None:
    """An id names one thing: an app, a pod or a group."""
    if spec_id in root.groups:
        raise AlreadyExists(f"A group with id [{spec_id}] already exists.")
    if spec_id in root.pods:
        raise AlreadyExists(f"A pod with id [{spec_id}] already exists.")
    if spec_id in root.apps:
        raise AlreadyExists(f"An app with id [{spec_id}] already exists.")


def update_app(root: Root, update: AppUpdate, versions: AppVersions, must_exist: bool = False) -> None:
    """Create or replace the app, merge a partial update into it, or put back an old version of it."""
    existing = root.apps.get(update.app_id)
    if existing is None and must_exist:
        raise NotFound.app(update.app_id)
    version = update.rollback_to
    if version is not None:
        old = versions(update.app_id, version)
        if old is None:
            raise NotFound.app(update.app_id, version)
        restored = copy.deepcopy(old)
        restored.pop("version", None)
        restored.pop("versionInfo", None)
        root.put_app(restored)
        return
    merged = merge_update(existing, update.fields) if existing is not None and update.partial else dict(update.fields)
    merged["id"] = update.app_id
    root.put_app(normalize_app(merged))


# ---------------------------------------------------------------------------------------------------------- pods


def create_pod(root: Root, pod: dict[str, Any]) -> None:
    _free_id(root, pod["id"])
    root.pods[pod["id"]] = pod


def update_pod(root: Root, pod: dict[str, Any]) -> None:
    """``PUT /v2/pods/{id}``: the whole definition replaces the old one (or creates the pod)."""
    if pod["id"] not in root.pods:
        _free_id(root, pod["id"])
    root.pods[pod["id"]] = pod


def delete_pod(root: Root, pod_id: str) -> None:
    if pod_id not in root.pods:
        raise NotFound.pod(pod_id)
    del root.pods[pod_id]


def delete_app(root: Root, app_id: str) -> None:
    if app_id not in root.apps:
        raise NotFound.app(app_id)
    root.remove_app(app_id)


def restart_app(root: Root, app_id: str) -> None:
    """A new version of the same definition: every task is replaced, as with a config change."""
    if app_id not in root.apps:
        raise NotFound.app(app_id)
    root.apps[app_id] = dict(root.apps[app_id])
    root.restart.add(app_id)


def kill_and_scale(root: Root, kills: dict[str, list[str]]) -> None:
    """Kill these tasks and lower each app's instance count by as many (``scale=true`` on task kills)."""
    for app_id, ids in kills.items():
        if app_id not in root.apps or not ids:
            continue
        updated = dict(root.apps[app_id])
        updated["instances"] = max(0, updated["instances"] - len(ids))
        root.apps[app_id] = updated
        root.kills[app_id] = ids


# -------------------------------------------------------------------------------------------------------- groups


def create_group(root: Root, update: GroupUpdate) -> None:
    """``POST /v2/groups``: the root group counts as created once it holds apps."""
    if update.id in root.groups and (update.id != "/" or root.apps):
        raise AlreadyExists(f"Group {update.id} is already created. Use PUT to change this group.")
    apply_update(root, update)


def apply_update(root: Root, update: GroupUpdate) -> None:
    """The dependencies, apps and subgroups given replace the group's old ones (apps and subgroups not named are
    removed); subgroups are updated the same way, depth first."""
    group = dict(root.groups.get(update.id) or new_group(update.id))
    if update.dependencies is not None:
        group["dependencies"] = list(update.dependencies)
    root.groups[update.id] = group
    if update.apps is not None:
        for app in update.apps:
            root.put_app(app, update.id)
        given = {app["id"] for app in update.apps}
        for app_id in [a for a, g in root.app_group.items() if g == update.id and a not in given]:
            root.remove_app(app_id)
    if update.groups is not None:
        for child in update.groups:
            apply_update(root, child)
        children = {child.id for child in update.groups}
        for gid in [g for g in root.groups if g != update.id and pathid.parent(g) == update.id]:
            if gid not in children:
                root.remove_group(gid)


def scale_group(root: Root, group_id: str, factor: float) -> None:
    """``{"scaleBy": f}``: every app below the group runs ``ceil(instances × f)`` instances."""
    if group_id not in root.groups:
        raise NotFound.group(group_id)
    for app_id in root.apps_under(group_id):
        scaled = dict(root.apps[app_id])
        scaled["instances"] = int(-(-scaled["instances"] * factor // 1))
        root.apps[app_id] = scaled


def delete_group(root: Root, group_id: str) -> None:
    if group_id not in root.groups:
        raise NotFound.group(group_id)
    root.remove_group(group_id)


def ensure_groups(root: Root, version: str) -> None:
    """Every group an app or group lies in exists, up to the root group."""
    needed = set(root.app_group.values()) | set(root.groups) | {pathid.parent(p) for p in root.pods}
    for group_id in list(needed):
        g = group_id
        while g != "/":
            needed.add(g)
            g = pathid.parent(g)
    for group_id in needed:
        if group_id not in root.groups:
            root.groups[group_id] = new_group(group_id, version)
    root.groups.setdefault("/", new_group("/", version))


# ------------------------------------------------------------------------------------------------ group versions


def snapshot(state: State, group_id: str) -> dict[str, Any]:
    """The subtree below ``group_id`` as stored for one group version."""
    apps = {a: copy.deepcopy(state.apps[a]) for a in state.apps_in_group(group_id)}
    groups = {g: dict(v) for g, v in state.groups.items() if g == group_id or pathid.is_ancestor(group_id, g)}
    pods = {p: copy.deepcopy(state.pods[p]) for p in state.pods_in_group(group_id)}
    return {"apps": apps, "groups": groups, "app_group": {a: state.app_group[a] for a in apps}, "pods": pods}


def restore(root: Root, group_id: str, saved: dict[str, Any]) -> None:
    """Roll the subtree back to a :func:`snapshot`: what was added since goes, what was there comes back as it was
    (as new app versions, so changed apps are redeployed)."""
    root.remove_group(group_id)
    for gid, group in saved["groups"].items():
        root.groups[gid] = dict(group)
    for app_id, app in saved["apps"].items():
        restored = copy.deepcopy(app)
        restored.pop("version", None)
        root.put_app(restored, saved["app_group"].get(app_id))
    for pod_id, pod in (saved.get("pods") or {}).items():
        restored = copy.deepcopy(pod)
        restored.pop("version", None)
        root.pods[pod_id] = restored


# ------------------------------------------------------------------------------------------------ finalizing


def finalize(
    root: Root,
    original_apps: dict[str, dict[str, Any]],
    original_pods: dict[str, dict[str, Any]],
    version: str,
    port_range: tuple[int, int],
) -> None:
    """Version what changed (a run spec equal to its old self stays the old object: not part of the deployment)
    and give apps their service ports."""
    _assign_service_ports(root, original_apps, port_range)
    for app_id, app in list(root.apps.items()):
        if app is not original_apps.get(app_id):
            root.apps[app_id] = _versioned(app, original_apps.get(app_id), version, app_id in root.restart, root)
    for pod_id, pod in list(root.pods.items()):
        if pod is not original_pods.get(pod_id):
            root.pods[pod_id] = _versioned(pod, original_pods.get(pod_id), version, pod_id in root.restart, root)


def _versioned(
    spec: dict[str, Any], old: dict[str, Any] | None, version: str, restart: bool, root: Root
) -> dict[str, Any]:
    config_changed = old is None or restart or runspec.config_of(old) != runspec.config_of(spec)
    if old is not None and not config_changed and runspec.instances(old) == runspec.instances(spec):
        if spec["id"] not in root.kills:
            return old  # nothing changed
    spec = {**spec, "version": version}
    spec["versionInfo"] = {
        "lastScalingAt": version,
        "lastConfigChangeAt": version if config_changed or old is None else old["versionInfo"]["lastConfigChangeAt"],
    }
    return spec


def _assign_service_ports(root: Root, original: dict[str, dict[str, Any]], port_range: tuple[int, int]) -> None:
    """Zero service ports get the lowest free one in the range (an app keeps the ones it had). A service port is
    the port every node's load balancer listens on for the app, so two apps can never share one: an explicit
    port another app holds is refused with Marathon's 422."""
    owners: dict[int, str] = {}
    for app_id, app in root.apps.items():
        for port in appdef.service_ports(app):
            if not port:
                continue
            if port in owners and owners[port] != app_id:
                changed = app_id if app is not original.get(app_id) else owners[port]
                index = appdef.service_ports(root.apps[changed]).index(port)
                path = (
                    f"/container/docker/portMappings({index})/servicePort"
                    if appdef.port_mappings(root.apps[changed])
                    else f"/portDefinitions({index})/port"
                )
                user = owners[port] if changed == app_id else app_id
                raise Invalid(
                    [(path, f"Requested service port {port} conflicts with a service port in use by app {user}")]
                )
            owners[port] = app_id
    used: set[int] = set()
    for app in list(original.values()) + list(root.apps.values()):
        used.update(p for p in appdef.service_ports(app) if p)
    low, high = port_range
    cursor = low
    for app_id, app in list(root.apps.items()):
        old = original.get(app_id)
        if app is old:
            continue
        old_ports = appdef.service_ports(old) if old else []
        ports = []
        for i, port in enumerate(appdef.service_ports(app)):
            if port == 0 and i < len(old_ports) and old_ports[i]:
                port = old_ports[i]
            elif port == 0:
                while cursor in used:
                    cursor += 1
                if cursor > high:
                    raise Unsatisfiable(f"Port range exhausted: no free service port in [{low}, {high}]")
                port = cursor
            used.add(port)
            ports.append(port)
        if ports != appdef.service_ports(app):
            app = copy.deepcopy(app)
            appdef.set_service_ports(app, ports)
            root.apps[app_id] = app
