"""``/v2/apps``: list, create, update (one or many, PUT or PATCH, rollback by version), delete, restart, an app's
tasks and versions.

Requests are parsed here (ids made absolute and checked, update bodies typed as :class:`AppUpdate`); what a change
means is the service's (``Marathon.create_app`` … and ``groups.py``), which refuses with domain errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from mesolite.core.http import json_response, text_response
from mesolite.marathon import pathid, views
from mesolite.marathon.api.common import body, deployed, not_allowed, object_body, qbool, wants_text
from mesolite.marathon.appdef import BadJson, Invalid, normalize_app
from mesolite.marathon.errors import NotFound
from mesolite.marathon.groups import AppUpdate
from mesolite.marathon.service import Marathon

# Embedded in every single-app answer, whatever ``embed`` asks for (``AppsResource.show``).
ALWAYS_EMBEDDED = {"tasks", "counts", "deployments", "lastTaskFailure"}


class AppsApi:
    def __init__(self, marathon: Marathon) -> None:
        self.m = marathon

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_apps", __name__)
        bp.add_url_rule("/v2/apps", view_func=self.list_apps, methods=["GET"])
        bp.add_url_rule("/v2/apps", view_func=self.post_app, methods=["POST"])
        bp.add_url_rule("/v2/apps", view_func=self.put_apps, methods=["PUT", "PATCH"])
        bp.add_url_rule(
            "/v2/apps/<path:rest>", view_func=self.app_resource, methods=["GET", "PUT", "PATCH", "DELETE", "POST"]
        )
        return bp

    # -------------------------------------------------------------------------------------------------- /v2/apps

    def list_apps(self) -> Response:
        m = self.m
        embed = views.parse_embed(request.args.getlist("embed"))
        cmd = request.args.get("cmd")
        ident = request.args.get("id")
        selector = label_selector(request.args.get("label"))
        with m.lock:
            out = []
            for app_def in m.state.apps.values():
                if cmd and cmd not in (app_def.get("cmd") or ""):
                    continue
                if ident and ident not in app_def["id"]:
                    continue
                if selector and not selector(app_def.get("labels") or {}):
                    continue
                out.append(views.app_json(m, app_def, embed))
        return json_response({"apps": out})

    def post_app(self) -> Response:
        """201 with the app as created (no tasks yet), its ``Location`` and the deployment's id."""
        m = self.m
        app_def = normalize_app(body())
        deployment = m.create_app(app_def, force=qbool("force"))
        with m.lock:
            created = views.app_json(m, m.state.apps[app_def["id"]], {"tasks", "lastTaskFailure"})
            m.events.publish("api_post_event", clientIp=request.remote_addr, uri="/v2/apps", appDefinition=created)
        created["tasks"] = []
        return json_response(
            created,
            status=201,
            headers={"Location": f"/v2/apps{app_def['id']}", "Marathon-Deployment-Id": deployment.id},
        )

    def put_apps(self) -> Response:
        """Many apps in one deployment; PATCH only updates apps that exist."""
        raw = body()
        if not isinstance(raw, list):
            raise BadJson("/", "error.expected.jsarray")
        partial = qbool("partialUpdate", True) or request.method == "PATCH"
        updates = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise Invalid([(f"({i})/id", "must not be empty")])
            updates.append(AppUpdate(pathid.canonical(item["id"]), item, partial))
        return deployed(self.m.update_apps(updates, force=qbool("force"), must_exist=request.method == "PATCH"))

    # ------------------------------------------------------------------------------------------ /v2/apps/<id>...

    def app_resource(self, rest: str) -> Response:
        app_id, op, arg = split_app_path(self.m, rest)
        method = request.method
        if op == "restart" and method == "POST":
            return self.restart(app_id)
        if op == "tasks" and method == "GET":
            return self.app_tasks(app_id)
        if op == "tasks" and method == "DELETE":
            return self.kill_app_tasks(app_id, arg)
        if op == "versions" and method == "GET":
            return self.versions(app_id, arg)
        if op is None and method == "GET":
            return self.show(app_id)
        if op is None and method in ("PUT", "PATCH"):
            return self.put_app(app_id)
        if op is None and method == "DELETE":
            return self.delete_app(app_id)
        return not_allowed()

    def show(self, app_id: str) -> Response:
        """One app, or with ``/<group>/*`` every app below that group."""
        m = self.m
        embed = views.parse_embed(request.args.getlist("embed")) | ALWAYS_EMBEDDED
        with m.lock:
            if app_id.endswith("/*"):
                group = app_id[: -len("/*")] or "/"
                apps = [
                    views.app_json(m, a, embed) for a_id, a in m.state.apps.items() if pathid.is_ancestor(group, a_id)
                ]
                return json_response({"*": apps})
            app_def = m.state.apps.get(app_id)
            if app_def is None:
                raise NotFound.app(app_id)
            return json_response({"app": views.app_json(m, app_def, embed)})

    def put_app(self, app_id: str) -> Response:
        """200, or 201 when the PUT created the app; PATCH of a missing app is a 404."""
        m = self.m
        raw = object_body()
        patch = request.method == "PATCH"
        partial = qbool("partialUpdate", True) or patch
        with m.lock:
            existed = app_id in m.state.apps
        if not existed and patch:
            raise NotFound.app(app_id)
        for error in pathid.segment_errors(app_id):
            raise Invalid([("/id", error)])
        deployment = m.update_apps([AppUpdate(app_id, raw, partial)], force=qbool("force"), must_exist=patch)
        with m.lock:
            if app_id in m.state.apps:
                self._api_post_event(app_id, m.state.apps[app_id])
        return deployed(deployment, status=200 if existed else 201)

    def delete_app(self, app_id: str) -> Response:
        with self.m.lock:
            definition = self.m.state.apps.get(app_id)
        deployment = self.m.delete_app(app_id, force=qbool("force", True))
        if definition is not None:
            self._api_post_event(app_id, definition)
        return deployed(deployment)

    def _api_post_event(self, app_id: str, definition: dict[str, Any]) -> None:
        self.m.events.publish(
            "api_post_event",
            clientIp=request.remote_addr,
            uri=f"/v2/apps{app_id}",
            appDefinition=views.app_definition(definition),
        )

    def restart(self, app_id: str) -> Response:
        return deployed(self.m.restart_app(app_id, force=qbool("force")))

    def app_tasks(self, app_id: str) -> Response:
        m = self.m
        with m.lock:
            app_def = m.state.apps.get(app_id)
            if app_def is None:
                raise NotFound.app(app_id)
            if wants_text():
                return text_response(views.tasks_text(m, [app_def]))
            return json_response({"tasks": [views.task_json(m, t, app_def) for t in m.state.app_tasks(app_id)]})

    def kill_app_tasks(self, app_id: str, task_id: str | None) -> Response:
        """All the app's tasks (or those on ``host``), or one; with ``scale=true`` the app shrinks by as many."""
        m = self.m
        scale, wipe = qbool("scale"), qbool("wipe")
        with m.lock:
            app_def = m.state.apps.get(app_id)
            if app_def is None:
                raise NotFound.app(app_id)
            tasks = m.state.app_tasks(app_id)
            if task_id is not None:
                tasks = [t for t in tasks if t.id == task_id]
                if not tasks:
                    raise NotFound.task(task_id)
            host = request.args.get("host")
            if host and host != "*":
                tasks = [t for t in tasks if t.host == host]
            rendered = [views.task_json(m, t, app_def) for t in tasks]
        if scale:
            return deployed(m.kill_and_scale({app_id: [t.id for t in tasks]}))
        m.kill_tasks(tasks, "killed over the API" + (" (wipe)" if wipe else ""))
        if task_id is not None:
            return json_response({"task": rendered[0]})
        return json_response({"tasks": rendered})

    def versions(self, app_id: str, version: str | None) -> Response:
        m = self.m
        with m.lock:
            if app_id not in m.state.apps:
                raise NotFound.app(app_id)
            if version is None:
                return json_response({"versions": m.state.app_versions(app_id)})
            found = m.state.app_version(app_id, version)
        if found is None:
            raise NotFound.app(app_id, version)
        return json_response(views.app_definition(found))


