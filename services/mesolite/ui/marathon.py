"""Marathon's web UI: apps list, app page (tasks, configuration, versions, scale/restart/suspend/destroy), New App
form with a JSON mode, and deployments with rollback and stop.

Every page and action is a call to Marathon's own v2 API (:class:`LocalApi`): the form's validation is the API's
validation, and its 400/422 ``details`` are put back next to the field whose JSON path they name.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for

from mesolite.ui.common import ApiResult, LocalApi, to_epoch, ui_blueprint

NAME = "marathon_ui"
# An app whose missing instances have waited this long without a launch is shown as Waiting, not Deploying.
WAITING_AFTER_SECONDS = 30.0

# The New App form's fields and the API paths (prefixes) whose errors belong next to them.
FORM_FIELDS = {
    "id": ("/id",),
    "cpus": ("/cpus",),
    "mem": ("/mem",),
    "disk": ("/disk",),
    "instances": ("/instances",),
    "cmd": ("/cmd", "/args"),
    "ports": ("/ports", "/portDefinitions"),
    "uris": ("/uris", "/fetch"),
    "constraints": ("/constraints",),
}


def register_marathon_ui(app: Flask) -> None:
    app.register_blueprint(marathon_ui_blueprint(LocalApi(app)))


def api_path(app_id: str) -> str:
    return "/v2/apps/" + quote(app_id.strip("/"), safe="/")


# ---------------------------------------------------------------------------------------------------- form <-> JSON


def _number(raw: str) -> Any:
    """A number when it reads as one; otherwise the text itself, so that the API (not the UI) judges it."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text else value


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def form_to_app(form: dict[str, str]) -> dict[str, Any]:
    """The form as an app definition: blank fields are left out, so Marathon's defaults apply."""
    app: dict[str, Any] = {"id": form.get("id", "").strip()}
    for name in ("cpus", "mem", "disk", "instances"):
        if form.get(name, "").strip():
            app[name] = _number(form[name])
    if form.get("cmd", "").strip():
        app["cmd"] = form["cmd"]
    if form.get("ports", "").strip():
        app["ports"] = [_number(p) for p in _split(form["ports"])]
    if form.get("uris", "").strip():
        app["uris"] = _split(form["uris"])
    if form.get("constraints", "").strip():
        # ``field:OPERATOR[:value]``, as the original form takes them; the value may itself contain colons.
        app["constraints"] = [c.split(":", 2) for c in _split(form["constraints"])]
    return app


def field_errors(answer: ApiResult, json_mode: bool) -> dict[str, list[str]]:
    """The API's error body as messages per form field; ``_general`` for those no field owns."""
    body = answer.json()
    errors: dict[str, list[str]] = {}
    if not isinstance(body, dict):
        return {"_general": [answer.text or f"HTTP {answer.status}"]}
    details = body.get("details") or []
    if not details:
        return {"_general": [str(body.get("message") or f"HTTP {answer.status}")]}
    for detail in details:
        path = str(detail.get("path", "/"))
        messages = [str(e) for e in detail.get("errors") or []] or [str(body.get("message", ""))]
        field = "json" if json_mode else _field_of(path)
        prefix = f"{path}: " if field in ("json", "_general") else ""
        errors.setdefault(field, []).extend(prefix + m for m in messages)
    return errors


def _field_of(path: str) -> str:
    for field, prefixes in FORM_FIELDS.items():
        if any(path == p or path.startswith(p + "(") or path.startswith(p + "/") for p in prefixes):
            return field
    return "_general"


# ---------------------------------------------------------------------------------------------------- app views


def app_status(app: dict[str, Any], queued: dict[str, Any] | None, now: float) -> str:
    running = int(app.get("tasksRunning") or 0)
    if queued is not None:
        # Waiting: instances to launch, and a backoff delay, or offers that keep not fitting, or none for a while.
        delayed = int((queued.get("delay") or {}).get("timeLeftSeconds") or 0) > 0
        offers = queued.get("processedOffersSummary") or {}
        unused_at, used_at = to_epoch(offers.get("lastUnusedOfferAt")), to_epoch(offers.get("lastUsedOfferAt"))
        starved = unused_at is not None and (used_at is None or unused_at > used_at)
        since = to_epoch(queued.get("since"))
        if delayed or starved or (since is not None and now - since > WAITING_AFTER_SECONDS):
            return "Waiting"
    if app.get("deployments"):
        return "Deploying"
    if int(app.get("instances") or 0) == 0 and running == 0:
        return "Suspended"
    return "Running"


def health_of(app: dict[str, Any]) -> dict[str, int] | None:
    """Healthy / unhealthy / unknown counts over running tasks; None when the app has no health checks."""
    if not app.get("healthChecks"):
        return None
    healthy = int(app.get("tasksHealthy") or 0)
    unhealthy = int(app.get("tasksUnhealthy") or 0)
    running = int(app.get("tasksRunning") or 0)
    return {"healthy": healthy, "unhealthy": unhealthy, "unknown": max(running - healthy - unhealthy, 0)}


def task_health(task: dict[str, Any]) -> str:
    results = task.get("healthCheckResults") or []
    if not results:
        return ""
    return "Healthy" if all(r.get("alive") for r in results) else "Unhealthy"


# ---------------------------------------------------------------------------------------------------- blueprint


