"""Marathon's error shapes for the service's domain errors (``MarathonExceptionMapper``): 400 ``Invalid JSON``,
422 ``Object is not valid`` with ``details[]``, 404/409/403/503 with ``message`` (409 locked also lists the
deployments), and JSON bodies for Flask's own 404 and 405."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from mesolite.core.http import json_response
from mesolite.marathon.api.common import NOT_ALLOWED
from mesolite.marathon.appdef import BadJson, Invalid
from mesolite.marathon.errors import (
    AlreadyExists,
    Locked,
    MarathonError,
    NotFound,
    NotLeading,
    TooManyDeployments,
    UnknownTask,
    Unsatisfiable,
)

STATUS: dict[type[MarathonError], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    Locked: 409,
    TooManyDeployments: 403,
    NotLeading: 503,
    UnknownTask: 400,
    Unsatisfiable: 422,
}


def status_of(exc: MarathonError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def body_of(exc: MarathonError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": exc.message}
    if isinstance(exc, Locked):
        out["deployments"] = [{"id": d} for d in exc.deployment_ids]
    return out


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BadJson)
    def _bad_json(exc: BadJson) -> Response:
        return json_response(exc.body(), status=400)

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid) -> Response:
        return json_response(exc.body(), status=422)

    @app.errorhandler(MarathonError)
    def _refused(exc: MarathonError) -> Response:
        return json_response(body_of(exc), status=status_of(exc))

    @app.errorhandler(404)
    def _unknown(_exc: Exception) -> Response:
        return json_response({"message": f"Resource not found: {request.path}"}, status=404)

    @app.errorhandler(405)
    def _method(_exc: Exception) -> Response:
        return json_response(NOT_ALLOWED, status=405)
