"""What every UI blueprint shares: the template and static folders, display filters, and an in-process API client."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask
from werkzeug.test import Client

STATIC_URL_PATH = "/ui/static"


def ui_blueprint(name: str, service: str, nav: list[tuple[str, str]]) -> Blueprint:
    """A blueprint with the shared templates/static files; ``nav`` is (label, endpoint) for the top bar.

    The static path is ``/ui/static``: none of the services' APIs use ``/ui``."""
    bp = Blueprint(
        name,
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path=STATIC_URL_PATH,
    )
    for filter_name, function in FILTERS.items():
        bp.add_app_template_filter(function, filter_name)

    @bp.context_processor
    def _chrome() -> dict[str, Any]:
        return {"ui_service": service, "ui_nav": nav, "ui_bp": name}

    return bp


# ---------------------------------------------------------------------------------------------------- filters


def to_epoch(value: Any) -> float | None:
    """Mesos gives epoch seconds, Marathon and Chronos ISO-8601 strings: the pages show both the same way."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def ago(value: Any, now: float | None = None) -> str:
    """'3 minutes ago', as the Mesos UI shows times; the exact time goes in a title attribute (see ``isotime``)."""
    ts = to_epoch(value)
    if ts is None:
        return ""
    delta = (time.time() if now is None else now) - ts
    future = delta < 0
    delta = abs(delta)
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if delta >= seconds or unit == "second":
            count = int(delta // seconds)
            if unit == "second" and count < 10:
                return "just now" if not future else "in a few seconds"
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return ""  # pragma: no cover - the loop always returns


def isotime(value: Any) -> str:
    ts = to_epoch(value)
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def megabytes(value: Any) -> str:
    """Mesos reports memory and disk in MB; show them as the Mesos UI does (``1.3 GB``, ``512 MB``, ``0 B``)."""
    try:
        mb = float(value or 0)
    except (TypeError, ValueError):
        return str(value)
    if mb <= 0:
        return "0 B"
    for unit, size in (("TB", 1024.0**2), ("GB", 1024.0), ("MB", 1.0)):
        if mb >= size:
            return f"{mb / size:.1f} {unit}".replace(".0 ", " ")
    return f"{mb * 1024:.0f} KB"


def number(value: Any) -> str:
    """CPUs and other scalars: at most three decimals, no trailing zeros (``0.1``, ``1.6``, ``4``)."""
    try:
        x = float(value or 0)
    except (TypeError, ValueError):
        return str(value)
    if math.isclose(x, round(x), abs_tol=1e-9):
        return str(int(round(x)))
    return f"{x:.3f}".rstrip("0").rstrip(".")


def filesize(value: Any) -> str:
    try:
        size = float(value or 0)
    except (TypeError, ValueError):
        return str(value)
    return megabytes(size / (1024.0 * 1024.0)) if size >= 1024 else f"{int(size)} B"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


FILTERS = {
    "ago": ago,
    "isotime": isotime,
    "mb": megabytes,
    "num": number,
    "filesize": filesize,
    "pretty_json": pretty_json,
}


# ---------------------------------------------------------------------------------------------------- API access


@dataclass
class ApiResult:
    status: int
    text: str
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


class LocalApi:
    """The service's own REST API, called in-process through its WSGI app.

    The UI is then a client of exactly the API everyone else uses (validation, error shapes, leader proxying), with
    no need to know the address the service listens on and no extra connection per page."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> ApiResult:
        client = Client(self._app)
        kwargs: dict[str, Any] = {"method": method, "query_string": query or {}}
        if body is not None:
            kwargs["data"] = body if isinstance(body, str | bytes) else json.dumps(body)
            kwargs["content_type"] = "application/json"
        kwargs["headers"] = {"Accept": "application/json"}
        response = client.open(path, **kwargs)
        try:
            text = response.get_data(as_text=True)
        finally:
            response.close()
        return ApiResult(response.status_code, text, dict(response.headers))

    def get(self, path: str, **query: Any) -> ApiResult:
        return self.call("GET", path, query=query)