def marathon_ui_blueprint(api: LocalApi) -> Blueprint:
    bp = ui_blueprint(NAME, "Marathon", [("Apps", f"{NAME}.apps"), ("Deployments", f"{NAME}.deployments")])

    def must(answer: ApiResult) -> Any:
        if not answer.ok:
            body = answer.json()
            message = body.get("message") if isinstance(body, dict) else None
            abort(answer.status if answer.status in (404, 503) else 502, message or answer.text)
        return answer.json()

    def queue_by_app() -> dict[str, Any]:
        queued = api.get("/v2/queue").json() or {}
        return {item["app"]["id"]: item for item in queued.get("queue", [])}

    @bp.get("/")
    def apps() -> str:
        listed = must(api.get("/v2/apps", embed=["apps.counts", "apps.deployments"]))["apps"]
        queued = queue_by_app()
        now = time.time()
        rows = [
            {"app": a, "status": app_status(a, queued.get(a["id"]), now), "health": health_of(a)}
            for a in sorted(listed, key=lambda a: a["id"])
        ]
        return render_template("ui/marathon/apps.html", rows=rows)

    @bp.route("/ui/apps/new", methods=["GET", "POST"])
    def new_app() -> Any:
        form = {"cpus": "0.1", "mem": "16", "disk": "0", "instances": "1", "mode": "form"}
        errors: dict[str, list[str]] = {}
        status = 200
        if request.method == "POST":
            form = {k: v for k, v in request.form.items()}
            json_mode = form.get("mode") == "json"
            body: Any = form.get("json", "") if json_mode else form_to_app(form)
            answer = api.call("POST", "/v2/apps", body=body)
            if answer.status == 201:
                created = answer.json() or {}
                return redirect(url_for(f"{NAME}.app_page", app_id=str(created.get("id", "")).strip("/")))
            errors = field_errors(answer, json_mode)
            status = 422 if answer.status in (400, 422) else answer.status
        if "json" not in form:
            form["json"] = json.dumps(
                form_to_app(form) | ({"cmd": "sleep 3600"} if not form.get("cmd") else {}), indent=2
            )
        return render_template("ui/marathon/new_app.html", form=form, errors=errors), status

    @bp.route("/ui/apps/<path:app_id>", methods=["GET", "POST"])
    def app_page(app_id: str) -> Any:
        app_id = "/" + app_id.strip("/")
        error = None
        retry: dict[str, str] | None = None
        status = 200
        if request.method == "POST":
            answer = _act(app_id, request.form)
            if answer.ok:
                if request.form.get("action") == "destroy":
                    return redirect(url_for(f"{NAME}.apps"))
                return redirect(url_for(f"{NAME}.app_page", app_id=app_id.strip("/")))
            body = answer.json()
            error = body.get("message") if isinstance(body, dict) else answer.text
            if isinstance(body, dict) and body.get("details"):
                error = f"{error}: " + "; ".join(
                    f"{d.get('path')}: {', '.join(d.get('errors') or [])}" for d in body["details"]
                )
            if answer.status == 409:
                retry = {**request.form, "force": "true"}
            status = answer.status
        shown = must(api.get(api_path(app_id)))["app"]
        versions = must(api.get(api_path(app_id) + "/versions"))["versions"]
        queued = queue_by_app().get(app_id)
        return (
            render_template(
                "ui/marathon/app.html",
                app=shown,
                status=app_status(shown, queued, time.time()),
                health=health_of(shown),
                tasks=sorted(shown.get("tasks", []), key=lambda t: t.get("stagedAt") or ""),
                task_health=task_health,
                versions=versions,
                config=_definition(shown),
                error=error,
                retry=retry,
            ),
            status,
        )

    def _act(app_id: str, form: Any) -> ApiResult:
        action = form.get("action")
        force = {"force": "true"} if form.get("force") == "true" else {}
        path = api_path(app_id)
        if action == "scale":
            return api.call("PUT", path, body={"instances": _number(form.get("instances", ""))}, query=force)
        if action == "suspend":
            return api.call("PUT", path, body={"instances": 0}, query=force)
        if action == "restart":
            return api.call("POST", path + "/restart", query=force)
        if action == "destroy":
            return api.call("DELETE", path, query=force)
        if action == "rollback":
            return api.call("PUT", path, body={"version": form.get("version", "")}, query=force)
        if action in ("kill", "kill_and_scale"):
            task = quote(form.get("task_id", ""), safe="")
            query = {"scale": "true" if action == "kill_and_scale" else "false", **force}
            return api.call("DELETE", f"{path}/tasks/{task}", query=query)
        abort(400, f"Unknown action {action!r}")

    @bp.route("/ui/deployments", methods=["GET", "POST"])
    def deployments() -> Any:
        error = None
        status = 200
        if request.method == "POST":
            deployment_id = quote(request.form.get("deployment_id", ""), safe="")
            force = "true" if request.form.get("action") == "stop" else "false"
            answer = api.call("DELETE", f"/v2/deployments/{deployment_id}", query={"force": force})
            if answer.ok:
                return redirect(url_for(f"{NAME}.deployments"))
            body = answer.json()
            error = body.get("message") if isinstance(body, dict) else answer.text
            status = answer.status
        listed = must(api.get("/v2/deployments"))
        return render_template("ui/marathon/deployments.html", deployments=listed, error=error), status

    @bp.errorhandler(400)
    @bp.errorhandler(404)
    @bp.errorhandler(502)
    @bp.errorhandler(503)
    def _error(exc: Any) -> tuple[str, int]:
        return render_template("ui/error.html", message=getattr(exc, "description", str(exc))), exc.code

    return bp


def _definition(app: dict[str, Any]) -> dict[str, Any]:
    """The app as configured: what ``GET /v2/apps/{id}`` adds at run time (tasks, counts) left out."""
    runtime = {"tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments"}
    return {k: v for k, v in app.items() if k not in runtime and k != "lastTaskFailure"}
