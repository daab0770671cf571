"""What HAProxy should route, as a pure function of Marathon's apps: ``build_routing(apps, settings) -> Routing``.

One :class:`Service` per app and service port: the frontend bound on that port on every node, and the backend with
one server per task that may take traffic. Labels follow marathon-lb's names (``HAPROXY_GROUP``,
``HAPROXY_{n}_VHOST``, ``_MODE``, ``_BALANCE``, ...), so apps written for it need no change.

A label that cannot be right whatever HAProxy thinks of it (a newline that would inject config lines, a mode that is
neither tcp nor http, a port out of range) takes its app out of the routing with the reason recorded; everything
else is left for ``haproxy -c`` to judge, and the bridge leaves out the apps HAProxy rejects (``state.py``).
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from mesolite.haproxy_bridge import app_templates
from mesolite.haproxy_bridge.deployment_groups import PREFILTERED, merge_deployment_groups
from mesolite.haproxy_bridge.edge import Edge, flag, parse_edge
from mesolite.haproxy_bridge.errors import LabelError

__all__ = ["LabelError", "Routing", "RoutingSettings", "Server", "Service", "build_routing"]

# Tasks that can take traffic. UNREACHABLE is kept, as marathon-lb keeps it: the agent is cut off from the master,
# not necessarily from the proxy, and HAProxy's own checks take a really dead server out.
ROUTABLE_STATES = ("TASK_RUNNING", "TASK_UNREACHABLE")
HTTP_CHECK_PROTOCOLS = ("HTTP", "MESOS_HTTP")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_TOKEN = re.compile(r"^\S+$")


DEFAULT_CHECK = " check inter 2s fall 2 rise 1"


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    address: str
    port: int
    task_id: str
    draining: bool = False  # an old blue/green task: ``disabled``, no new request, the ones in flight finish
    server_id: int = 0
    line: str | None = None  # the app's ``HAPROXY_{n}_BACKEND_SERVER_OPTIONS``, filled for this server


@dataclass(frozen=True)
class Service:
    """One frontend (``bind <address>:<port>``) and its backend: an app's service port."""

    app_id: str
    index: int
    port: int
    backend: str
    mode: str = "tcp"
    balance: str = "roundrobin"
    bind_address: str = "*"
    bind_options: str = ""
    vhosts: tuple[str, ...] = ()
    path: str | None = None
    sticky: bool = False
    weight: int = 0
    health_path: str | None = None
    servers: tuple[Server, ...] = ()
    edge: Edge = Edge()
    check_options: str = DEFAULT_CHECK
    overrides: tuple[tuple[str, str], ...] = ()  # marathon-lb template labels, filled and checked

    def override(self, name: str) -> str | None:
        """The app's own text for template ``name`` (``BACKEND_HEAD``...), None to use the built-in one."""
        for key, text in self.overrides:
            if key == name:
                return text
        return None

    @property
    def override_map(self) -> dict[str, str]:
        """The same as a dict, for templates (``{% set o = service.override_map %}``, then ``"X" in o``)."""
        return dict(self.overrides)

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything the labels decide: what must change before a rejected app is worth trying again."""
        return (
            self.app_id,
            self.index,
            self.port,
            self.backend,
            self.mode,
            self.balance,
            self.bind_address,
            self.bind_options,
            self.vhosts,
            self.path,
            self.sticky,
            self.weight,
            self.health_path,
            self.edge,
            self.check_options,
            self.overrides,
        )


@dataclass
class RoutingSettings:
    groups: list[str] = field(default_factory=lambda: ["*"])
    strict_mode: bool = False
    bind_address: str = "*"
    reserved_ports: dict[int, str] = field(default_factory=dict)


@dataclass
class Routing:
    services: list[Service] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)

    def by_app(self) -> dict[str, list[Service]]:
        out: dict[str, list[Service]] = {}
        for service in self.services:
            out.setdefault(service.app_id, []).append(service)
        return out

    def without(self, app_ids: Iterable[str]) -> Routing:
        drop = set(app_ids)
        return Routing([s for s in self.services if s.app_id not in drop], dict(self.problems))

    def only(self, app_ids: Iterable[str]) -> Routing:
        keep = set(app_ids)
        return Routing([s for s in self.services if s.app_id in keep], dict(self.problems))

    @property
    def vhost_services(self) -> list[Service]:
        """Host-header routes for the shared HTTP frontend, heaviest ``BACKEND_WEIGHT`` first (marathon-lb's order)."""
        return sorted((s for s in self.services if s.vhosts), key=lambda s: (-s.weight, s.backend))

    @property
    def server_count(self) -> int:
        return sum(len(s.servers) for s in self.services)


def backend_name(app_id: str, port: int) -> str:
    """marathon-lb's backend name, ``/prod/web`` port 10000 → ``prod_web_10000``, so its dashboards keep working."""
    return _NAME_UNSAFE.sub("_", app_id.strip("/").replace("/", "_")) + f"_{port}"


def resolve_host(host: str) -> str | None:
    """An agent's address as HAProxy needs it: an unresolvable name in a ``server`` line fails the whole config."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError:
        return None


def port_in_use(bind_address: str, port: int) -> str | None:
    """Whether a program other than an HAProxy holds the port: HAProxy binds with SO_REUSEPORT, so a probe that sets
    it too binds next to HAProxy's own sockets and fails only on someone else's. None when free (or not knowable)."""
    host = "0.0.0.0" if bind_address in ("*", "") else bind_address
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"service port {port} is in use by another program on {bind_address}"
    return None


def build_routing(
    apps: list[dict[str, Any]],
    settings: RoutingSettings,
    resolve: Callable[[str], str | None] = resolve_host,
) -> Routing:
    routing = Routing()
    apps, routing.problems = merge_deployment_groups(apps, task_routable)
    for app in sorted(apps, key=lambda a: str(a.get("id", ""))):
        app_id = str(app.get("id", ""))
        try:
            routing.services.extend(_app_services(app, settings, resolve))
        except LabelError as exc:
            routing.problems[app_id] = str(exc)
    routing.services = _claim_ports(routing, settings)
    return routing


def _claim_ports(routing: Routing, settings: RoutingSettings) -> list[Service]:
    """One frontend per port: HAProxy would happily bind a port twice (SO_REUSEPORT) and split clients at random."""
    owners: dict[int, str] = {}
    kept: list[Service] = []
    for service in sorted(routing.services, key=lambda s: (s.port, s.app_id, s.index)):
        reserved = settings.reserved_ports.get(service.port)
        if reserved is not None:
            routing.problems[service.app_id] = f"service port {service.port} is the bridge's {reserved} port"
            continue
        owner = owners.get(service.port)
        if owner is not None:
            routing.problems[service.app_id] = f"service port {service.port} is already used by {owner}"
            continue
        owners[service.port] = service.app_id
        kept.append(service)
    return kept


def _labels(app: dict[str, Any]) -> dict[str, str]:
    """The app's labels; only marathon-lb's template labels may span lines (``app_templates`` checks them)."""
    labels = app.get("labels") or {}
    out = {}
    for key, value in labels.items():
        value = str(value)
        if key.startswith("HAPROXY_") and ("\n" in value or "\r" in value) and not app_templates.is_template_label(key):
            raise LabelError(f"label {key} contains a line break")
        out[str(key)] = value
    return out


def _label(labels: dict[str, str], index: int, name: str) -> str | None:
    """``HAPROXY_{n}_NAME`` for service port n, else the app-wide ``HAPROXY_NAME`` where marathon-lb has one."""
    value = labels.get(f"HAPROXY_{index}_{name}")
    if value is None and name == "GROUP":
        value = labels.get("HAPROXY_GROUP")
    return value


def _service_ports(app: dict[str, Any]) -> list[int]:
    container = app.get("container") or {}
    mappings = container.get("portMappings") or (container.get("docker") or {}).get("portMappings") or []
    if mappings:
        return [int(m.get("servicePort") or 0) for m in mappings]
    definitions = app.get("portDefinitions")
    if definitions:
        return [int(d.get("port") or 0) for d in definitions]
    return [int(p) for p in app.get("ports") or []]


def _in_group(labels: dict[str, str], index: int, settings: RoutingSettings) -> bool:
    if "*" in settings.groups:
        return True
    value = _label(labels, index, "GROUP")
    if not value:
        return False
    return any(g.strip() in settings.groups for g in value.split(","))


def _http_check(app: dict[str, Any], index: int) -> dict[str, Any] | None:
    for check in app.get("healthChecks") or []:
        if str(check.get("protocol", "")).upper() in HTTP_CHECK_PROTOCOLS and int(check.get("portIndex") or 0) == index:
            return dict(check)
    return None


def task_routable(task: dict[str, Any], app: dict[str, Any]) -> bool:
    """Running (tasks without a state are older Marathons' running ones) and, if the app has health checks, healthy."""
    state = task.get("state")
    if state is None:
        if not task.get("startedAt"):
            return False
    elif state not in ROUTABLE_STATES:
        return False
    if app.get("healthChecks"):
        results = task.get("healthCheckResults") or []
        return bool(results) and all(r.get("alive") for r in results)
    return True


def _app_services(
    app: dict[str, Any], settings: RoutingSettings, resolve: Callable[[str], str | None]
) -> list[Service]:
    labels = _labels(app)
    out: list[Service] = []
    for index, service_port in enumerate(_service_ports(app)):
        if not _in_group(labels, index, settings):
            continue
        enabled = flag(_label(labels, index, "ENABLED"), f"HAPROXY_{index}_ENABLED")
        if enabled is False or (settings.strict_mode and enabled is not True):
            continue
        port = service_port
        if (override := _label(labels, index, "PORT")) is not None:
            try:
                port = int(override)
            except ValueError:
                raise LabelError(f"label HAPROXY_{index}_PORT: '{override}' is not a port") from None
        if not 0 < port <= 65535:
            if port == 0:
                continue  # no service port assigned: nothing to bind
            raise LabelError(f"service port {port} is not a port (1-65535)")
        out.append(_service(app, labels, index, port, settings, resolve))
    return out


def _service(
    app: dict[str, Any],
    labels: dict[str, str],
    index: int,
    port: int,
    settings: RoutingSettings,
    resolve: Callable[[str], str | None],
) -> Service:
    app_id = str(app["id"])
    check = _http_check(app, index)
    vhosts = tuple(h.strip() for h in (_label(labels, index, "VHOST") or "").split(",") if h.strip())
    for host in vhosts:
        if not _HOSTNAME.match(host):
            raise LabelError(f"label HAPROXY_{index}_VHOST: '{host}' is not a host name")
    mode_label = _label(labels, index, "MODE")
    if mode_label is not None:
        mode = mode_label.strip().lower()
        if mode not in ("tcp", "http"):
            raise LabelError(f"label HAPROXY_{index}_MODE: '{mode_label}' is neither tcp nor http")
    else:
        mode = "http" if vhosts or check is not None else "tcp"
    if vhosts and mode != "http":
        raise LabelError(f"label HAPROXY_{index}_VHOST needs HTTP mode (HAPROXY_{index}_MODE is tcp)")
    bind_address = (_label(labels, index, "BIND_ADDR") or settings.bind_address).strip()
    if not _TOKEN.match(bind_address):
        raise LabelError(f"label HAPROXY_{index}_BIND_ADDR: '{bind_address}' is not an address")
    path = _label(labels, index, "PATH")
    if path is not None and (not path.startswith("/") or not _TOKEN.match(path)):
        raise LabelError(f"label HAPROXY_{index}_PATH: '{path}' is not a path")
    weight_label = _label(labels, index, "BACKEND_WEIGHT")
    try:
        weight = int(weight_label) if weight_label is not None else 0
    except ValueError:
        raise LabelError(f"label HAPROXY_{index}_BACKEND_WEIGHT: '{weight_label}' is not an integer") from None
    balance = (_label(labels, index, "BALANCE") or "roundrobin").strip()
    prefix = f"HAPROXY_{index}_"
    own_labels = any(key.startswith(prefix) for key in labels)  # most apps: no edge label, no template
    if own_labels:
        app_templates.refuse_unsupported(labels, index)
    service = Service(
        app_id=app_id,
        index=index,
        port=port,
        backend=backend_name(app_id, port),
        mode=mode,
        balance=balance or "roundrobin",
        bind_address=bind_address,
        bind_options=(_label(labels, index, "BIND_OPTIONS") or "").strip(),
        vhosts=vhosts,
        path=path,
        sticky=bool(flag(_label(labels, index, "STICKY"), f"HAPROXY_{index}_STICKY")),
        weight=weight,
        health_path=(check.get("path") or "/") if check is not None and mode == "http" else None,
        servers=_servers(app, index, resolve),
        edge=parse_edge(lambda name: _label(labels, index, name), index, vhosts, mode) if own_labels else Edge(),
    )
    return _templated(service, labels, _health_check(app, index)) if own_labels else service


def _templated(service: Service, labels: dict[str, str], health: dict[str, Any] | None) -> Service:
    """The service with the app's template labels filled in (see ``app_templates``)."""
    filled = app_templates.overrides_for(service, labels, health, DEFAULT_CHECK)
    if filled is None:
        return service
    overrides, check_options, server_line = filled
    servers = service.servers
    if server_line is not None:
        servers = tuple(replace(s, line=server_line(s, check_options)) for s in servers)
    return replace(service, overrides=tuple(sorted(overrides.items())), check_options=check_options, servers=servers)


def _health_check(app: dict[str, Any], index: int) -> dict[str, Any] | None:
    """marathon-lb's ``get_health_check``: the first network health check on this port (or on a fixed port)."""
    for check in app.get("healthChecks") or []:
        if str(check.get("protocol", "HTTP")).upper() == "COMMAND":
            continue
        if check.get("port") or int(check.get("portIndex") or 0) == index:
            return dict(check)
    return None


def _servers(app: dict[str, Any], index: int, resolve: Callable[[str], str | None]) -> tuple[Server, ...]:
    servers: dict[str, tuple[str, str, int, str, bool]] = {}
    prefiltered = bool(app.get(PREFILTERED))
    for task in app.get("tasks") or []:
        if not prefiltered and not task_routable(task, app):
            continue
        ports = task.get("ports") or []
        host = task.get("host")
        if index >= len(ports) or not host or not ports[index]:
            continue
        address = resolve(str(host))
        if address is None:
            continue
        port = int(ports[index])
        name = server_name(str(host), address, port)
        servers[name] = (str(host), address, port, str(task.get("id", "")), bool(task.get("draining")))
    taken: set[int] = set()
    return tuple(Server(name, *servers[name], server_id=_server_id(name, taken)) for name in sorted(servers))


def server_name(host: str, address: str, port: int) -> str:
    """``<host>_<address>_<port>``, what the stats page lists and ``mesolite zdd`` looks for."""
    return _NAME_UNSAFE.sub("_", f"{host}_{address}_{port}")


def _server_id(name: str, taken: set[int]) -> int:
    """A stable ``id`` per server name within a backend (marathon-lb's ``serverId``): same name, same id."""
    server_id = zlib.crc32(name.encode()) % 32000 + 1
    while server_id in taken:
        server_id = server_id % 32000 + 1
    taken.add(server_id)
    return server_id


def parse_tasks_text(text: str) -> list[dict[str, Any]]:
    """The legacy ``/v2/tasks`` text/plain source (haproxy-marathon-bridge's) as app-shaped dicts.

    Each line is ``<safe app id>\\t<service port>\\t<host:port>\\t...``, one per app and service port, the running
    tasks in the same order on every line of an app; a port that is not numeric (apps without service ports) is
    skipped, as the script skipped it. No labels, no health: every task listed is running.
    """
    apps: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            continue
        safe_id, port_text = fields[0].strip(), fields[1].strip()
        if not port_text.isdigit():
            continue
        app = apps.setdefault(safe_id, {"id": "/" + safe_id, "portDefinitions": [], "tasks": []})
        index = len(app["portDefinitions"])
        app["portDefinitions"].append({"port": int(port_text)})
        endpoints = [f for f in fields[2:] if f.strip()]
        for position, endpoint in enumerate(endpoints):
            host, _, port = endpoint.strip().rpartition(":")
            if not host or not port.isdigit():
                continue
            while len(app["tasks"]) <= position:
                app["tasks"].append({"id": f"{safe_id}.{len(app['tasks'])}", "state": "TASK_RUNNING", "ports": []})
            task = app["tasks"][position]
            task["host"] = host
            task["ports"] += [0] * (index - len(task["ports"])) + [int(port)]
    return list(apps.values())
