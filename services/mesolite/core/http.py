"""HTTP helpers shared by every service's Flask app.

Mesos' v0 read endpoints all accept ``?jsonp=<callback>`` (the web UI fetches agents cross-origin that way), so every
JSON answer goes through :func:`json_response` rather than ``flask.jsonify``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, request

_JSONP_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]*$")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise ``obj``; wrap it in the caller's JSONP callback when ``?jsonp=`` names a safe identifier."""
    body = json.dumps(obj, separators=(",", ":"))
    callback = request.args.get("jsonp") or request.args.get("callback")
    if callback and _JSONP_CALLBACK.match(callback):
        return Response(f"{callback}({body});", status=status, headers=headers, mimetype="text/javascript")
    return Response(body, status=status, headers=headers, mimetype="application/json")


def text_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Plain-text answers: Mesos reports most API errors as a bare message, not JSON."""
    return Response(text, status=status, headers=headers, mimetype="text/plain")


def query_int(name: str, default: int | None = None) -> int | None:
    """Read an integer query parameter; raise ``ValueError`` naming it when it is not one."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"Failed to parse '{name}': '{raw}' is not an integer") from None


def v1_call_body() -> dict[str, Any] | Response:
    """The checks every Mesos v1 endpoint (scheduler, executor) makes before it looks at a call, with Mesos'
    status codes: 400 without a Content-Type, 415 for anything but JSON (protobuf is not served here), 400 for a
    body that is not a JSON object. Returns the call, or the error response to send."""
    content_type = request.headers.get("Content-Type")
    if not content_type:
        return text_response("Expecting 'Content-Type' to be present", 400)
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json":
        return text_response(
            f"Expecting 'Content-Type' of application/json (protobuf is not served here); got '{content_type}'",
            415,
        )
    try:
        call = json.loads(request.get_data() or b"")
    except ValueError as exc:
        return text_response(f"Failed to parse body into JSON: {exc}", 400)
    if not isinstance(call, dict):
        return text_response("Failed to convert JSON into Call protobuf: Expecting a JSON object", 400)
    return call
