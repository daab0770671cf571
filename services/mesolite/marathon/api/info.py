"""``/ping``, ``/metrics`` (and ``/metrics/prometheus``), ``/v2/info`` and ``/v2/leader``: what an instance says
about itself and its leader.

``/v2/info`` carries only keys marathon-python's strict ``MarathonInfo`` model knows, and its three config objects
always (the model fails on a missing one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from mesolite.core.http import json_response, text_response
from mesolite.marathon import metrics
from mesolite.marathon.service import MARATHON_VERSION, Marathon, MarathonConfig
from mesolite.marathon.state import MAX_VERSIONS, gone

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class InfoApi:
    """``host_port`` is this instance; ``leader`` asks the election who leads; ``abdicate`` gives leadership up."""

    def __init__(
        self,
        config: MarathonConfig,
        marathon: Marathon,
        host_port: str,
        leader: Callable[[], str | None],
        abdicate: Callable[[], None],
        http: metrics.HttpMetrics | None = None,
    ) -> None:
        self.http = http or metrics.HttpMetrics()
        self.config = config
        self.m = marathon
        self.host_port = host_port
        self.leader = leader
        self.abdicate = abdicate

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_info", __name__)
        bp.add_url_rule("/ping", view_func=self.ping, methods=["GET"])
        bp.add_url_rule("/metrics", view_func=self.metrics, methods=["GET"])
        bp.add_url_rule("/metrics/prometheus", view_func=self.prometheus, methods=["GET"])
        bp.add_url_rule("/v2/info", view_func=self.info, methods=["GET"])
        bp.add_url_rule("/v2/leader", view_func=self.get_leader, methods=["GET"])
        bp.add_url_rule("/v2/leader", view_func=self.delete_leader, methods=["DELETE"])
        return bp

    def ping(self) -> Response:
        if request.accept_mimetypes.best_match(["text/plain", "application/json"]) == "application/json" and (
            "application/json" in request.headers.get("Accept", "")
        ):
            return json_response("pong")
        return text_response("pong")

    def metrics(self) -> Response:
        """Dropwizard's JSON with Marathon 1.7+'s metric names."""
        return json_response(self._snapshot())

    def prometheus(self) -> Response:
        """Marathon 1.7+'s Prometheus endpoint (``text/plain; version=0.0.4``)."""
        return Response(metrics.prometheus(self._snapshot()), mimetype="text/plain", content_type=PROMETHEUS_TYPE)

    def _snapshot(self) -> dict[str, Any]:
        m = self.m
        now = time.time()
        with m.lock:
            tasks = list(m.state.tasks.values())
            gauges = {
                "apps.active": len(m.state.apps),
                "pods.active": len(m.state.pods),
                "groups.active": len(m.state.groups),
                "deployments.active": len(m.state.deployments),
                "instances.running": sum(1 for t in tasks if t.running),
                "instances.staged": sum(1 for t in tasks if t.state in ("TASK_STAGING", "TASK_STARTING")),
                "instances.launch-overdue": sum(
                    1
                    for t in tasks
                    if t.state in ("TASK_STAGING", "TASK_STARTING")
                    and now - t.staged_time > self.config.task_launch_timeout
                ),
                "instances.inflight-kills": sum(1 for t in tasks if t.killing and not gone(t.state)),
                "http.event-streams.active": m.events.sse_count,
                "uptime.seconds": round(now - m.started_at, 3),
                "leadership.duration.seconds": round(now - m.elected_at, 3) if m.elected_at else 0.0,
            }
            counters = {
                "deployments": m.counters["deployments"],
                "deployments.dismissed": m.counters["deployments.dismissed"],
                "tasks.launched": m.scheduler.metrics["tasks.launched"],
                "mesos.calls.revive": m.scheduler.metrics["mesos.calls.revive"],
                "mesos.calls.suppress": m.scheduler.metrics["mesos.calls.suppress"],
                "mesos.offer-operations.launch": m.scheduler.metrics["mesos.offer-operations.launch"],
                "mesos.offer-operations.launch-group": m.scheduler.metrics["mesos.offer-operations.launch-group"],
                "mesos.offers.incoming": m.scheduler.metrics["mesos.offers.incoming"],
                "mesos.offers.used": m.scheduler.metrics["mesos.offers.used"],
                "mesos.offers.declined": m.scheduler.metrics["mesos.offers.declined"],
                "mesos.task.oom.memory-limit-exceeded": m.scheduler.metrics["mesos.task.oom.memory-limit-exceeded"],
            }
            counters.update({k: v for k, v in m.scheduler.metrics.items() if k.startswith("mesos.task-updates.")})
        return metrics.snapshot(gauges, counters, self.http)

    def info(self) -> Response:
        config = self.config
        return json_response(
            {
                "name": "marathon",
                "version": MARATHON_VERSION,
                "buildref": "mesolite",
                "elected": True,
                "leader": self.host_port,
                "frameworkId": self.m.state.framework_id,
                "marathon_config": self._marathon_config(),
                "zookeeper_config": {
                    "zk": config.zk,
                    "zk_timeout": int(config.zk_timeout * 1000),
                    "zk_session_timeout": int(config.zk_session_timeout * 1000),
                    "zk_max_versions": MAX_VERSIONS,
                },
                "http_config": {"http_port": config.http_port, "https_port": 8443},
                "event_subscriber": (
                    {"type": "http_callback", "http_endpoints": list(self.m.state.subscribers)}
                    if config.event_subscriber == "http_callback"
                    else None
                ),
            }
        )

    def _marathon_config(self) -> dict[str, Any]:
        config = self.config
        return {
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
            "features": sorted(config.features),
        }

    def get_leader(self) -> Response:
        """Answered by every instance about the election, never proxied."""
        current = self.host_port if self.m.leading else self.leader()
        if current is None:
            return json_response({"message": "There is no leader"}, status=404)
        return json_response({"leader": current})

    def delete_leader(self) -> Response:
        self.abdicate()
        return json_response({"message": "Leadership abdicated"})
