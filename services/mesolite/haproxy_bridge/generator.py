"""haproxy.cfg from a :class:`~mesolite.haproxy_bridge.routing.Routing`, through jinja2 templates.

The templates are files (``templates/*.j2``) so that an operator can replace any one of them by a file of the same
name in ``--template-dir`` without copying the rest. They are re-read when they change on disk, so a fixed template
takes effect at the next sync. Nothing time-dependent goes into the output: the bridge reloads only when the text
changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import jinja2

from mesolite.haproxy_bridge.edge import host_regex
from mesolite.haproxy_bridge.routing import Routing

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
MAIN_TEMPLATE = "haproxy.cfg.j2"


class TemplateFailure(Exception):
    """A template that does not render (syntax error, unknown variable, exception inside it)."""


@dataclass
class GlobalSettings:
    """What the templates know besides the services: where HAProxy binds and where its sockets live."""

    marathon: str
    bind_address: str = "*"
    vhost_port: int = 80
    stats_port: int = 9090
    stats_address: str = "*"
    socket_path: str = "/run/haproxy/admin.sock"
    hard_stop_after: str = "5m"
    log_target: str | None = None
    https_port: int = 443
    ssl_certs: tuple[str, ...] = ()  # --ssl-certs: PEM files or directories, the first one the default
    lua_script: str | None = None  # relays marathon-lb's stats-port endpoints to the bridge (None: no Lua)
    bridge_api: str | None = None  # the bridge's own HTTP API, as HAProxy reaches it


class Generator:
    def __init__(self, settings: GlobalSettings, template_dir: str | None = None) -> None:
        self.settings = settings
        self.template_dir = template_dir
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self.env = self._environment()

    def _environment(self) -> jinja2.Environment:
        loaders: list[jinja2.BaseLoader] = []
        if self.template_dir:
            loaders.append(jinja2.FileSystemLoader(self.template_dir))
        loaders.append(jinja2.FileSystemLoader(TEMPLATES))
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
        )
        env.filters["host_regex"] = host_regex
        return env

    def _refresh(self) -> None:
        """A new environment when the operator's directory changes: jinja2's own reload check follows the file a
        template came from, so it would never notice an override added next to a built-in template."""
        if not self.template_dir:
            return
        try:
            entries = sorted(os.scandir(self.template_dir), key=lambda e: e.name)
            signature = tuple((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.is_file())
        except OSError:
            signature = ()
        if signature != self._signature:
            self._signature = signature
            self.env = self._environment()

    def render(self, routing: Routing) -> str:
        context: dict[str, Any] = dict(vars(self.settings))
        context["services"] = routing.services
        context["vhost_services"] = routing.vhost_services
        context["auth_services"] = [s for s in routing.services if s.edge.auth is not None]
        certs = list(self.settings.ssl_certs)
        certs += [s.edge.ssl_cert for s in routing.services if s.edge.ssl_cert and s.edge.ssl_cert not in certs]
        context["ssl_certs"] = list(dict.fromkeys(certs))
        # Only with --ssl-certs: the port is reserved then, so no app's service port can collide with it.
        context["https_enabled"] = bool(self.settings.https_port and routing.vhost_services and self.settings.ssl_certs)
        port = self.settings.https_port
        context["https_suffix"] = "" if port in (0, 443) else f":{port}"
        try:
            self._refresh()
            return self.env.get_template(MAIN_TEMPLATE).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateFailure(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
        except Exception as exc:  # whatever an operator's template does, the proxy must not suffer
            raise TemplateFailure(f"{type(exc).__name__}: {exc}") from exc
