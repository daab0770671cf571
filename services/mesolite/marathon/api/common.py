"""What the v2 resources share: reading requests the way Marathon's clients send them, and answering a change with
the deployment it started."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from mesolite.core.http import json_response
from mesolite.marathon.appdef import BadJson
from mesolite.marathon.state import Deployment

NOT_ALLOWED = {"message": "HTTP 405 Method Not Allowed"}


def qbool(name: str, default: bool = False) -> bool:
    """Query booleans as JAX-RS reads them: case-insensitive ``true``; marathon-python sends ``True``."""
    value = request.args.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() == "true"


def body() -> Any:
    """The request's JSON; an empty or unparsable body is Marathon's 400 ``Invalid JSON``."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadJson("/", "error.expected.jsobject")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadJson("/", f"Unexpected character: {exc}") from None


def object_body() -> dict[str, Any]:
    raw = body()
    if not isinstance(raw, dict):
        raise BadJson("/", "error.expected.jsobject")
    return raw


def deployed(deployment: Deployment, status: int = 200) -> Response:
    """The answer to every deployable call: ``{deploymentId, version}`` and the ``Marathon-Deployment-Id`` header."""
    return json_response(
        {"deploymentId": deployment.id, "version": deployment.version},
        status=status,
        headers={"Marathon-Deployment-Id": deployment.id},
    )


def wants_text() -> bool:
    """``Accept: text/plain`` on task lists: the tab-separated form haproxy-marathon-bridge reads."""
    best = request.accept_mimetypes.best_match(["application/json", "text/plain"])
    return best == "text/plain"


def not_allowed() -> Response:
    return json_response(NOT_ALLOWED, status=405)
