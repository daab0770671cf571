"""The master's web UI: overview, frameworks, agents, offers, and a sandbox browser that goes through the master.

The pages render ``/master/state`` (``Master.state_json``), the same document the Mesos UI reads; the UI reads the
master only through that read model (``MasterReadModel``), never its lock or records. Unlike the Mesos UI, sandbox
files are fetched by the master from the agent's own ``/files`` API and handed to the browser, so only the master
needs to be reachable from the operator's machine. The proxy forwards nothing but ``/files/browse``,
``/files/read`` and ``/files/download`` with their documented parameters; the agent confines paths to its sandboxes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
from flask import Blueprint, Flask, Response, abort, redirect, render_template, request, stream_with_context, url_for
from werkzeug.wrappers import Response as BaseResponse

from mesolite.core.http import json_response
from mesolite.core.server import SERVICE_KEY
from mesolite.core.service_group import ServiceGroup
from mesolite.ui.allocation import WINDOW_SECONDS, AllocationHistory, Sample, chart_series
from mesolite.ui.common import ui_blueprint

NAME = "master_ui"
PROXY_TIMEOUT = 10.0
TAIL_BYTES = 32 * 1024
COMPLETED_SHOWN = 100
CHART_WIDTH, CHART_HEIGHT = 600, 120


class MasterReadModel(Protocol):
    """What the UI reads of the master: fresh documents, built under the master's lock by the master."""

    def state_json(self) -> dict[str, Any]: ...

    def metrics_json(self) -> dict[str, float]: ...

    def agent_endpoint(self, agent_id: str) -> str | None: ...


def register_master_ui(app: Flask, master: MasterReadModel) -> None:
    """Mount the UI on the master's app; the allocation sampler starts and stops with the master's service."""
    history = AllocationHistory(lambda: measure_allocation(master))
    app.extensions[SERVICE_KEY] = ServiceGroup(app.extensions[SERVICE_KEY], history)
    app.register_blueprint(master_ui_blueprint(master, history))


def measure_allocation(master: MasterReadModel) -> Sample | None:
    metrics = master.metrics_json()
    if not metrics.get("master/elected"):
        return None
    if not metrics.get("master/cpus_total") and not metrics.get("master/mem_total"):
        return None
    return Sample(
        time=time.time(),
        cpus=metrics["master/cpus_percent"],
        mem=metrics["master/mem_percent"],
        disk=metrics["master/disk_percent"],
    )


# ---------------------------------------------------------------------------------------------------- state views


RESOURCES = ("cpus", "mem", "disk", "gpus")
TASK_COUNTS = (
    ("Staged", "TASK_STAGING"),
    ("Started", "TASK_STARTING"),
    ("Running", "TASK_RUNNING"),
    ("Finished", "TASK_FINISHED"),
    ("Killed", "TASK_KILLED"),
    ("Failed", "TASK_FAILED"),
    ("Lost", "TASK_LOST"),
)


def _status_time(task: dict[str, Any], states: tuple[str, ...]) -> float | None:
    for status in task.get("statuses") or []:
        if status.get("state") in states:
            return status.get("timestamp")
    return None


def task_rows(state: dict[str, Any], completed: bool) -> list[dict[str, Any]]:
    """Tasks of every framework as the overview's tables list them, newest first."""
    hosts = {a["id"]: a["hostname"] for a in state["slaves"] + state.get("recovered_slaves", [])}
    frameworks = state["frameworks"] + (state["completed_frameworks"] if completed else [])
    rows = []
    for framework in frameworks:
        tasks = framework.get("completed_tasks", []) if completed else framework.get("tasks", [])
        if completed and framework in state["completed_frameworks"]:
            tasks = tasks + framework.get("tasks", [])
        for task in tasks:
            statuses = task.get("statuses") or []
            rows.append(
                {
                    "id": task["id"],
                    "name": task["name"],
                    "state": task["state"],
                    "framework_id": task["framework_id"],
                    "framework_name": framework.get("name", ""),
                    "agent_id": task["slave_id"],
                    "executor_id": task.get("executor_id") or task["id"],
                    "host": hosts.get(task["slave_id"], ""),
                    "started": _status_time(task, ("TASK_RUNNING",)),
                    "staged": statuses[0]["timestamp"] if statuses else None,
                    "stopped": statuses[-1]["timestamp"] if completed and statuses else None,
                    "resources": task.get("resources", {}),
                }
            )
    rows.sort(key=lambda r: r["started"] or r["staged"] or 0.0, reverse=True)
    return rows[:COMPLETED_SHOWN] if completed else rows


