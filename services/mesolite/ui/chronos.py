"""Chronos' web UI: totals, a searchable job list ordered by last run, job pages (run now, edit, delete, stats),
the new/edit job form, and the dependency graph.

Everything goes through Chronos' own ``/v1/scheduler`` API (:class:`LocalApi`). Chronos reports a bad job as one
message (``{"status": "Bad Request", "message": ...}``), so the form puts it next to the field the message names.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for

from mesolite.ui.common import ApiResult, LocalApi, to_epoch, ui_blueprint

NAME = "chronos_ui"
API = "/v1/scheduler"

# (form field, words in Chronos' message that point at it), most specific first.
ERROR_FIELDS = (
    ("scheduleTimeZone", ("scheduletimezone", "time zone")),
    ("schedule", ("schedule",)),
    ("parents", ("parent",)),
    ("cpus", ("'cpus'",)),
    ("mem", ("'mem'",)),
    ("disk", ("'disk'",)),
    ("retries", ("retries",)),
    ("command", ("command",)),
    ("owner", ("owner",)),
    ("name", ("name",)),
)
TEXT_FIELDS = ("name", "command", "owner", "ownerName", "description", "schedule", "scheduleTimeZone", "runAsUser")
NUMBER_FIELDS = ("cpus", "mem", "disk", "retries")
FLAG_FIELDS = ("shell", "disabled", "concurrent", "softError")


def register_chronos_ui(app: Flask) -> None:
    app.register_blueprint(chronos_ui_blueprint(LocalApi(app)))


def job_path(name: str) -> str:
    return f"{API}/job/{quote(name, safe='')}"


# ---------------------------------------------------------------------------------------------------- form <-> JSON


def job_to_form(job: dict[str, Any]) -> dict[str, str]:
    form = {name: str(job.get(name) or "") for name in TEXT_FIELDS}
    for name in NUMBER_FIELDS:
        value = job.get(name)
        form[name] = "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    for name in FLAG_FIELDS:
        form[name] = "on" if job.get(name) else ""
    form["parents"] = ", ".join(job.get("parents") or [])
    return form


def form_to_job(form: dict[str, str], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The form over the job as stored (fields the form does not show, like a container, are kept).

    Numbers that do not read as numbers are sent as typed: judging them is Chronos' job, and its message is shown."""
    job: dict[str, Any] = dict(existing or {})
    for name in TEXT_FIELDS:
        value = form.get(name, "").strip() if name != "command" else form.get(name, "")
        if value or name in job:
            job[name] = value
    for name in NUMBER_FIELDS:
        raw = form.get(name, "").strip()
        if raw:
            try:
                number = float(raw)
                job[name] = int(number) if name == "retries" and number.is_integer() else number
            except ValueError:
                job[name] = raw
    for name in FLAG_FIELDS:
        job[name] = form.get(name) == "on"
    parents = [p.strip() for p in form.get("parents", "").split(",") if p.strip()]
    if parents:
        job["parents"] = parents
        job.pop("schedule", None)
        job.pop("scheduleTimeZone", None)
    else:
        job.pop("parents", None)
    return job


def error_field(message: str) -> str:
    lowered = message.lower()
    for field, words in ERROR_FIELDS:
        if any(word in lowered for word in words):
            return field
    return "_general"


def api_message(answer: ApiResult) -> str:
    body = answer.json()
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return answer.text or f"HTTP {answer.status}"


# ---------------------------------------------------------------------------------------------------- views


def last_run(job: dict[str, Any]) -> float:
    return max(to_epoch(job.get("lastSuccess")) or 0.0, to_epoch(job.get("lastError")) or 0.0)


