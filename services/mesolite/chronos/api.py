"""Chronos' REST API, under both ``/scheduler`` (2.x, which also takes PUT for creating jobs) and ``/v1/scheduler``
(3.x, what chronos-python uses), plus ``/ping``, ``/metrics`` and a small status page at ``/``.

Status codes follow Chronos: 204 for mutations, 400 with ``{"status": "Bad Request", "message": ...}`` for a bad or
unknown job (chronos-python reads ``message``). Every answer carries Chronos' permissive CORS headers.

2.x's asynchronous jobs (``"async": true``, ended by ``PUT /scheduler/task/{id}``) exist only under ``/scheduler``:
Chronos 3.0 removed them, and the ``/v1`` paths refuse them rather than run them as ordinary jobs.

With ``--zk`` every instance serves this app but only the leader has the state: the others forward the API to it
(upstream's ``RedirectFilter`` proxied too) and answer ``/leader`` and ``/ping`` themselves; see ``election.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException

from mesolite.chronos.config import ChronosConfig
from mesolite.chronos.jobs import JobError, rendered
from mesolite.chronos.scheduler import ChronosService
from mesolite.chronos.state import ChronosState, Effects, Kill, TaskError, UnknownJob
from mesolite.chronos.tasks import parse_task_id
from mesolite.core import zk
from mesolite.core.http import json_response, text_response
from mesolite.core.leader_forward import ForwardError, forward
from mesolite.core.leader_runner import LeaderRunner, NotLeading
from mesolite.core.server import SERVICE_KEY
from mesolite.core.store import SQLiteStore

PREFIXES = ("/scheduler", "/v1/scheduler")
LEADER_ONLY = ("/scheduler/", "/v1/scheduler/", "/metrics")  # what a non-leader forwards; /ping and the UI stay local
LOCAL_SUFFIX = "/scheduler/leader"  # every instance knows the leader
FAILOVER_WAIT = 5.0

Current = Callable[[], tuple[ChronosState, ChronosService | None]]


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _error(message: str, status: int = 400) -> Response:
    names = {
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    return json_response({"status": names.get(status, "Error"), "message": message}, status)


def _no_content() -> Response:
    return Response(status=204)


def _body(what: str = "a JSON job definition") -> Any:
    if not request.get_data(cache=True):
        raise BadRequest(f"the request needs {what}")
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise BadRequest("the request body is not valid JSON")
    return body


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer, not '{raw}'") from None
    if value < 0:
        raise BadRequest(f"'{name}' must not be negative")
    return value


def _integer(body: Any, key: str) -> int:
    value = body.get(key) if isinstance(body, dict) else None
    if value is None:
        raise BadRequest(f"'{key}' is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{key}' must be an integer, not {json.dumps(value)}")
    return value


def _task_id(value: str) -> str:
    if parse_task_id(value) is None:
        raise BadRequest(f"Invalid task id format {value}")
    return value


def _refuse_async(body: Any) -> None:
    """Chronos 3.x dropped ``async``; running such a job as an ordinary one would report success on the task's
    exit, which is exactly what its owner asked not to happen."""
    if isinstance(body, dict) and body.get("async") in (True, "true"):
        raise BadRequest(
            "asynchronous jobs ('async': true) were removed in Chronos 3.0 and are not accepted under "
            "/v1/scheduler: post the job to /scheduler/iso8601 or /scheduler/dependency (the 2.x API)"
        )


def scheduler_blueprint(current: Current, leader: Callable[[], str], legacy: bool = False) -> Blueprint:
    """The API under one prefix; ``legacy`` is ``/scheduler`` (2.x), which alone has asynchronous jobs."""
    bp = Blueprint("scheduler", __name__)

    def state() -> ChronosState:
        return current()[0]

    def kill(kills: list[Kill]) -> None:
        service = current()[1]
        if service is not None:
            service.kill(kills)

    def apply(effects: Effects) -> None:
        service = current()[1]
        if service is not None:
            service.apply(effects)

    @bp.get("/jobs")
    def list_jobs() -> Response:
        return json_response([rendered(job) for job in state().list_jobs()])

    @bp.get("/jobs/summary")
    def summary() -> Response:
        return json_response({"jobs": state().summary()})

    @bp.get("/jobs/search")
    def search() -> Response:
        name = (request.args.get("name") or "").lower()
        command = (request.args.get("command") or "").lower()
        anything = (request.args.get("any") or "").lower()
        limit, offset = _int_arg("limit", 10), _int_arg("offset", 0)
        found = []
        for job in state().list_jobs():
            job_name, job_command = job["name"].lower(), (job.get("command") or "").lower()
            valid = (not name or name in job_name) and (not command or command in job_command)
            if not valid and anything and (anything in job_name or anything in job_command):
                valid = True
            if valid:
                found.append(rendered(job))
        return json_response(found[offset : offset + limit])

    @bp.get("/job/<name>")
    def get_job(name: str) -> Response:
        return json_response(rendered(state().get_job(name)))

    @bp.put("/job/<name>")
    def run_job(name: str) -> Response:
        state().run_now(name, request.args.get("arguments"))
        return _no_content()

    @bp.delete("/job/<name>")
    def delete_job(name: str) -> Response:
        apply(state().delete_job(name))
        return _no_content()

    @bp.put("/job/success/<name>")
    def mark_success(name: str) -> Response:
        success = state().mark_success(name)
        return text_response(f"marked job {name} as successful: {'true' if success else 'false'}")

    @bp.get("/job/stat/<name>")
    def job_stat(name: str) -> Response:
        return json_response(state().job_stat(name))

    @bp.route("/iso8601", methods=["POST", "PUT"])
    def iso8601() -> Response:
        body = _body()
        if not legacy:
            _refuse_async(body)
        state().put_job(body, "scheduled")
        return _no_content()

    @bp.route("/dependency", methods=["POST", "PUT"])
    def dependency() -> Response:
        body = _body()
        if not legacy:
            _refuse_async(body)
        state().put_job(body, "dependent")
        return _no_content()

    @bp.post("/job/<name>/task/<path:task_id>/progress")
    def progress(name: str, task_id: str) -> Response:
        """A ``dataProcessingJobType`` job's task reports how many more elements it processed (``/job/stat``)."""
        state().get_job(name)
        _task_id(task_id)
        count = _integer(_body('{"numAdditionalElementsProcessed": n}'), "numAdditionalElementsProcessed")
        if count < 0:
            raise BadRequest(f"numAdditionalElementsProcessed ({count}) is not positive")
        state().add_progress(name, task_id, count)
        return _no_content()

    @bp.put("/task/<path:task_id>")
    def report_async(task_id: str) -> Response:
        """2.x: an asynchronous job's task reports its end, ``{"statusCode": 0}`` for success."""
        if not legacy:
            return _error(
                f"PUT {request.path} does not exist in Chronos 3.x: asynchronous jobs were removed in 3.0. "
                "A 2.x asynchronous job reports its end with PUT /scheduler/task/{taskId}",
                404,
            )
        status_code = _integer(_body('{"statusCode": n}'), "statusCode")
        apply(state().report_async(_task_id(task_id), status_code))
        return _no_content()

    @bp.delete("/task/kill/<name>")
    def kill_tasks(name: str) -> Response:
        kill(state().kill_tasks(name))
        return _no_content()

    @bp.get("/graph/dot")
    def graph_dot() -> Response:
        return text_response(state().graph_dot())

    @bp.get("/graph/csv")
    def graph_csv() -> Response:
        return text_response(state().graph_csv())

    @bp.get("/stats/<percentile>")
    def stats(percentile: str) -> Response:
        return json_response(state().ranking(percentile) or [])

    @bp.get("/leader")
    def get_leader() -> Response:
        return json_response({"leader": leader()})

    return bp


