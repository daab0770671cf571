"""``/v2/tasks``: every task (JSON, or the text/plain list haproxy-marathon-bridge reads) and ``/v2/tasks/delete``
for killing tasks by id, optionally scaling their apps down."""

from __future__ import annotations

from flask import Blueprint, Response, request

from mesolite.core.http import json_response, text_response
from mesolite.marathon import views
from mesolite.marathon.api.common import body, deployed, qbool, wants_text
from mesolite.marathon.appdef import BadJson
from mesolite.marathon.service import Marathon
from mesolite.marathon.state import Task


class TasksApi:
    def __init__(self, marathon: Marathon) -> None:
        self.m = marathon

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_tasks", __name__)
        bp.add_url_rule("/v2/tasks", view_func=self.list_tasks, methods=["GET"])
        bp.add_url_rule("/v2/tasks/delete", view_func=self.delete_tasks, methods=["POST"])
        return bp

    def list_tasks(self) -> Response:
        """``status=running|staging`` (also as ``status[]``) filters."""
        m = self.m
        statuses = {s.lower() for s in request.args.getlist("status") + request.args.getlist("status[]")}
        with m.lock:
            if wants_text():
                return text_response(views.tasks_text(m, list(m.state.apps.values())))
            out = [
                views.task_json(m, task, m.state.apps.get(task.app_id))
                for task in m.state.tasks.values()
                if not task.containers and (not statuses or _status(task) in statuses)
            ]
        return json_response({"tasks": out})

    def delete_tasks(self) -> Response:
        """Body ``{"ids": [...]}``; an unknown id is a 400 and nothing is killed."""
        m = self.m
        raw = body()
        ids = raw.get("ids") if isinstance(raw, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadJson("/ids", "error.expected.jsarray")
        tasks = m.tasks_by_id(ids)
        with m.lock:
            rendered = [views.task_json(m, t, m.state.apps.get(t.app_id)) for t in tasks]
        if qbool("scale"):
            kills: dict[str, list[str]] = {}
            for task in tasks:
                kills.setdefault(task.app_id, []).append(task.id)
            return deployed(m.kill_and_scale(kills))
        m.kill_tasks(tasks, "killed over the API")
        return json_response({"tasks": rendered})


def _status(task: Task) -> str:
    if task.running:
        return "running"
    if task.state in ("TASK_STAGING", "TASK_STARTING"):
        return "staging"
    return ""
