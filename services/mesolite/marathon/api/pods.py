"""``/v2/pods`` (Marathon 1.4+): create, read, replace and delete pods, their status, versions and instances.

Routes as ``PodsResource``: ``HEAD /v2/pods`` (the capability probe), ``POST`` (201, ``Location``,
``Marathon-Deployment-Id``, the Pod), ``PUT /v2/pods/{id}`` (200; 400 when the body names another pod),
``DELETE /v2/pods/{id}`` (202 with the deployment), ``GET {id}::status`` and ``GET ::status`` (``PodStatus``),
``GET {id}::versions[/{v}]``, ``DELETE {id}::instances[/{instance}]`` (kill; the pod's count stays, so they are
replaced). Every change is a deployment like an app's (409 while another holds the pod, unless ``force``), and
publishes ``pod_created_event``, ``pod_updated_event`` or ``pod_deleted_event``.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, request

from mesolite.core.http import json_response
from mesolite.marathon import pathid, podstatus
from mesolite.marathon.api.common import body, not_allowed, object_body, qbool
from mesolite.marathon.appdef import BadJson, Invalid
from mesolite.marathon.errors import NotFound
from mesolite.marathon.pods import normalize_pod, pod_json
from mesolite.marathon.service import Marathon, MarathonConfig

INSTANCE_ID = re.compile(r"^(.+)\.(instance-|marathon-)([^.]+)$")


class PodsApi:
    def __init__(self, config: MarathonConfig, marathon: Marathon) -> None:
        self.m = marathon
        self.roles = tuple(dict.fromkeys((config.mesos_role, "*")))

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_pods", __name__)
        bp.add_url_rule("/v2/pods", view_func=self.pods_root, methods=["GET", "POST", "HEAD"])
        bp.add_url_rule("/v2/pods/<path:rest>", view_func=self.pod_resource, methods=["GET", "PUT", "DELETE"])
        return bp

    def pods_root(self) -> Response:
        if request.method == "HEAD":
            return Response(status=200)
        if request.method == "POST":
            return self.create()
        with self.m.lock:
            return json_response([pod_json(p) for _, p in sorted(self.m.state.pods.items())])

    def pod_resource(self, rest: str) -> Response:
        """``{id}``, ``{id}::status``, ``::status``, ``{id}::versions[/{v}]``, ``{id}::instances[/{instance}]``."""
        method = request.method
        if rest.strip("/") == "::status" and method == "GET":
            return self.all_status()
        head, sep, suffix = rest.partition("::")
        pod_id = pathid.canonical(head)
        if not sep:
            if method == "GET":
                return self.show(pod_id)
            if method == "PUT":
                return self.replace(pod_id)
            return self.delete(pod_id)
        kind, _, arg = suffix.partition("/")
        if kind == "status" and method == "GET" and not arg:
            return self.status(pod_id)
        if kind == "versions" and method == "GET":
            return self.versions(pod_id, arg or None)
        if kind == "instances" and method == "DELETE":
            return self.kill_instances(pod_id, arg or None)
        return not_allowed()

    # ------------------------------------------------------------------------------------------------ changes

    def create(self) -> Response:
        pod = normalize_pod(body(), self.roles)
        deployment = self.m.create_pod(pod, force=qbool("force"))
        self._event("pod_created_event")
        with self.m.lock:
            created = pod_json(self.m.state.pods[pod["id"]])
        return json_response(
            created,
            status=201,
            headers={"Location": f"/v2/pods{pod['id']}", "Marathon-Deployment-Id": deployment.id},
        )

    def replace(self, pod_id: str) -> Response:
        raw = object_body()
        if isinstance(raw.get("id"), str) and raw["id"] and pathid.canonical(raw["id"]) != pod_id:
            return json_response({"message": f"'{pod_id}' does not match definition's id ('{raw['id']}')"}, 400)
        pod = normalize_pod({**raw, "id": pod_id}, self.roles)
        deployment = self.m.update_pod(pod, force=qbool("force"))
        self._event("pod_updated_event")
        with self.m.lock:
            updated = pod_json(self.m.state.pods[pod_id])
        return json_response(updated, headers={"Marathon-Deployment-Id": deployment.id})

    def delete(self, pod_id: str) -> Response:
        deployment = self.m.delete_pod(pod_id, force=qbool("force"))
        self._event("pod_deleted_event")
        return Response(status=202, headers={"Location": deployment.id, "Marathon-Deployment-Id": deployment.id})

    def kill_instances(self, pod_id: str, instance_id: str | None) -> Response:
        """One instance (404 "Task '<id>' does not exist" when the pod has no such instance), or those listed in a
        JSON array body."""
        if instance_id is not None:
            ids = [instance_id]
        else:
            raw = body()
            if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
                raise BadJson("/", "error.expected.jsarray")
            ids = list(dict.fromkeys(raw))
        bad = [i for i in ids if not INSTANCE_ID.match(i)]
        if bad:
            raise Invalid([("/", f"must fully match regular expression '{INSTANCE_ID.pattern}'")])
        killed = self.m.kill_instances(pod_id, ids)
        if instance_id is None:
            return json_response(killed)
        if not killed:
            raise NotFound.task(instance_id)
        return json_response(killed[0])

    def _event(self, kind: str) -> None:
        self.m.events.publish(kind, clientIp=request.remote_addr, uri=request.path)

    # -------------------------------------------------------------------------------------------------- reads

    def show(self, pod_id: str) -> Response:
        with self.m.lock:
            pod = self.m.state.pods.get(pod_id)
            if pod is None:
                raise NotFound.pod(pod_id)
            return json_response(pod_json(pod))

    def status(self, pod_id: str) -> Response:
        with self.m.lock:
            rendered = self._status(pod_id)
        if rendered is None:
            raise NotFound.pod(pod_id)
        return json_response(rendered)

    def all_status(self) -> Response:
        with self.m.lock:
            return json_response([self._status(p) for p in sorted(self.m.state.pods)])

    def _status(self, pod_id: str) -> dict[str, Any] | None:
        """A pod's status; a pod a running deployment is removing is still shown, as TERMINAL."""
        state = self.m.state
        pod = state.pods.get(pod_id)
        if pod is not None:
            return podstatus.pod_status(state, pod)
        for deployment in state.deployments.values():
            before = deployment.original.get(pod_id)
            if before is not None and deployment.target.get(pod_id) is None:
                return podstatus.pod_status(state, before, terminating=True)
        return None

    def versions(self, pod_id: str, version: str | None) -> Response:
        with self.m.lock:
            if pod_id not in self.m.state.pods:
                raise NotFound.pod(pod_id)
            if version is None:
                return json_response(self.m.state.pod_versions(pod_id))
            found = self.m.state.pod_version(pod_id, version)
        if found is None:
            raise NotFound.pod(pod_id, version)
        return json_response(pod_json(found))