def _metrics(state: ChronosState, service: ChronosService | None) -> dict[str, Any]:
    """Codahale's JSON shape (what Chronos' /metrics served), with the per-job counters and run times, and the
    notifications sent, retried, failed, dropped and queued per channel."""
    counters: dict[str, Any] = {}
    histograms: dict[str, Any] = {}
    for job in state.list_jobs():
        counters[f"jobs.run.success.{job['name']}"] = {"count": job["successCount"]}
        counters[f"jobs.run.failure.{job['name']}"] = {"count": job["errorCount"]}
        hist = state.job_stat(job["name"])["histogram"]
        histograms[f"jobs.run.time.{job['name']}"] = {
            "count": hist["count"],
            "mean": hist["mean"],
            "p50": hist["median"],
            "p75": hist["75thPercentile"],
            "p95": hist["95thPercentile"],
            "p98": hist["98thPercentile"],
            "p99": hist["99thPercentile"],
        }
    gauges: dict[str, Any] = {"jobs.count": {"value": len(counters) // 2}}
    for key, value in (service.notifier.counters() if service is not None else {}).items():
        if key.endswith(".queued"):
            gauges[key] = {"value": value}
        else:
            counters[key] = {"count": value}
    return {"version": "3.0.0", "gauges": gauges, "counters": counters, "histograms": histograms, "meters": {},
            "timers": {}}  # fmt: skip


def create_app(config: ChronosConfig, store: Any = None, start_framework: bool = True) -> Flask:
    """``store`` and ``start_framework`` let unit tests run the API on a MemoryStore without a master.

    With ``config.zk`` the instance joins the election instead: state and framework exist only while it leads, and
    the leader-only paths are forwarded to the leader otherwise.
    """
    app = Flask(__name__)
    current: Current
    leader: Callable[[], str]
    if config.zk:
        from mesolite.chronos.election import leader_runner

        runner = leader_runner(config)
        app.extensions[SERVICE_KEY] = runner
        current, leader = _follower_paths(app, runner, config)
    else:
        state = ChronosState(store if store is not None else SQLiteStore(config.store_path), config.state_config())
        service = ChronosService(state, config.framework_config(), config.notifier()) if start_framework else None
        if service is not None:
            app.extensions[SERVICE_KEY] = service
        current, leader = (lambda: (state, service)), (lambda: config.leader)

    for prefix in PREFIXES:
        bp = scheduler_blueprint(current, leader, legacy=prefix == "/scheduler")
        app.register_blueprint(bp, url_prefix=prefix, name=prefix.strip("/").replace("/", "_"))

    @app.get("/ping")
    def ping() -> Response:
        return text_response("pong")

    @app.get("/metrics")
    def metrics() -> Response:
        return json_response(_metrics(*current()))

    from mesolite.ui.chronos import register_chronos_ui  # the web UI at / (services/mesolite/ui/)

    register_chronos_ui(app)

    @app.errorhandler(JobError)
    def job_error(exc: JobError) -> Response:
        return _error(str(exc))

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> Response:
        return _error(exc.message)

    @app.errorhandler(NotLeading)
    def not_leading(exc: NotLeading) -> Response:
        return _error(str(exc), 503)

    @app.errorhandler(UnknownJob)
    def unknown_job(exc: UnknownJob) -> Response:
        return _error(exc.message)

    @app.errorhandler(TaskError)
    def task_error(exc: TaskError) -> Response:
        return _error(str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        app.logger.exception("error serving %s %s", request.method, request.path)
        return _error(f"{type(exc).__name__}: {exc}", 500)

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            request.headers.get("Access-Control-Request-Headers") or "Content-Type, Authorization"
        )
        response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    return app


def _follower_paths(
    app: Flask, runner: LeaderRunner[ChronosService], config: ChronosConfig
) -> tuple[Current, Callable[[], str]]:
    """Wire an instance of an election: the API reads the leader's state, non-leaders forward to the leader."""

    def current() -> tuple[ChronosState, ChronosService | None]:
        service = runner.active
        if service is None:
            raise NotLeading("this instance is not the leader")
        return service.state, service

    def leader() -> str:
        info = runner.leader
        if not info:
            raise NotLeading("no leader elected")
        return str(info["leader"])

    def leader_url() -> str | None:
        info = runner.leader
        if not info or info.get("id") == runner.info["id"]:
            return None
        address = zk.host_port(info)
        return f"http://{address}" if address else None

    @app.before_request
    def forward_unless_leading() -> Response | None:
        path = request.path
        if not path.startswith(LEADER_ONLY) or path.endswith(LOCAL_SUFFIX):
            return None
        # During a failover wait a little for a leader (this one, or another) rather than fail at once.
        deadline = time.monotonic() + FAILOVER_WAIT
        while True:
            if runner.active is not None:
                return None
            if runner.electing and runner.wait_active(max(0.0, deadline - time.monotonic())) is not None:
                return None
            url = leader_url()
            if url is not None:
                break
            if time.monotonic() >= deadline:
                return _error("no leader elected", 503)
            time.sleep(0.1)
        try:
            return forward(url, via=config.leader)
        except ForwardError as exc:
            return _error(str(exc), 503)

    return current, leader