def split_app_path(m: Marathon, rest: str) -> tuple[str, str | None, str | None]:
    """``/v2/apps/<id>[/restart|/tasks[/<task>]|/versions[/<v>]]``; ids cannot end in those words, but may contain
    them in the middle, so a suffix is only taken as one when the app before it exists."""
    parts = [p for p in rest.split("/") if p]
    candidates: list[tuple[int, str, str | None]] = []
    if parts and parts[-1] == "restart":
        candidates.append((len(parts) - 1, "restart", None))
    if parts and parts[-1] in ("tasks", "versions"):
        candidates.append((len(parts) - 1, parts[-1], None))
    if len(parts) >= 2 and parts[-2] in ("tasks", "versions"):
        candidates.append((len(parts) - 2, parts[-2], parts[-1]))
    with m.lock:
        for cut, op, arg in candidates:
            app_id = "/" + "/".join(parts[:cut])
            if app_id in m.state.apps:
                return app_id, op, arg
    if candidates and candidates[0][2] is None:
        cut, op, _ = candidates[0]
        return "/" + "/".join(parts[:cut]), op, None
    return "/" + "/".join(parts), None, None


Labels = dict[str, str]


def label_selector(text: str | None) -> Callable[[Labels], bool] | None:
    """Marathon's label selector: ``k``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, comma = AND."""
    if not text:
        return None
    terms = [_label_term(item) for item in (i.strip() for i in _split_terms(text)) if item]
    return lambda labels: all(term(labels) for term in terms)


def _split_terms(text: str) -> list[str]:
    """Split on the commas outside parentheses."""
    depth, current, items = 0, "", []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return items


def _label_term(item: str) -> Callable[[Labels], bool]:
    if "!=" in item:
        key, value = (s.strip() for s in item.split("!=", 1))
        return lambda labels: labels.get(key) != value
    if "==" in item:
        key, value = (s.strip() for s in item.split("==", 1))
        return lambda labels: labels.get(key) == value
    if " notin " in item:
        key, values = (s.strip() for s in item.split(" notin ", 1))
        excluded = {v.strip() for v in values.strip("()").split(",")}
        return lambda labels: labels.get(key) not in excluded
    if " in " in item:
        key, values = (s.strip() for s in item.split(" in ", 1))
        allowed = {v.strip() for v in values.strip("()").split(",")}
        return lambda labels: labels.get(key) in allowed
    return lambda labels: item in labels