def resource_table(slaves: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Total/Used/Offered/Idle per scalar, as on the Mesos overview (Idle = Total − Used − Offered)."""
    table: dict[str, dict[str, float]] = {}
    for row in ("total", "used", "offered"):
        key = {"total": "resources", "used": "used_resources", "offered": "offered_resources"}[row]
        table[row] = {r: sum(float(s.get(key, {}).get(r, 0.0) or 0.0) for s in slaves) for r in RESOURCES}
    table["idle"] = {r: max(table["total"][r] - table["used"][r] - table["offered"][r], 0.0) for r in RESOURCES}
    return table


def task_counts(state: dict[str, Any]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for framework in state["frameworks"] + state["completed_frameworks"]:
        for task in framework.get("tasks", []) + framework.get("completed_tasks", []):
            counts[task["state"]] = counts.get(task["state"], 0) + 1
    return [(label, counts.get(name, 0)) for label, name in TASK_COUNTS]


def sandbox_root(framework_id: str, executor_id: str) -> str:
    """The agent's virtual path for an executor's latest run (``/files/browse`` resolves it)."""
    return f"/frameworks/{framework_id}/executors/{executor_id}/runs/latest"


# ---------------------------------------------------------------------------------------------------- blueprint


def master_ui_blueprint(master: MasterReadModel, history: AllocationHistory) -> Blueprint:
    bp = ui_blueprint(
        NAME,
        "Mesos",
        [
            ("Mesos", f"{NAME}.overview"),
            ("Frameworks", f"{NAME}.frameworks"),
            ("Agents", f"{NAME}.agents"),
            ("Offers", f"{NAME}.offers"),
        ],
    )
    _state_pages(bp, master, history)
    agent_files = _agent_files(master)
    _sandbox_browser(bp, agent_files)
    _files_proxy(bp, agent_files)

    @bp.errorhandler(404)
    @bp.errorhandler(400)
    @bp.errorhandler(502)
    def _error(exc: Any) -> tuple[str, int]:
        return render_template("ui/error.html", message=getattr(exc, "description", str(exc))), exc.code

    return bp


def _state_pages(bp: Blueprint, master: MasterReadModel, history: AllocationHistory) -> None:
    """Overview, frameworks, agents and offers: each page renders one fresh ``/master/state`` document."""

    def state() -> dict[str, Any]:
        return master.state_json()

    @bp.get("/")
    def overview() -> str:
        now = time.time()
        current = state()
        samples = history.samples(now)
        return render_template(
            "ui/master/overview.html",
            state=current,
            resources=resource_table(current["slaves"]),
            counts=task_counts(current),
            active=task_rows(current, completed=False),
            completed=task_rows(current, completed=True),
            chart=chart_series(samples, now, CHART_WIDTH, CHART_HEIGHT, WINDOW_SECONDS),
            chart_size=(CHART_WIDTH, CHART_HEIGHT),
            latest=samples[-1] if samples else None,
        )

    @bp.get("/ui/allocation.json")
    def allocation() -> Response:
        samples = history.samples()
        return json_response([asdict(s) for s in samples])

    @bp.get("/ui/frameworks")
    def frameworks() -> str:
        return render_template("ui/master/frameworks.html", state=state())

    @bp.get("/ui/frameworks/<framework_id>")
    def framework(framework_id: str) -> str:
        current = state()
        found = [f for f in current["frameworks"] + current["completed_frameworks"] if f["id"] == framework_id]
        if not found:
            abort(404, f"No framework with id {framework_id}")
        only = {**current, "frameworks": found, "completed_frameworks": []}
        return render_template(
            "ui/master/framework.html",
            framework=found[0],
            active=task_rows(only, completed=False),
            completed=task_rows(only, completed=True),
        )

    @bp.get("/ui/agents")
    def agents() -> str:
        return render_template("ui/master/agents.html", state=state())

    @bp.get("/ui/agents/<agent_id>")
    def agent(agent_id: str) -> str:
        current = state()
        found = [a for a in current["slaves"] if a["id"] == agent_id]
        if not found:
            abort(404, f"No agent with id {agent_id}")
        return render_template(
            "ui/master/agent.html",
            agent=found[0],
            active=[t for t in task_rows(current, completed=False) if t["agent_id"] == agent_id],
            completed=[t for t in task_rows(current, completed=True) if t["agent_id"] == agent_id],
        )

    @bp.get("/ui/offers")
    def offers() -> str:
        current = state()
        hosts = {a["id"]: a["hostname"] for a in current["slaves"]}
        rows = [
            {**offer, "host": hosts.get(offer["slave_id"], ""), "framework_name": f["name"]}
            for f in current["frameworks"]
            for offer in f.get("offers", [])
        ]
        return render_template("ui/master/offers.html", offers=rows)


AgentFiles = Callable[..., requests.Response]


def _agent_files(master: MasterReadModel) -> AgentFiles:
    """Calls an agent's ``/files/<verb>`` API; an unknown agent is a 404, one that does not answer a 502."""
    session = requests.Session()

    def agent_files(agent_id: str, verb: str, params: dict[str, Any], stream: bool = False) -> requests.Response:
        endpoint = master.agent_endpoint(agent_id)
        if endpoint is None:
            abort(404, f"No agent with id {agent_id}")
        try:
            return session.get(f"http://{endpoint}/files/{verb}", params=params, timeout=PROXY_TIMEOUT, stream=stream)
        except requests.RequestException as exc:
            abort(502, f"Agent {agent_id} at {endpoint} did not answer: {exc}")

    return agent_files


def _sandbox_browser(bp: Blueprint, agent_files: AgentFiles) -> None:
    """A task's sandbox, directory listings and the log tail, rendered from the agent's ``/files`` answers."""

    @bp.get("/ui/sandbox")
    def task_sandbox() -> BaseResponse:
        """A task's sandbox: the executor's latest run, or the task's own directory inside a task group's run."""
        agent_id = request.args.get("agent_id", "")
        framework_id = request.args.get("framework_id", "")
        executor_id = request.args.get("executor_id", "")
        task_id = request.args.get("task_id", "")
        if not (agent_id and framework_id and executor_id):
            abort(400, "Expecting 'agent_id', 'framework_id' and 'executor_id'")
        path = sandbox_root(framework_id, executor_id)
        if task_id and task_id != executor_id:
            nested = f"{path}/tasks/{task_id}"
            if agent_files(agent_id, "browse", {"path": nested}).ok:
                path = nested
        return redirect(url_for(f"{NAME}.browse", agent_id=agent_id, path=path))

    @bp.get("/ui/agents/<agent_id>/browse")
    def browse(agent_id: str) -> tuple[str, int]:
        path = request.args.get("path", "")
        answer = agent_files(agent_id, "browse", {"path": path})
        entries = answer.json() if answer.ok else []
        entries = sorted(entries, key=lambda e: (not e["mode"].startswith("d"), e["path"]))
        crumbs = []
        parts = [p for p in path.split("/") if p]
        for index, part in enumerate(parts):
            crumbs.append((part, "/" + "/".join(parts[: index + 1])))
        return (
            render_template(
                "ui/master/browse.html",
                agent_id=agent_id,
                path=path,
                crumbs=crumbs,
                entries=entries,
                error=None if answer.ok else answer.text,
            ),
            200 if answer.ok else answer.status_code,
        )

    @bp.get("/ui/agents/<agent_id>/tail")
    def tail(agent_id: str) -> tuple[str, int]:
        """The last part of a file, rendered at once; the page's script then follows it as it grows."""
        path = request.args.get("path", "")
        size = agent_files(agent_id, "read", {"path": path, "offset": -1})
        if not size.ok:
            return render_template("ui/master/tail.html", agent_id=agent_id, path=path, error=size.text), (
                size.status_code
            )
        end = int(size.json()["offset"])
        start = max(0, end - TAIL_BYTES)
        chunk = agent_files(agent_id, "read", {"path": path, "offset": start, "length": end - start})
        data = chunk.json()["data"] if chunk.ok else ""
        return (
            render_template(
                "ui/master/tail.html",
                agent_id=agent_id,
                path=path,
                data=data,
                offset=start + len(data.encode()),
                truncated=start > 0,
                error=None,
            ),
            200,
        )

    @bp.app_template_global("sandbox_url")
    def sandbox_url(task: dict[str, Any]) -> str:
        query = {
            "agent_id": task["agent_id"],
            "framework_id": task["framework_id"],
            "executor_id": task["executor_id"],
            "task_id": task["id"],
        }
        return url_for(f"{NAME}.task_sandbox") + "?" + urlencode(query)


def _files_proxy(bp: Blueprint, agent_files: AgentFiles) -> None:
    """The agent's ``/files`` answers passed through as they are, for the tail view's polling and downloads."""

    @bp.get("/ui/agents/<agent_id>/files/<any(browse, read):verb>")
    def files_proxy(agent_id: str, verb: str) -> Response:
        """The agent's ``/files/{browse,read}`` JSON, for the tail view's polling (same status and body)."""
        params = {k: request.args[k] for k in ("path", "offset", "length") if k in request.args}
        answer = agent_files(agent_id, verb, params)
        return Response(answer.content, status=answer.status_code, mimetype=answer.headers.get("Content-Type"))

    @bp.get("/ui/agents/<agent_id>/files/download")
    def download(agent_id: str) -> Response:
        answer = agent_files(agent_id, "download", {"path": request.args.get("path", "")}, stream=True)
        headers = {k: v for k, v in answer.headers.items() if k in ("Content-Type", "Content-Disposition")}

        def body() -> Iterator[bytes]:
            try:
                yield from answer.iter_content(64 * 1024)
            finally:
                answer.close()  # also when the browser goes away mid-download

        return Response(stream_with_context(body()), status=answer.status_code, headers=headers)
