"""``/v2/deployments``: the running deployments, and cancelling one (a rollback deployment, or with ``force=true``
just stopping it: 202 with no body, as marathon-python's ``delete_deployment(force=True)`` expects)."""

from __future__ import annotations

from flask import Blueprint, Response

from mesolite.core.http import json_response
from mesolite.marathon import views
from mesolite.marathon.api.common import deployed, qbool
from mesolite.marathon.service import Marathon


class DeploymentsApi:
    def __init__(self, marathon: Marathon) -> None:
        self.m = marathon

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_deployments", __name__)
        bp.add_url_rule("/v2/deployments", view_func=self.list_deployments, methods=["GET"])
        bp.add_url_rule("/v2/deployments/<deployment_id>", view_func=self.delete_deployment, methods=["DELETE"])
        return bp

    def list_deployments(self) -> Response:
        """``details=true`` adds ``waitingFor`` to each current action (opt-in: marathon-python rejects the key)."""
        m = self.m
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

    def delete_deployment(self, deployment_id: str) -> Response:
        result = self.m.cancel_deployment(deployment_id, qbool("force"))
        if result is None:
            return Response(status=202)
        return deployed(result)
