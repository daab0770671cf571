"""Marathon's v2 REST API: apps, groups, tasks, deployments, queue, info, events, in Marathon 1.4–1.6's shapes.

Every answer is one that existing clients (marathon-python with its strict models, marathon-lb, Bamboo, the
haproxy-marathon-bridge script) parse; every bad request gets Marathon's error shape: 400 ``Invalid JSON``,
422 ``Object is not valid`` with ``details``, 404/409 with ``message``.
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, request

from mesolite.core.http import json_response, text_response
from mesolite.core.server import SERVICE_KEY
from mesolite.marathon import pathid, views
from mesolite.marathon.appdef import BadJson, Invalid, merge_update, normalize_app
from mesolite.marathon.election import Leadership, SoleLeadership, build_leadership
from mesolite.marathon.proxy import LEADER, NO_LEADER, LeaderProxy
from mesolite.marathon.service import MARATHON_VERSION, ApiError, Marathon, MarathonConfig, Root, not_found
from mesolite.marathon.state import MAX_VERSIONS, Deployment

log = logging.getLogger(__name__)


class _MergeSlashes:
    """marathon-python asks for ``/v2/apps//my-app`` (it joins ``/v2/apps/`` and an absolute id): collapse the
    double slash instead of redirecting, which some clients do not follow for DELETE."""

    def __init__(self, wsgi: Callable[..., Any]) -> None:
        self.wsgi = wsgi

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        while "//" in path:
            path = path.replace("//", "/")
        environ["PATH_INFO"] = path
        return self.wsgi(environ, start_response)


def qbool(name: str, default: bool = False) -> bool:
    """Query booleans as JAX-RS reads them: case-insensitive ``true``; marathon-python sends ``True``."""
    value = request.args.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() == "true"


def body() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadJson("/", "error.expected.jsobject")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadJson("/", f"Unexpected character: {exc}") from None


def deployed(result: Deployment | list[Any], status: int = 200) -> Response:
    assert isinstance(result, Deployment)
    return json_response(
        {"deploymentId": result.id, "version": result.version},
        status=status,
        headers={"Marathon-Deployment-Id": result.id},
    )


def wants_text() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/plain"])
    return best == "text/plain"


def create_app(config: MarathonConfig, marathon: Marathon | None = None, leadership: Leadership | None = None) -> Flask:
    """The API of one instance. Tests may hand in the service object (then it leads alone) or a leadership."""
    app = Flask("mesolite.marathon")
    election: Leadership = leadership or (build_leadership(config) if marathon is None else SoleLeadership(marathon))
    m = election.marathon
    proxy = LeaderProxy(election.host_port, config.leader_proxy_connection_timeout, config.leader_proxy_read_timeout)
    app.extensions[SERVICE_KEY] = election
    app.wsgi_app = _MergeSlashes(app.wsgi_app)  # type: ignore[method-assign]

    def current_leader() -> str | None:
        """Waits, as Marathon does (10 × 250 ms), while leadership is in flux: ZooKeeper names nobody, or names this
        instance before it has taken over. None: serve here; otherwise the leader to forward to."""
        for attempt in range(11):
            if m.leading:
                return None
            leader = election.leader()
            if leader is not None and leader != election.host_port:
                return leader
            if attempt < 10:
                time.sleep(0.25)
        raise ApiError(503, NO_LEADER)

    @app.before_request
    def _route() -> Response | None:
        if request.path == "/ping" or (request.path == "/v2/leader" and request.method == "GET"):
            return None  # about this instance itself
        leader = current_leader()
        if leader is None:
            return None
        if request.path == "/v2/events":
            return proxy.redirect(leader, request)
        return proxy.forward(leader, request)

    @app.after_request
    def _leader_header(response: Response) -> Response:
        if m.leading and LEADER not in response.headers:
            response.headers[LEADER] = f"http://{election.host_port}"
        return response

    @app.errorhandler(BadJson)
    def _bad_json(exc: BadJson) -> Response:
        return json_response(exc.body(), status=400)

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> Response:
        return json_response(exc.body(), status=422)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_response(exc.body, status=exc.status)

    @app.errorhandler(404)
    def _unknown(_exc: Exception) -> Response:
        return json_response({"message": f"Resource not found: {request.path}"}, status=404)

    @app.errorhandler(405)
    def _method(_exc: Exception) -> Response:
        return json_response({"message": "HTTP 405 Method Not Allowed"}, status=405)

    # ------------------------------------------------------------------ system

    @app.get("/ping")
    def ping() -> Response:
        if request.accept_mimetypes.best_match(["text/plain", "application/json"]) == "application/json" and (
            "application/json" in request.headers.get("Accept", "")
        ):
            return json_response("pong")
        return text_response("pong")

    @app.get("/metrics")
    def metrics() -> Response:
        with m.lock:
            tasks = list(m.state.tasks.values())
            gauges = {
                "service.mesosphere.marathon.app.count": len(m.state.apps),
                "service.mesosphere.marathon.group.count": len(m.state.groups),
                "service.mesosphere.marathon.task.running.count": sum(1 for t in tasks if t.running),
                "service.mesosphere.marathon.task.staged.count": sum(1 for t in tasks if not t.running),
                "service.mesosphere.marathon.deployments.active": len(m.state.deployments),
                "service.mesosphere.marathon.uptime": int((__import__("time").time() - m.started_at) * 1000),
                "service.mesosphere.marathon.leaderDuration": int((__import__("time").time() - m.started_at) * 1000),
                "service.mesosphere.marathon.events.sse.connections": m.events.sse_count,
            }
            counters = {
                "service.mesosphere.marathon.tasks.launched": m.scheduler.metrics["launched"],
                "service.mesosphere.marathon.offers.revived": m.scheduler.metrics["revives"],
                "service.mesosphere.marathon.events.published": m.events.published,
            }
        return json_response(
            {
                "version": "4.0.0",
                "gauges": {k: {"value": v} for k, v in gauges.items()},
                "counters": {k: {"count": v} for k, v in counters.items()},
                "histograms": {},
                "meters": {},
                "timers": {},
            }
        )

    @app.get("/v2/info")
    def info() -> Response:
        leader = election.host_port
        return json_response(
            {
                "name": "marathon",
                "version": MARATHON_VERSION,
                "buildref": "mesolite",
                "elected": True,
                "leader": leader,
                "frameworkId": m.state.framework_id,
                "marathon_config": {
                    "checkpoint": True,
                    "executor": "//cmd",
                    "failover_timeout": int(config.failover_timeout),
                    "framework_name": config.framework_name,
                    "ha": bool(config.zk),
                    "hostname": config.hostname,
                    "local_port_min": config.local_port_min,
                    "local_port_max": config.local_port_max,
                    "master": config.master,
                    "mesos_role": config.mesos_role,
                    "mesos_user": config.mesos_user,
                    "webui_url": config.webui_url,
                    "reconciliation_initial_delay": 0,
                    "reconciliation_interval": int(config.reconciliation_interval * 1000),
                    "task_launch_timeout": int(config.task_launch_timeout * 1000),
                    "max_instances_per_offer": config.max_instances_per_offer,
                    "decline_offer_duration": int(config.decline_offer_duration * 1000),
                    "features": [],
                },
                "zookeeper_config": {
                    "zk": config.zk,
                    "zk_timeout": int(config.zk_timeout * 1000),
                    "zk_session_timeout": int(config.zk_session_timeout * 1000),
                    "zk_max_versions": MAX_VERSIONS,
                },
                "http_config": {"http_port": config.http_port, "https_port": 8443},
                "event_subscriber": (
                    {"type": "http_callback", "http_endpoints": list(m.state.subscribers)}
                    if config.event_subscriber == "http_callback"
                    else None
                ),
            }
        )

    @app.get("/v2/leader")
    def leader() -> Response:
        current = election.host_port if m.leading else election.leader()
        if current is None:
            return json_response({"message": "There is no leader"}, status=404)
        return json_response({"leader": current})

    @app.delete("/v2/leader")
    def abdicate() -> Response:
        election.abdicate()
        return json_response({"message": "Leadership abdicated"})

    # ------------------------------------------------------------------ apps

    @app.get("/v2/apps")
    def list_apps() -> Response:
        embed = views.parse_embed(request.args.getlist("embed"))
        cmd = request.args.get("cmd")
        ident = request.args.get("id")
        selector = _label_selector(request.args.get("label"))
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

    @app.post("/v2/apps")
    def post_app() -> Response:
        raw = body()
        app_def = normalize_app(raw)
        force = qbool("force")

        def change(root: Root) -> None:
            if app_def["id"] in root.apps:
                raise ApiError(409, f"An app with id [{app_def['id']}] already exists.")
            if app_def["id"] in root.groups:
                raise ApiError(409, f"A group with id [{app_def['id']}] already exists.")
            root.put_app(app_def)

        deployment = m.deploy(change, force=force)
        assert isinstance(deployment, Deployment)
        with m.lock:
            created = views.app_json(m, m.state.apps[app_def["id"]], {"tasks", "lastTaskFailure"})
            m.events.publish("api_post_event", clientIp=request.remote_addr, uri="/v2/apps", appDefinition=created)
        created["tasks"] = []
        return json_response(
            created,
            status=201,
            headers={"Location": f"/v2/apps{app_def['id']}", "Marathon-Deployment-Id": deployment.id},
        )

    @app.route("/v2/apps", methods=["PUT", "PATCH"])
    def put_apps() -> Response:
        raw = body()
        if not isinstance(raw, list):
            raise BadJson("/", "error.expected.jsarray")
        partial = qbool("partialUpdate", True) or request.method == "PATCH"

        def change(root: Root) -> None:
            for i, item in enumerate(raw):
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    raise Invalid([(f"({i})/id", "must not be empty")])
                app_id = pathid.canonical(item["id"])
                existing = root.apps.get(app_id)
                if existing is None and request.method == "PATCH":
                    raise not_found("App", app_id)
                _apply_app(root, app_id, item, existing, partial)

        return deployed(m.deploy(change, force=qbool("force")))

    @app.route("/v2/apps/<path:rest>", methods=["GET", "PUT", "PATCH", "DELETE", "POST"])
    def app_resource(rest: str) -> Response:
        app_id, op, arg = _split_app_path(m, rest)
        if op == "restart" and request.method == "POST":
            return _restart(app_id)
        if op == "tasks":
            if request.method == "GET":
                return _app_tasks(app_id)
            if request.method == "DELETE":
                return _kill_app_tasks(app_id, arg)
        if op == "versions" and request.method == "GET":
            return _versions(app_id, arg)
        if op is None:
            if request.method == "GET":
                return _show(app_id)
            if request.method in ("PUT", "PATCH"):
                return _put_app(app_id)
            if request.method == "DELETE":
                return _delete_app(app_id)
        return json_response({"message": "HTTP 405 Method Not Allowed"}, status=405)

    def _show(app_id: str) -> Response:
        embed = views.parse_embed(request.args.getlist("embed")) | {"tasks", "counts", "deployments", "lastTaskFailure"}
        with m.lock:
            if app_id.endswith("/*"):
                group = app_id[: -len("/*")] or "/"
                apps = [
                    views.app_json(m, a, embed) for a_id, a in m.state.apps.items() if pathid.is_ancestor(group, a_id)
                ]
                return json_response({"*": apps})
            app_def = m.state.apps.get(app_id)
            if app_def is None:
                raise ApiError(404, f"App '{app_id}' does not exist")
            return json_response({"app": views.app_json(m, app_def, embed)})

    def _apply_app(
        root: Root, app_id: str, raw: dict[str, Any], existing: dict[str, Any] | None, partial: bool
    ) -> None:
        if set(raw) - {"id"} == {"version"}:
            with m.lock:
                old = m.state.app_version(app_id, str(raw["version"]))
            if old is None:
                raise ApiError(404, f"App '{app_id}' does not exist in version {raw['version']}")
            restored = copy.deepcopy(old)
            restored.pop("version", None)
            restored.pop("versionInfo", None)
            root.put_app(restored)
            return
        merged = merge_update(existing, raw) if existing is not None and partial else dict(raw)
        merged["id"] = app_id
        root.put_app(normalize_app(merged))

    def _put_app(app_id: str) -> Response:
        raw = body()
        if not isinstance(raw, dict):
            raise BadJson("/", "error.expected.jsobject")
        partial = qbool("partialUpdate", True) or request.method == "PATCH"
        with m.lock:
            existed = app_id in m.state.apps
        if not existed and request.method == "PATCH":
            raise ApiError(404, f"App '{app_id}' does not exist")
        for error in pathid.segment_errors(app_id):
            raise Invalid([("/id", error)])

        def change(root: Root) -> None:
            _apply_app(root, app_id, raw, root.apps.get(app_id), partial)

        deployment = m.deploy(change, force=qbool("force"))
        with m.lock:
            if app_id in m.state.apps:
                m.events.publish(
                    "api_post_event",
                    clientIp=request.remote_addr,
                    uri=f"/v2/apps{app_id}",
                    appDefinition=views.app_definition(m.state.apps[app_id]),
                )
        return deployed(deployment, status=200 if existed else 201)

    def _delete_app(app_id: str) -> Response:
        def change(root: Root) -> None:
            if app_id not in root.apps:
                raise ApiError(404, f"App '{app_id}' does not exist")
            root.remove_app(app_id)

        with m.lock:
            definition = m.state.apps.get(app_id)
        deployment = m.deploy(change, force=qbool("force", True))
        if definition is not None:
            m.events.publish(
                "api_post_event",
                clientIp=request.remote_addr,
                uri=f"/v2/apps{app_id}",
                appDefinition=views.app_definition(definition),
            )
        return deployed(deployment)

    def _restart(app_id: str) -> Response:
        def change(root: Root) -> None:
            if app_id not in root.apps:
                raise ApiError(404, f"App '{app_id}' does not exist")
            root.apps[app_id] = dict(root.apps[app_id])
            root.restart.add(app_id)

        return deployed(m.deploy(change, force=qbool("force")))

    def _app_tasks(app_id: str) -> Response:
        with m.lock:
            app_def = m.state.apps.get(app_id)
            if app_def is None:
                raise ApiError(404, f"App '{app_id}' does not exist")
            if wants_text():
                return text_response(views.tasks_text(m, [app_def]))
            return json_response({"tasks": [views.task_json(m, t, app_def) for t in m.state.app_tasks(app_id)]})

    def _kill_app_tasks(app_id: str, task_id: str | None) -> Response:
        scale, wipe = qbool("scale"), qbool("wipe")
        with m.lock:
            app_def = m.state.apps.get(app_id)
            if app_def is None:
                raise ApiError(404, f"App '{app_id}' does not exist")
            tasks = m.state.app_tasks(app_id)
            if task_id is not None:
                tasks = [t for t in tasks if t.id == task_id]
                if not tasks:
                    raise ApiError(404, f"Task '{task_id}' does not exist")
            host = request.args.get("host")
            if host and host != "*":
                tasks = [t for t in tasks if t.host == host]
            rendered = [views.task_json(m, t, app_def) for t in tasks]
        if scale:
            return deployed(_kill_and_scale({app_id: [t.id for t in tasks]}))
        with m.lock:
            for task in tasks:
                m.kill_task(task, "killed over the API" + (" (wipe)" if wipe else ""))
        if task_id is not None:
            return json_response({"task": rendered[0]})
        return json_response({"tasks": rendered})

    def _kill_and_scale(kills: dict[str, list[str]]) -> Deployment:
        def change(root: Root) -> None:
            for app_id, ids in kills.items():
                if app_id not in root.apps or not ids:
                    continue
                updated = dict(root.apps[app_id])
                updated["instances"] = max(0, updated["instances"] - len(ids))
                root.apps[app_id] = updated
                root.kills[app_id] = ids

        result = m.deploy(change, force=True)
        assert isinstance(result, Deployment)
        return result

    def _versions(app_id: str, version: str | None) -> Response:
        with m.lock:
            if app_id not in m.state.apps:
                raise ApiError(404, f"App '{app_id}' does not exist")
            if version is None:
                return json_response({"versions": m.state.app_versions(app_id)})
            found = m.state.app_version(app_id, version)
        if found is None:
            raise ApiError(404, f"App '{app_id}' does not exist in version {version}")
        return json_response(views.app_definition(found))

    # ------------------------------------------------------------------ tasks

    @app.get("/v2/tasks")
    def list_tasks() -> Response:
        statuses = {s.lower() for s in request.args.getlist("status") + request.args.getlist("status[]")}
        with m.lock:
            if wants_text():
                return text_response(views.tasks_text(m, list(m.state.apps.values())))
            out = []
            for task in m.state.tasks.values():
                if statuses:
                    kind = (
                        "running"
                        if task.running
                        else "staging"
                        if task.state in ("TASK_STAGING", "TASK_STARTING")
                        else ""
                    )
                    if kind not in statuses:
                        continue
                out.append(views.task_json(m, task, m.state.apps.get(task.app_id)))
        return json_response({"tasks": out})

    @app.post("/v2/tasks/delete")
    def delete_tasks() -> Response:
        raw = body()
        ids = raw.get("ids") if isinstance(raw, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadJson("/ids", "error.expected.jsarray")
        with m.lock:
            tasks = []
            for task_id in ids:
                task = m.state.tasks.get(task_id)
                if task is None:
                    raise ApiError(400, f"Invalid task id '{task_id}'")
                tasks.append(task)
            rendered = [views.task_json(m, t, m.state.apps.get(t.app_id)) for t in tasks]
        if qbool("scale"):
            kills: dict[str, list[str]] = {}
            for task in tasks:
                kills.setdefault(task.app_id, []).append(task.id)
            return deployed(_kill_and_scale(kills))
        with m.lock:
            for task in tasks:
                m.kill_task(task, "killed over the API")
        return json_response({"tasks": rendered})

    # ------------------------------------------------------------------ groups

    @app.route("/v2/groups", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def groups_root() -> Response:
        return group_resource("")

    @app.route("/v2/groups/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def group_resource(rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        version: str | None = None
        versions = False
        if len(parts) >= 1 and parts[-1] == "versions":
            parts, versions = parts[:-1], True
        elif len(parts) >= 2 and parts[-2] == "versions":
            parts, version = parts[:-2], parts[-1]
        group_id = "/" + "/".join(parts)
        if version is not None and request.method == "PUT":
            return _rollback_group(group_id, version)
        if versions or version is not None:
            return _group_versions(group_id, version)
        if request.method == "GET":
            return _show_group(group_id)
        if request.method == "DELETE":
            return _delete_group(group_id)
        if request.method == "POST":
            return _post_group(group_id)
        return _put_group(group_id)

    def _show_group(group_id: str) -> Response:
        embed_args = request.args.getlist("embed")
        group_embed = {e[len("group.") :] for e in embed_args if e in ("group.groups", "group.apps")}
        if not embed_args:
            group_embed = {"groups", "apps"}
        app_embed = views.parse_embed([e for e in embed_args if e.startswith("group.apps.")])
        if any(e.startswith("group.apps.") for e in embed_args):
            group_embed.add("apps")
        with m.lock:
            if group_id not in m.state.groups:
                raise ApiError(404, f"Group '{group_id}' does not exist")
            return json_response(views.group_json(m, group_id, app_embed, group_embed))

    def _group_update(root: Root, raw: Any, group_id: str, replace: bool) -> None:
        """Apply a GroupUpdate to ``group_id``: dependencies, apps and subgroups given replace the old ones."""
        if not isinstance(raw, dict):
            raise BadJson("/", "error.expected.jsobject")
        group = dict(root.groups.get(group_id) or {"id": group_id, "dependencies": [], "version": None})
        if "dependencies" in raw:
            deps = raw["dependencies"]
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise BadJson("/dependencies", "error.expected.jsarray")
            group["dependencies"] = [pathid.canonical(d, pathid.parent(group_id)) for d in deps]
        root.groups[group_id] = group
        if "apps" in raw:
            apps = raw["apps"]
            if not isinstance(apps, list):
                raise BadJson("/apps", "error.expected.jsarray")
            given: set[str] = set()
            for i, item in enumerate(apps):
                if not isinstance(item, dict):
                    raise BadJson(f"/apps({i})", "error.expected.jsobject")
                try:
                    app_def = normalize_app(item, base=group_id)
                except Invalid as exc:
                    raise Invalid([(f"/apps({i}){p if p != '/' else ''}", e) for p, e in exc.errors]) from None
                existing = root.apps.get(app_def["id"])
                if existing is not None and not replace:
                    merged = merge_update(existing, item)
                    merged["id"] = app_def["id"]
                    app_def = normalize_app(merged)
                root.put_app(app_def, group_id)
                given.add(app_def["id"])
            if replace:
                for app_id in [a for a, g in root.app_group.items() if g == group_id and a not in given]:
                    root.remove_app(app_id)
        if "groups" in raw:
            subgroups = raw["groups"]
            if not isinstance(subgroups, list):
                raise BadJson("/groups", "error.expected.jsarray")
            given_groups: set[str] = set()
            for i, item in enumerate(subgroups):
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    raise Invalid([(f"/groups({i})/id", "must not be empty")])
                for error in pathid.segment_errors(item["id"]):
                    raise Invalid([(f"/groups({i})/id", error)])
                child = pathid.canonical(item["id"], group_id)
                if not pathid.is_ancestor(group_id, child):
                    raise Invalid(
                        [
                            (
                                f"/groups({i})/id",
                                f"identifier {child} is not child of {group_id}. Hint: use relative paths.",
                            )
                        ]
                    )
                given_groups.add(child)
                _group_update(root, item, child, replace)
            if replace:
                for gid in [g for g in root.groups if g != group_id and pathid.parent(g) == group_id]:
                    if gid not in given_groups:
                        root.remove_group(gid)

    def _post_group(base: str) -> Response:
        raw = body()
        if not isinstance(raw, dict):
            raise BadJson("/", "error.expected.jsobject")
        raw_id = raw.get("id", "")
        if raw_id is not None and not isinstance(raw_id, str):
            raise BadJson("/id", "error.expected.jsstring")
        for error in pathid.segment_errors(raw_id or ""):
            raise Invalid([("/id", error)])
        group_id = pathid.canonical(raw_id or "", base or "/")

        def change(root: Root) -> None:
            if group_id in root.groups and (group_id != "/" or root.apps):
                raise ApiError(409, f"Group {group_id} is already created. Use PUT to change this group.")
            _group_update(root, raw, group_id, replace=True)

        return deployed(m.deploy(change, force=qbool("force"), group_version_of=group_id), status=201)

    def _put_group(group_id: str) -> Response:
        raw = body()
        if not isinstance(raw, dict):
            raise BadJson("/", "error.expected.jsobject")
        if isinstance(raw.get("id"), str) and raw["id"]:
            group_id = pathid.canonical(raw["id"], group_id if group_id != "/" else "/")
            if raw["id"].startswith("/"):
                group_id = pathid.canonical(raw["id"])
        force, dry_run = qbool("force"), qbool("dryRun")
        if "version" in raw:
            with m.lock:
                snapshot = m.state.group_version(group_id, str(raw["version"]))
            if snapshot is None:
                raise ApiError(404, f"Group '{group_id}' does not exist in version {raw['version']}")

            def rollback(root: Root) -> None:
                m.restore_group(root, group_id, snapshot)

            return _group_result(m.deploy(rollback, force=force, dry_run=dry_run, group_version_of=group_id))
        if "scaleBy" in raw:
            factor = raw["scaleBy"]
            if not isinstance(factor, int | float) or isinstance(factor, bool) or factor < 0:
                raise Invalid([("/scaleBy", "must be a non-negative number")])

            def scale(root: Root) -> None:
                if group_id not in root.groups:
                    raise ApiError(404, f"Group '{group_id}' does not exist")
                for app_id in root.apps_under(group_id):
                    scaled = dict(root.apps[app_id])
                    scaled["instances"] = int(-(-scaled["instances"] * factor // 1))
                    root.apps[app_id] = scaled

            return _group_result(m.deploy(scale, force=force, dry_run=dry_run, group_version_of=group_id))

        def update(root: Root) -> None:
            _group_update(root, raw, group_id, replace=True)

        return _group_result(m.deploy(update, force=force, dry_run=dry_run, group_version_of=group_id))

    def _rollback_group(group_id: str, version: str) -> Response:
        with m.lock:
            snapshot = m.state.group_version(group_id, version)
        if snapshot is None:
            raise ApiError(404, f"Group '{group_id}' does not exist in version {version}")
        return deployed(
            m.deploy(
                lambda root: m.restore_group(root, group_id, snapshot), force=qbool("force"), group_version_of=group_id
            )
        )

    def _group_result(result: Deployment | list[Any]) -> Response:
        if isinstance(result, list):
            return json_response(
                {"steps": [{"actions": [{"action": a["action"], "app": a["app"]} for a in s]} for s in result]}
            )
        return deployed(result)

    def _delete_group(group_id: str) -> Response:
        def change(root: Root) -> None:
            if group_id not in root.groups:
                raise ApiError(404, f"Group '{group_id}' does not exist")
            root.remove_group(group_id)

        return deployed(m.deploy(change, force=qbool("force")))

    def _group_versions(group_id: str, version: str | None) -> Response:
        with m.lock:
            if group_id not in m.state.groups:
                raise ApiError(404, f"Group '{group_id}' does not exist")
            if version is None:
                return json_response(m.state.group_versions(group_id))
            snapshot = m.state.group_version(group_id, version)
        if snapshot is None:
            raise ApiError(404, f"Group '{group_id}' does not exist in version {version}")
        return json_response(_snapshot_json(group_id, snapshot, version))

    def _snapshot_json(group_id: str, snapshot: dict[str, Any], version: str) -> dict[str, Any]:
        groups = snapshot["groups"]

        def render(gid: str) -> dict[str, Any]:
            group = groups.get(gid) or {"dependencies": []}
            return {
                "id": gid,
                "apps": [
                    views.app_definition(a)
                    for a_id, a in sorted(snapshot["apps"].items())
                    if snapshot["app_group"].get(a_id) == gid
                ],
                "groups": [render(g) for g in sorted(groups) if g != gid and pathid.parent(g) == gid],
                "dependencies": group.get("dependencies") or [],
                "version": version,
                "pods": [],
            }

        return render(group_id)

    # ------------------------------------------------------------------ deployments, queue

    @app.get("/v2/deployments")
    def list_deployments() -> Response:
        details = qbool("details")
        with m.lock:
            out = []
            for deployment in m.state.deployments.values():
                entry = views.deployment_json(m, deployment)
                if details:
                    for action in entry["currentActions"]:
                        action["waitingFor"] = views.waiting_reason(m, action["app"])
                out.append(entry)
        return json_response(out)

    @app.delete("/v2/deployments/<deployment_id>")
    def delete_deployment(deployment_id: str) -> Response:
        force = qbool("force")
        result = m.cancel_deployment(deployment_id, force)
        if result is None:
            return Response(status=202)
        return deployed(result)

    @app.get("/v2/queue")
    def get_queue() -> Response:
        embed = request.args.getlist("embed")
        with m.lock:
            return json_response(views.queue_json(m, "lastUnusedOffers" in embed))

    @app.delete("/v2/queue/<path:rest>")
    def reset_delay(rest: str) -> Response:
        if not rest.endswith("/delay"):
            return json_response({"message": f"Resource not found: {request.path}"}, status=404)
        app_id = pathid.canonical(rest[: -len("/delay")])
        with m.lock:
            if app_id not in m.state.apps:
                raise ApiError(404, f"App '{app_id}' does not exist")
            m.scheduler.reset_delay(app_id)
        m.wake()
        return Response(status=204)

    # ------------------------------------------------------------------ events

    @app.get("/v2/events")
    def events() -> Response:
        if "text/event-stream" not in request.headers.get("Accept", ""):
            return json_response({"message": "HTTP 406 Not Acceptable: use 'Accept: text/event-stream'"}, status=406)
        subscription = m.events.subscribe(request.args.getlist("event_type"), request.remote_addr or "")

        def stream() -> Iterator[str]:
            try:
                yield "\n"  # sends the headers now, even when the filter holds back event_stream_attached
                while True:
                    try:
                        event = subscription.queue.get(timeout=15.0)
                    except queue.Empty:
                        yield "\n"  # keeps proxies and idle timeouts from closing the stream
                        continue
                    if event is None:
                        return
                    yield f"event: {event['eventType']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
            finally:
                m.events.unsubscribe(subscription)

        return Response(
            stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @app.route("/v2/eventSubscriptions", methods=["GET", "POST", "DELETE"])
    def event_subscriptions() -> Response:
        if config.event_subscriber != "http_callback":
            return json_response(
                {
                    "message": "http event callback system is not running on this Marathon instance. "
                    'Please re-start this instance with "--event_subscriber http_callback".'
                },
                status=400,
            )
        if request.method == "GET":
            return json_response({"callbackUrls": list(m.state.subscribers)})
        url = request.args.get("callbackUrl")
        if not url:
            raise Invalid([("/callbackUrl", "must not be empty")])
        with m.lock:
            urls = list(m.state.subscribers)
            if request.method == "POST" and url not in urls:
                urls.append(url)
            elif request.method == "DELETE" and url in urls:
                urls.remove(url)
            m.state.set_subscribers(urls)
            m.events.set_callbacks(urls)
        event_type = "subscribe_event" if request.method == "POST" else "unsubscribe_event"
        event = m.events.publish(event_type, clientIp=request.remote_addr, callbackUrl=url)
        return json_response({"callbackUrl": url, "clientIp": request.remote_addr, "eventType": event["eventType"]})

    from mesolite.ui.marathon import register_marathon_ui  # the web UI: services/mesolite/ui/

    register_marathon_ui(app)
    return app


def _split_app_path(m: Marathon, rest: str) -> tuple[str, str | None, str | None]:
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


def _label_selector(text: str | None) -> Callable[[dict[str, str]], bool] | None:
    """Marathon's label selector: ``k``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, comma = AND."""
    if not text:
        return None
    terms: list[Callable[[dict[str, str]], bool]] = []
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
    for item in (i.strip() for i in items if i.strip()):
        if "!=" in item:
            key, value = (s.strip() for s in item.split("!=", 1))
            terms.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "==" in item:
            key, value = (s.strip() for s in item.split("==", 1))
            terms.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif " notin " in item:
            key, values = (s.strip() for s in item.split(" notin ", 1))
            allowed = {v.strip() for v in values.strip("()").split(",")}
            terms.append(lambda labels, k=key, a=allowed: labels.get(k) not in a)
        elif " in " in item:
            key, values = (s.strip() for s in item.split(" in ", 1))
            allowed = {v.strip() for v in values.strip("()").split(",")}
            terms.append(lambda labels, k=key, a=allowed: labels.get(k) in a)
        else:
            terms.append(lambda labels, k=item: k in labels)
    return lambda labels: all(term(labels) for term in terms)
