"""The bridge's own HTTP surface: ``/health`` for whatever watches the node (200 while HAProxy runs, 503 when it
does not), ``/metrics`` (JSON, or Prometheus' text format when asked for ``text/plain``), what HAProxy runs
(``/config``, ``/routing``) and ``POST /sync`` (marathon-lb's SIGHUP: re-read everything now); and marathon-lb's
stats-port endpoints (``/_haproxy_getconfig``, ``_getpids``, ``_getvhostmap``, ``_getappmap``, ``/_mlb_signal/hup``
and ``/usr1``), which HAProxy's stats port relays here."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from mesolite.core.http import json_response, text_response
from mesolite.core.server import SERVICE_KEY
from mesolite.haproxy_bridge import views
from mesolite.haproxy_bridge.config import BridgeConfig
from mesolite.haproxy_bridge.state import BridgeService


def create_app(config: BridgeConfig, service: BridgeService | None = None) -> Flask:
    app = Flask("mesolite.haproxy_bridge")
    service = service or BridgeService(config)
    app.extensions[SERVICE_KEY] = service

    @app.get("/health")
    def health() -> Response:
        healthy, body = service.health()
        return json_response(body, status=200 if healthy else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        snapshot = service.snapshot()
        wants_text = request.args.get("format") == "prometheus" or (
            request.accept_mimetypes.best_match(["application/json", "text/plain"]) == "text/plain"
        )
        if wants_text:
            return Response(prometheus(snapshot), mimetype="text/plain; version=0.0.4")
        return json_response(snapshot)

    @app.get("/config")
    def current_config() -> Response:
        text = service.loaded_text
        if text is None:
            return text_response("no configuration applied yet\n", status=404)
        return text_response(text)

    @app.get("/routing")
    def routing() -> Response:
        return json_response({"services": views.routing_json(service.current_routing())})

    @app.post("/sync")
    def sync() -> Response:
        service.request_sync("POST /sync", by_event=False)
        return json_response({"message": "sync requested"}, status=202)

    # marathon-lb's stats-port endpoints (HAProxy relays them here from --stats-port, see lua/bridge_api.lua).
    @app.get("/_haproxy_getconfig")
    def getconfig() -> Response:
        return text_response(service.loaded_text or "")

    @app.get("/_haproxy_getpids")
    def getpids() -> Response:
        return text_response(" ".join(str(pid) for pid in service.pids()))

    @app.get("/_haproxy_getvhostmap")
    def getvhostmap() -> Response:
        return text_response(views.vhost_map(service.current_routing()))

    @app.get("/_haproxy_getappmap")
    def getappmap() -> Response:
        return text_response(views.app_map(service.current_routing()))

    @app.route("/_mlb_signal/hup", methods=["GET", "POST"])
    def signal_hup() -> Response:
        service.request_sync("/_mlb_signal/hup", by_event=False)
        return text_response("Sent SIGHUP signal to marathon-lb")

    @app.route("/_mlb_signal/usr1", methods=["GET", "POST"])
    def signal_usr1() -> Response:
        service.request_reload()
        return text_response("Sent SIGUSR1 signal to marathon-lb")

    return app


def prometheus(snapshot: dict[str, Any]) -> str:
    """Numbers as gauges or counters named ``haproxy_bridge_<key>``, maps (rejected apps) as their size."""
    lines = []
    for key, value in sorted(snapshot.items()):
        name = f"haproxy_bridge_{key}"
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            kind = "counter" if key.endswith("_total") else "gauge"
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name} {value}")
        elif isinstance(value, dict):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {len(value)}")
    return "\n".join(lines) + "\n"
