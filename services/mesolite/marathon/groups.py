"""The tree of apps and groups, and the changes requests make to it.

Every change works on a :class:`Root`, a copy of the apps and groups that :meth:`Marathon.deploy` versions, plans
and commits only when the change went through; nothing here touches the store or knows about HTTP. The requests
arrive parsed (:class:`AppUpdate`, :class:`GroupUpdate`: ids absolute, apps validated) and the refusals are the
domain errors of :mod:`mesolite.marathon.errors`.

Group semantics follow Marathon's ``GroupsResource``: a GroupUpdate replaces the dependencies, apps and subgroups it
names (those it leaves out stay); ``scaleBy`` multiplies every app below the group, rounding up; a group version is
a snapshot of the subtree, and rolling back restores it as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesolite.marathon import pathid
from mesolite.marathon.appdef import merge_update, normalize_app
from mesolite.marathon.errors import AlreadyExists, NotFound
from mesolite.marathon.state import State

# Looks up an app as it was in a version (``State.app_version``).
AppVersions = Callable[[str, str], dict[str, Any] | None]


class Root:
    """A mutable copy of the apps and groups a request rewrites; the original stays untouched until it commits."""

    def __init__(self, state: State) -> None:
        self.apps = dict(state.apps)
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
    if app["id"] in root.groups:
        raise AlreadyExists(f"A group with id [{app['id']}] already exists.")
    root.put_app(app)


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
    needed = set(root.app_group.values()) | set(root.groups)
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
    return {"apps": apps, "groups": groups, "app_group": {a: state.app_group[a] for a in apps}}


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
