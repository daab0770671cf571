"""Marathon's v2 REST API: apps, pods, groups, tasks, deployments, queue, info, events, in Marathon 1.4–1.6's shapes.

Every answer is one that existing clients (marathon-python with its strict models, marathon-lb, Bamboo, the
haproxy-marathon-bridge script) parse; every bad request gets Marathon's error shape: 400 ``Invalid JSON``,
422 ``Object is not valid`` with ``details``, 404/409 with ``message`` (``errors.py``).

One blueprint per resource (``apps.py``, ``pods.py``, ``groups.py``, ``tasks.py``, ``deployments.py``,
``queue.py``, ``events.py``, ``info.py``); each parses its requests and calls the service with typed arguments.
This module wires them to one instance: leader routing (a standby forwards to the leader, ``proxy.py``), the error
mapping, the HTTP metrics and the web UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request

from mesolite.core.server import SERVICE_KEY
from mesolite.marathon.api.apps import AppsApi
from mesolite.marathon.api.deployments import DeploymentsApi
from mesolite.marathon.api.errors import register_error_handlers
from mesolite.marathon.api.events import EventsApi
from mesolite.marathon.api.groups import GroupsApi
from mesolite.marathon.api.info import InfoApi
from mesolite.marathon.api.pods import PodsApi
from mesolite.marathon.api.queue import QueueApi
from mesolite.marathon.api.tasks import TasksApi
from mesolite.marathon.election import Leadership, SoleLeadership, build_leadership
from mesolite.marathon.errors import NotLeading
from mesolite.marathon.metrics import HttpMetrics
from mesolite.marathon.proxy import LEADER, NO_LEADER, LeaderProxy
from mesolite.marathon.service import Marathon, MarathonConfig

# While leadership is in flux a request waits this often this long (Marathon: 10 × 250 ms), then gets a 503.
LEADER_WAITS = 10
LEADER_WAIT_SECONDS = 0.25


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


def create_app(config: MarathonConfig, marathon: Marathon | None = None, leadership: Leadership | None = None) -> Flask:
    """The API of one instance. Tests may hand in the service object (then it leads alone) or a leadership."""
    app = Flask("mesolite.marathon")
    election: Leadership = leadership or (build_leadership(config) if marathon is None else SoleLeadership(marathon))
    m = election.marathon
    app.extensions[SERVICE_KEY] = election
    app.wsgi_app = _MergeSlashes(app.wsgi_app)  # type: ignore[method-assign]
    http = HttpMetrics()
    _measure(app, http)
    _route_to_leader(app, election, config)
    register_error_handlers(app)
    resources = (
        InfoApi(config, m, election.host_port, election.leader, election.abdicate, http),
        AppsApi(m),
        PodsApi(config, m),
        GroupsApi(m),
        TasksApi(m),
        DeploymentsApi(m),
        QueueApi(m),
        EventsApi(config, m, http.streamed),
    )
    for resource in resources:
        app.register_blueprint(resource.blueprint())

    from mesolite.ui.marathon import register_marathon_ui  # the web UI: services/mesolite/ui/

    register_marathon_ui(app)
    return app


def _measure(app: Flask, http: HttpMetrics) -> None:
    """Requests in flight, bytes in and out, responses per status class and durations (``marathon.http.*``)."""

    @app.before_request
    def _start() -> None:
        g.started = time.monotonic()
        http.started(request.content_length or 0)

    @app.after_request
    def _answered(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            size = 0 if response.is_streamed else response.calculate_content_length() or 0
            http.answered(request.method, response.status_code, size, time.monotonic() - started)
        return response

    @app.teardown_request
    def _done(_exc: BaseException | None) -> None:
        if g.get("started") is not None:
            http.finished()


def _route_to_leader(app: Flask, election: Leadership, config: MarathonConfig) -> None:
    """The leader serves every request and names itself in ``X-Marathon-Leader``; a standby forwards requests to
    the leader, redirects the event stream to it, and answers only ``/ping`` and ``GET /v2/leader`` itself."""
    m = election.marathon
    proxy = LeaderProxy(election.host_port, config.leader_proxy_connection_timeout, config.leader_proxy_read_timeout)

    def current_leader() -> str | None:
        """Waits while leadership is in flux: ZooKeeper names nobody, or names this instance before it has taken
        over. None: serve here; otherwise the leader to forward to."""
        for attempt in range(LEADER_WAITS + 1):
            if m.leading:
                return None
            leader = election.leader()
            if leader is not None and leader != election.host_port:
                return leader
            if attempt < LEADER_WAITS:
                time.sleep(LEADER_WAIT_SECONDS)
        raise NotLeading(NO_LEADER)

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
