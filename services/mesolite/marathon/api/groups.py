"""``/v2/groups``: the group tree, GroupUpdates (create, replace, ``scaleBy``, rollback by ``version``, ``dryRun``),
deletion and group versions.

A GroupUpdate body is parsed here into a :class:`GroupUpdate` (ids resolved against the group, apps validated,
Marathon's error paths such as ``/apps(0)/cpus`` and ``/groups(1)/id``); applying it is ``groups.py``'s.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from mesolite.core.http import json_response
from mesolite.marathon import pathid, views
from mesolite.marathon.api.common import deployed, object_body, qbool
from mesolite.marathon.appdef import BadJson, Invalid, normalize_app
from mesolite.marathon.errors import NotFound
from mesolite.marathon.groups import GroupUpdate
from mesolite.marathon.service import Marathon, Steps
from mesolite.marathon.state import Deployment

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class GroupsApi:
    def __init__(self, marathon: Marathon) -> None:
        self.m = marathon

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_groups", __name__)
        bp.add_url_rule("/v2/groups", view_func=self.groups_root, methods=METHODS)
        bp.add_url_rule("/v2/groups/<path:rest>", view_func=self.group_resource, methods=METHODS)
        return bp

    def groups_root(self) -> Response:
        return self.group_resource("")

    def group_resource(self, rest: str) -> Response:
        """``/v2/groups/<id>[/versions[/<v>]]``."""
        parts = [p for p in rest.split("/") if p]
        version: str | None = None
        versions = False
        if len(parts) >= 1 and parts[-1] == "versions":
            parts, versions = parts[:-1], True
        elif len(parts) >= 2 and parts[-2] == "versions":
            parts, version = parts[:-2], parts[-1]
        group_id = "/" + "/".join(parts)
        if version is not None and request.method == "PUT":  # marathon-python's rollback_group
            return deployed(_deployment(self.m.rollback_group(group_id, version, force=qbool("force"))))
        if versions or version is not None:
            return self.group_versions(group_id, version)
        if request.method == "GET":
            return self.show(group_id)
        if request.method == "DELETE":
            return deployed(self.m.delete_group(group_id, force=qbool("force")))
        if request.method == "POST":
            return self.post_group(group_id)
        return self.put_group(group_id)

    def show(self, group_id: str) -> Response:
        """``embed=group.groups|group.apps|group.apps.<app embed>``; by default groups and apps."""
        embed_args = request.args.getlist("embed")
        group_embed = {e[len("group.") :] for e in embed_args if e in ("group.groups", "group.apps")}
        if not embed_args:
            group_embed = {"groups", "apps"}
        app_embed = views.parse_embed([e for e in embed_args if e.startswith("group.apps.")])
        if any(e.startswith("group.apps.") for e in embed_args):
            group_embed.add("apps")
        with self.m.lock:
            if group_id not in self.m.state.groups:
                raise NotFound.group(group_id)
            return json_response(views.group_json(self.m, group_id, app_embed, group_embed))

    def post_group(self, base: str) -> Response:
        """A new group below ``base``: its ``id`` may be relative (or empty: the root group, while it is empty)."""
        raw = object_body()
        raw_id = raw.get("id", "")
        if raw_id is not None and not isinstance(raw_id, str):
            raise BadJson("/id", "error.expected.jsstring")
        for error in pathid.segment_errors(raw_id or ""):
            raise Invalid([("/id", error)])
        update = parse_update(raw, pathid.canonical(raw_id or "", base))
        return deployed(self.m.create_group(update, force=qbool("force")), status=201)

    def put_group(self, group_id: str) -> Response:
        """A body of only ``version`` rolls back, only ``scaleBy`` scales; anything else is a GroupUpdate.
        ``dryRun=true`` answers the steps instead of deploying."""
        raw = object_body()
        if isinstance(raw.get("id"), str) and raw["id"]:
            group_id = pathid.canonical(raw["id"], group_id)
        force, dry_run = qbool("force"), qbool("dryRun")
        result: Deployment | Steps
        if "version" in raw:
            result = self.m.rollback_group(group_id, str(raw["version"]), force=force, dry_run=dry_run)
        elif "scaleBy" in raw:
            factor = raw["scaleBy"]
            if not isinstance(factor, int | float) or isinstance(factor, bool) or factor < 0:
                raise Invalid([("/scaleBy", "must be a non-negative number")])
            result = self.m.scale_group(group_id, factor, force=force, dry_run=dry_run)
        else:
            result = self.m.update_group(parse_update(raw, group_id), force=force, dry_run=dry_run)
        if isinstance(result, Deployment):
            return deployed(result)
        return json_response(
            {"steps": [{"actions": [{"action": a["action"], "app": a["app"]} for a in step]} for step in result]}
        )

    def group_versions(self, group_id: str, version: str | None) -> Response:
        m = self.m
        with m.lock:
            if group_id not in m.state.groups:
                raise NotFound.group(group_id)
            if version is None:
                return json_response(m.state.group_versions(group_id))
            saved = m.state.group_version(group_id, version)
        if saved is None:
            raise NotFound.group(group_id, version)
        return json_response(views.group_snapshot_json(group_id, saved, version))


def _deployment(result: Deployment | Steps) -> Deployment:
    assert isinstance(result, Deployment)
    return result


def parse_update(raw: Any, group_id: str) -> GroupUpdate:
    """A GroupUpdate body for ``group_id``. Dependencies resolve against the group's parent, apps and subgroups
    against the group; a subgroup must lie below it. Errors carry paths relative to the (sub)group's own body."""
    if not isinstance(raw, dict):
        raise BadJson("/", "error.expected.jsobject")
    dependencies: list[str] | None = None
    if "dependencies" in raw:
        deps = raw["dependencies"]
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BadJson("/dependencies", "error.expected.jsarray")
        dependencies = [pathid.canonical(d, pathid.parent(group_id)) for d in deps]
    apps = _parse_apps(raw["apps"], group_id) if "apps" in raw else None
    groups = _parse_groups(raw["groups"], group_id) if "groups" in raw else None
    return GroupUpdate(group_id, dependencies, apps, groups)


def _parse_apps(apps: Any, group_id: str) -> list[dict[str, Any]]:
    if not isinstance(apps, list):
        raise BadJson("/apps", "error.expected.jsarray")
    out = []
    for i, item in enumerate(apps):
        if not isinstance(item, dict):
            raise BadJson(f"/apps({i})", "error.expected.jsobject")
        try:
            out.append(normalize_app(item, base=group_id))
        except Invalid as exc:
            raise Invalid([(f"/apps({i}){p if p != '/' else ''}", e) for p, e in exc.errors]) from None
    return out


def _parse_groups(subgroups: Any, group_id: str) -> list[GroupUpdate]:
    if not isinstance(subgroups, list):
        raise BadJson("/groups", "error.expected.jsarray")
    out = []
    for i, item in enumerate(subgroups):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise Invalid([(f"/groups({i})/id", "must not be empty")])
        for error in pathid.segment_errors(item["id"]):
            raise Invalid([(f"/groups({i})/id", error)])
        child = pathid.canonical(item["id"], group_id)
        if not pathid.is_ancestor(group_id, child):
            hint = f"identifier {child} is not child of {group_id}. Hint: use relative paths."
            raise Invalid([(f"/groups({i})/id", hint)])
        out.append(parse_update(item, child))
    return out
