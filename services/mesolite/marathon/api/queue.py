"""``/v2/queue``: what waits for offers (with backoff delays and offer statistics), and ``DELETE
/v2/queue/{app}/delay`` to launch again at once."""

from __future__ import annotations

from flask import Blueprint, Response, request

from mesolite.core.http import json_response
from mesolite.marathon import pathid, views
from mesolite.marathon.service import Marathon


class QueueApi:
    def __init__(self, marathon: Marathon) -> None:
        self.m = marathon

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_queue", __name__)
        bp.add_url_rule("/v2/queue", view_func=self.get_queue, methods=["GET"])
        bp.add_url_rule("/v2/queue/<path:rest>", view_func=self.reset_delay, methods=["DELETE"])
        return bp

    def get_queue(self) -> Response:
        embed = request.args.getlist("embed")
        with self.m.lock:
            return json_response(views.queue_json(self.m, "lastUnusedOffers" in embed))

    def reset_delay(self, rest: str) -> Response:
        """``<app id>/delay``: app ids have slashes, so the route takes the whole rest of the path."""
        if not rest.endswith("/delay"):
            return json_response({"message": f"Resource not found: {request.path}"}, status=404)
        self.m.reset_delay(pathid.canonical(rest[: -len("/delay")]))
        return Response(status=204)
