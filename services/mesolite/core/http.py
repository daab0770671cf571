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