def ordered_jobs(jobs: list[dict[str, Any]], summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Most recently run first (as the Chronos list is ordered), never-run jobs after them by name."""
    rows = [
        {
            "job": job,
            "status": summary.get(job["name"], {}).get("status", "fresh"),
            "state": summary.get(job["name"], {}).get("state", "idle"),
            "last_run": last_run(job),
        }
        for job in jobs
    ]
    rows.sort(key=lambda r: (-r["last_run"], r["job"]["name"]))
    return rows


def graph_layout(csv_text: str) -> dict[str, Any]:
    """Nodes placed in columns by their longest path from a root (parents left of children), for an SVG."""
    nodes: dict[str, dict[str, str]] = {}
    links: list[tuple[str, str]] = []
    for line in csv_text.splitlines():
        parts = line.split(",")
        if parts[0] == "node" and len(parts) >= 4:
            nodes[parts[1]] = {"status": parts[2], "state": ",".join(parts[3:])}
        elif parts[0] == "link" and len(parts) >= 3:
            links.append((parts[1], parts[2]))
    links = [(a, b) for a, b in links if a in nodes and b in nodes]
    depth = {name: 0 for name in nodes}
    for _ in range(len(nodes)):  # longest-path relaxation; a cycle (never valid in Chronos) just stops growing
        changed = False
        for parent, child in links:
            if depth[child] < depth[parent] + 1 and depth[parent] + 1 < len(nodes):
                depth[child] = depth[parent] + 1
                changed = True
        if not changed:
            break
    width, height, gap_x, gap_y = 180, 34, 80, 22
    columns: dict[int, list[str]] = {}
    for name in sorted(nodes):
        columns.setdefault(depth[name], []).append(name)
    placed: dict[str, dict[str, Any]] = {}
    for column, names in columns.items():
        for row, name in enumerate(names):
            placed[name] = {
                "name": name,
                **nodes[name],
                "x": 10 + column * (width + gap_x),
                "y": 10 + row * (height + gap_y),
            }
    edges = []
    for parent, child in links:
        a, b = placed[parent], placed[child]
        x1, y1 = a["x"] + width, a["y"] + height / 2
        x2, y2 = b["x"], b["y"] + height / 2
        mid = (x1 + x2) / 2
        edges.append({"parent": parent, "child": child, "d": f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"})
    total_width = 20 + (max(columns, default=0) + 1) * (width + gap_x)
    total_height = 20 + max((len(v) for v in columns.values()), default=1) * (height + gap_y)
    return {
        "nodes": list(placed.values()),
        "edges": edges,
        "size": (total_width, total_height),
        "box": (width, height),
    }


# ---------------------------------------------------------------------------------------------------- blueprint


def chronos_ui_blueprint(api: LocalApi) -> Blueprint:
    bp = ui_blueprint(NAME, "Chronos", [("Jobs", f"{NAME}.jobs"), ("Dependency graph", f"{NAME}.graph")])

    def must(answer: ApiResult) -> Any:
        if not answer.ok:
            abort(404 if answer.status == 400 else 502, api_message(answer))
        return answer.json()

    @bp.get("/")
    def jobs() -> str:
        listed = must(api.get(f"{API}/jobs"))
        summary = {j["name"]: j for j in must(api.get(f"{API}/jobs/summary"))["jobs"]}
        rows = ordered_jobs(listed, summary)
        query = request.args.get("q", "").strip().lower()
        if query:
            rows = [r for r in rows if query in r["job"]["name"].lower() or query in r["status"]]
        failed = sum(1 for j in summary.values() if j.get("status") == "failure")
        return render_template("ui/chronos/jobs.html", rows=rows, total=len(listed), failed=failed, query=query)

    @bp.route("/ui/jobs/<name>", methods=["GET", "POST"])
    def job(name: str) -> Any:
        error = None
        notice = None
        status = 200
        if request.method == "POST":
            action = request.form.get("action")
            if action == "run":
                answer = api.call("PUT", job_path(name))
                notice = "Job queued to run now." if answer.ok else None
            elif action == "delete":
                answer = api.call("DELETE", job_path(name))
                if answer.ok:
                    return redirect(url_for(f"{NAME}.jobs"))
            elif action == "kill":
                answer = api.call("DELETE", f"{API}/task/kill/{quote(name, safe='')}")
                notice = "Running tasks of this job are being killed." if answer.ok else None
            else:
                abort(400, f"Unknown action {action!r}")
            if not answer.ok:
                error, status = api_message(answer), answer.status
        found = must(api.get(job_path(name)))
        summary = {j["name"]: j for j in must(api.get(f"{API}/jobs/summary"))["jobs"]}.get(name, {})
        stats = api.get(f"{API}/job/stat/{quote(name, safe='')}").json() or {}
        children = sorted(j["name"] for j in must(api.get(f"{API}/jobs")) if name in (j.get("parents") or []))
        return (
            render_template(
                "ui/chronos/job.html",
                job=found,
                status=summary.get("status", "fresh"),
                state=summary.get("state", "idle"),
                stats=stats,
                children=children,
                error=error,
                notice=notice,
            ),
            status,
        )

    @bp.route("/ui/jobs/new", methods=["GET", "POST"])
    def new_job() -> Any:
        return _edit(None)

    @bp.route("/ui/jobs/<name>/edit", methods=["GET", "POST"])
    def edit_job(name: str) -> Any:
        return _edit(name)

    def _edit(name: str | None) -> Any:
        existing = must(api.get(job_path(name))) if name is not None else None
        errors: dict[str, list[str]] = {}
        status = 200
        if request.method == "POST":
            form = dict(request.form.items())
            if name is not None:
                form["name"] = name  # the name is the key: Chronos cannot rename a job
            body = form_to_job(form, existing)
            endpoint = "dependency" if body.get("parents") else "iso8601"
            answer = api.call("POST", f"{API}/{endpoint}", body=body)
            if answer.ok:
                return redirect(url_for(f"{NAME}.job", name=body.get("name", "")))
            message = api_message(answer)
            errors = {error_field(message): [message]}
            status = 422 if answer.status == 400 else answer.status
        elif existing is not None:
            form = job_to_form(existing)
        else:
            form = job_to_form({"shell": True, "retries": 2, "schedule": "R/2030-01-01T00:00:00Z/PT24H"})
        return render_template("ui/chronos/edit.html", form=form, errors=errors, editing=name), status

    @bp.get("/ui/graph")
    def graph() -> str:
        csv_text = api.get(f"{API}/graph/csv").text
        return render_template("ui/chronos/graph.html", graph=graph_layout(csv_text))

    @bp.errorhandler(400)
    @bp.errorhandler(404)
    @bp.errorhandler(502)
    def _error(exc: Any) -> tuple[str, int]:
        return render_template("ui/error.html", message=getattr(exc, "description", str(exc))), exc.code

    return bp
