"""marathon-lb's per-app template labels (``HAPROXY_{n}_BACKEND_HEAD``, ``_FRONTEND_HEAD``, ``_BACKEND_SERVER_OPTIONS``,
...): Python ``str.format`` text with marathon-lb's variables, replacing one piece of the app's own sections.

A template label is the one kind of label that may span lines, so it is the one that could write configuration for
somebody else. Each is filled with a formatter that knows only plain variable names (``{backend.__class__}`` is
refused, not evaluated), and the result is held to the app's own sections:

* a head template (``FRONTEND_HEAD``, ``BACKEND_HEAD``, ``USERLIST_HEAD``) opens exactly the app's section
  (``backend <its backend>``), and a ``bind`` in ``FRONTEND_HEAD`` binds the app's own port;
* no line opens another section (``frontend``, ``listen``, ``global``, ...) nor is a ``.if``/``.diag`` directive;
* no line reads a local file or runs code (``errorfile``, ``return ... file``, ``lua.*``, ``use-service``,
  ``stats``, ``filter``, ``external-check``), nor expands the bridge's environment (``$`` inside double quotes);
* the server templates stay on the server's line;
* ``BACKEND_REDIRECT_HTTP_TO_HTTPS[_WITH_PATH]``, the one line an app writes into the port-80 frontend every app
  shares, is a single redirect conditioned on the app's own host ACL (``if ... host_{cleanedUpHostname}``, with no
  ``||``/``or``/``unless``), so it cannot redirect anybody else's requests.

The other templates of the shared frontends (``HTTP_FRONTEND_ACL*``, ``HTTPS_FRONTEND_*``, the map ones) are
refused: one app's label would route the others' traffic. What is refused takes the app out, with the reason on
``/health``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from mesolite.haproxy_bridge.errors import LabelError

HEALTH_VARS = (
    "healthCheckPortIndex",
    "healthCheckPort",
    "healthCheckProtocol",
    "healthCheckPath",
    "healthCheckTimeoutSeconds",
    "healthCheckIntervalSeconds",
    "healthCheckGracePeriodSeconds",
    "healthCheckMaxConsecutiveFailures",
    "healthCheckFalls",
    "healthCheckPortOptions",
)
SERVER_VARS = (
    "host",
    "host_ipv4",
    "port",
    "serverName",
    "serverId",
    "cookieOptions",
    "healthCheckOptions",
    "otherOptions",
)

# name → the variables marathon-lb formats it with (None: used as written, as marathon-lb does: these contain
# literal braces such as ``{ ssl_fc }``).
SUPPORTED: dict[str, tuple[str, ...] | None] = {
    "FRONTEND_HEAD": ("backend", "bindAddr", "servicePort", "mode", "sslCert", "bindOptions"),
    "FRONTEND_BACKEND_GLUE": ("backend",),
    "BACKEND_HEAD": ("backend", "balance", "mode"),
    "USERLIST_HEAD": ("backend", "user", "passwd"),
    "BACKEND_HTTP_OPTIONS": None,
    "BACKEND_HSTS_OPTIONS": None,
    "BACKEND_STICKY_OPTIONS": None,
    "HTTP_BACKEND_PROXYPASS_GLUE": ("hostname", "proxypath"),
    "HTTP_BACKEND_REVPROXY_GLUE": ("hostname", "rootpath"),
    "BACKEND_HTTP_HEALTHCHECK_OPTIONS": HEALTH_VARS,
    "BACKEND_TCP_HEALTHCHECK_OPTIONS": HEALTH_VARS,
    "BACKEND_SERVER_OPTIONS": SERVER_VARS,
    "BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS": HEALTH_VARS,
    "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS": HEALTH_VARS,
    "HTTP_BACKEND_NETWORK_ALLOWED_ACL": ("network_allowed",),
    "TCP_BACKEND_NETWORK_ALLOWED_ACL": ("network_allowed",),
    # The one line each writes into the shared port-80 frontend must be a redirect conditioned on the app's host.
    "BACKEND_REDIRECT_HTTP_TO_HTTPS": ("cleanedUpHostname", "backend", "bindAddr"),
    "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH": ("cleanedUpHostname", "backend", "bindAddr"),
}
_REDIRECTS = ("BACKEND_REDIRECT_HTTP_TO_HTTPS", "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH")
SHARED_FRONTEND = (
    "HTTP_FRONTEND_ACL",
    "HTTP_FRONTEND_ACL_WITH_AUTH",
    "HTTP_FRONTEND_ACL_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
    "HTTP_FRONTEND_ACL_WITH_PATH",
    "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH",
    "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
    "HTTP_FRONTEND_APPID_ACL",
    "HTTPS_FRONTEND_ACL",
    "HTTPS_FRONTEND_ACL_WITH_AUTH",
    "HTTPS_FRONTEND_ACL_WITH_PATH",
    "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH",
    "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
    "HTTPS_FRONTEND_AUTH_ACL_ONLY",
    "HTTPS_FRONTEND_AUTH_REQUEST_ONLY",
    "HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
)
MAPS = ("MAP_HTTP_FRONTEND_ACL", "MAP_HTTP_FRONTEND_ACL_ONLY", "MAP_HTTP_FRONTEND_APPID_ACL", "MAP_HTTPS_FRONTEND_ACL")
_TEMPLATE_LABEL = re.compile(r"^HAPROXY_(\d+)_([A-Z_]+)$")
_NAMES = frozenset(SUPPORTED) | frozenset(SHARED_FRONTEND) | frozenset(MAPS)
_HEADS = {"FRONTEND_HEAD": "frontend", "BACKEND_HEAD": "backend", "USERLIST_HEAD": "userlist"}
_SERVER_PIECES = ("BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS")
SECTIONS = frozenset(
    "global defaults frontend backend listen userlist peers resolvers mailers program http-errors ring cache "
    "fcgi-app log-forward namespace_list crt-store traces acme".split()
)
_DENIED_FIRST = frozenset(
    "errorfile errorfiles stats external-check filter lua-load lua-load-per-thread lua-prepend-path".split()
)


def is_template_label(key: str) -> bool:
    """A marathon-lb template label (may span lines); everything else must stay on one line."""
    match = _TEMPLATE_LABEL.match(key)
    return match is not None and match.group(2) in _NAMES


def refuse_unsupported(labels: Mapping[str, str], index: int) -> None:
    for name in SHARED_FRONTEND:
        if f"HAPROXY_{index}_{name}" in labels:
            raise LabelError(
                f"label HAPROXY_{index}_{name}: templates of the frontends shared by every app are not taken from app "
                "labels (one app's label would route the others' traffic); use the bridge's --template-dir"
            )
    for name in MAPS:
        if f"HAPROXY_{index}_{name}" in labels:
            raise LabelError(f"label HAPROXY_{index}_{name}: the bridge routes without map files (no --haproxy-map)")


def fill(name: str, index: int, template: str, values: Mapping[str, Any]) -> str:
    """``template.format(**values)`` with plain names only, then held to the app's own section (see the module)."""
    label = f"HAPROXY_{index}_{name}"
    allowed = SUPPORTED[name]
    if allowed is None:
        text = template
    else:
        pieces = []
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise LabelError(f"label {label}: {exc} (write {{{{ and }}}} for literal braces)") from None
        for literal, field, spec, conversion in parsed:
            pieces.append(literal)
            if field is None:
                continue
            if field not in allowed:
                known = ", ".join("{" + v + "}" for v in allowed)
                raise LabelError(f"label {label}: unknown variable {{{field}}} (this template knows {known})")
            if spec or conversion:
                raise LabelError(f"label {label}: {{{field}}} takes no conversion or format spec")
            pieces.append(str(values[field]))
        text = "".join(pieces)
    return _checked(name, label, text.replace("\r\n", "\n"), values)


def _checked(name: str, label: str, text: str, values: Mapping[str, Any]) -> str:
    lines = text.split("\n")
    if name in _REDIRECTS:
        return _redirect(label, lines, str(values["backend"]))
    if name in _SERVER_PIECES:
        if any(line.strip() for line in lines[1:]):
            raise LabelError(f"label {label} must stay on the server's line")
        first = lines[0].strip()
        _check_line(label, first)
        return f" {first}" if first else ""
    meaningful = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    head = _HEADS.get(name)
    if head is not None and meaningful:
        expected = [head, values["backend"] if head != "userlist" else f"user_{values['backend']}"]
        if meaningful[0].split() != expected:
            raise LabelError(f"label {label} must open the app's own section: '{' '.join(expected)}'")
        meaningful = meaningful[1:]
    elif head in ("backend", "userlist"):
        raise LabelError(f"label {label} is empty: the app's {head} section needs its head")
    for line in meaningful:
        _check_line(label, line)
        tokens = line.split()
        if tokens[0] == "bind" and (name != "FRONTEND_HEAD" or not _binds_own_port(tokens, values)):
            raise LabelError(f"label {label}: 'bind' may only bind the app's own service port ({line.strip()})")
    if name == "BACKEND_SERVER_OPTIONS" and (len(meaningful) != 1 or meaningful[0].split()[0] != "server"):
        raise LabelError(f"label {label} must be exactly one 'server' line")
    body = "\n".join(line.rstrip() for line in lines if line.strip())
    return body + "\n" if body else ""


def _redirect(label: str, lines: list[str], backend: str) -> str:
    """A line for the frontend every app shares: only a redirect, and only for requests to this app's host."""
    meaningful = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if len(meaningful) != 1:
        raise LabelError(f"label {label} must be exactly one redirect line")
    line = meaningful[0]
    _check_line(label, line)
    tokens = line.split()
    is_redirect = tokens[0] == "redirect" or tokens[:2] == ["http-request", "redirect"]
    condition = tokens[tokens.index("if") + 1 :] if "if" in tokens else []
    if not is_redirect or f"host_{backend}" not in condition or {"||", "or", "unless"} & set(tokens):
        raise LabelError(
            f"label {label} must be a redirect conditioned on the app's own host: '... if ... host_{backend}' "
            "(it runs in the frontend every app shares)"
        )
    return f"  {line}\n"


def _check_line(label: str, line: str) -> None:
    tokens = line.split()
    if not tokens or tokens[0].startswith("#"):
        return
    first = tokens[0].lower()
    reason = None
    if first.startswith("."):
        reason = "conditional and diagnostic directives"
    elif first in SECTIONS:
        reason = "a new section"
    elif first in _DENIED_FIRST or "use-service" in tokens or any(t.startswith("lua.") for t in tokens):
        reason = "directives reading local files, running code or exposing HAProxy's internals"
    elif "return" in tokens and ("file" in tokens or "lf-file" in tokens):
        reason = "responses read from local files"
    elif _dollar_in_quotes(line):
        reason = "'$' inside double quotes (HAProxy would expand the bridge's environment)"
    if reason is not None:
        raise LabelError(f"label {label} may not contain {reason}: {line.strip()}")


def _dollar_in_quotes(line: str) -> bool:
    quoted = escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "$" and quoted:
            return True
    return False


def _binds_own_port(tokens: list[str], values: Mapping[str, Any]) -> bool:
    if len(tokens) < 2:
        return False
    return all(address.rpartition(":")[2] == str(values["servicePort"]) for address in tokens[1].split(","))


def health_values(check: Mapping[str, Any]) -> dict[str, Any]:
    """marathon-lb's health-check variables, from the app's first health check on that port."""
    port = check.get("port")
    failures = int(check.get("maxConsecutiveFailures", 3))
    return {
        "healthCheckPortIndex": check.get("portIndex", 0),
        "healthCheckPort": port if port else "",
        "healthCheckProtocol": check.get("protocol", "HTTP"),
        "healthCheckPath": check.get("path") or "/",
        "healthCheckTimeoutSeconds": check.get("timeoutSeconds", 20),
        "healthCheckIntervalSeconds": check.get("intervalSeconds", 60),
        "healthCheckGracePeriodSeconds": check.get("gracePeriodSeconds", 300),
        "healthCheckMaxConsecutiveFailures": failures,
        "healthCheckFalls": failures + 1,
        "healthCheckPortOptions": f" port {port}" if port else "",
    }


def overrides_for(
    service: Any, labels: Mapping[str, str], health: Mapping[str, Any] | None, default_check: str
) -> tuple[dict[str, str], str, Callable[[Any, str], str] | None] | None:
    """The app's template labels for ``service``'s port, filled: ``(overrides by name, the server check options,
    a function filling the server line for one server or None)``; None when the port has no template label."""
    index = service.index
    prefix = f"HAPROXY_{index}_"
    present = {key[len(prefix) :]: value for key, value in labels.items() if key.startswith(prefix)}
    present = {name: value for name, value in present.items() if name in SUPPORTED}
    if not present:
        return None
    edge = service.edge
    values: dict[str, Any] = {
        "backend": service.backend,
        "balance": service.balance,
        "mode": service.mode,
        "bindAddr": service.bind_address,
        "servicePort": service.port,
        "sslCert": f" ssl crt {edge.ssl_cert}" if edge.ssl_cert else "",
        "bindOptions": f" {service.bind_options}" if service.bind_options else "",
        "hostname": service.vhosts[0] if service.vhosts else "",
        "proxypath": edge.proxypass_path,
        "rootpath": edge.revproxy_path,
        "user": edge.auth.user if edge.auth else "",
        "passwd": edge.auth.password if edge.auth else "",
    }
    tcp_check = service.mode == "tcp" or str((health or {}).get("protocol", "")).upper() in ("TCP", "MESOS_TCP")
    kind = "TCP" if tcp_check else "HTTP"
    http = None if service.mode == "http" else "the port is in tcp mode"
    other_mode = "TCP" if service.mode == "http" else "HTTP"
    no_networks = f"without {prefix}BACKEND_NETWORK_ALLOWED_ACL"
    with_path = "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH"
    values["cleanedUpHostname"] = service.backend  # the host ACL is host_<backend> (marathon-lb's was per host)
    unused = {
        "USERLIST_HEAD": None if edge.auth else f"without {prefix}AUTH",
        "BACKEND_REDIRECT_HTTP_TO_HTTPS": None if edge.redirect_to_https else f"without {prefix}REDIRECT_TO_HTTPS",
        with_path: None if edge.redirect_to_https else f"without {prefix}REDIRECT_TO_HTTPS",
        "BACKEND_HTTP_OPTIONS": http,
        "BACKEND_HSTS_OPTIONS": None if edge.hsts else f"without {prefix}USE_HSTS",
        "BACKEND_STICKY_OPTIONS": None if service.sticky else f"without {prefix}STICKY",
        "HTTP_BACKEND_PROXYPASS_GLUE": None if edge.proxypass_path else f"without {prefix}HTTP_BACKEND_PROXYPASS_PATH",
        "HTTP_BACKEND_REVPROXY_GLUE": None if edge.revproxy_path else f"without {prefix}HTTP_BACKEND_REVPROXY_PATH",
        f"{other_mode}_BACKEND_NETWORK_ALLOWED_ACL": f"the port is in {service.mode} mode",
        f"{service.mode.upper()}_BACKEND_NETWORK_ALLOWED_ACL": None if edge.network_allowed else no_networks,
    }
    for name in ("BACKEND_{}_HEALTHCHECK_OPTIONS", "BACKEND_SERVER_{}_HEALTHCHECK_OPTIONS"):
        unused[name.format("HTTP" if tcp_check else "TCP")] = f"the port's health check is {kind.lower()}"
        if health is None:
            unused[name.format(kind)] = "the app has no health check on this port"
    if edge.redirect_to_https:
        unused[with_path if service.path is None else "BACKEND_REDIRECT_HTTP_TO_HTTPS"] = (
            f"{prefix}PATH is {'not ' if service.path is None else ''}set"
        )
    if health is not None:
        values.update(health_values(health))
    overrides: dict[str, str] = {}
    for name, template in sorted(present.items()):
        reason = unused.get(name)
        if reason is not None:
            raise LabelError(f"label {prefix}{name} has no effect: {reason}")
        if name.endswith("NETWORK_ALLOWED_ACL"):
            overrides[name] = "".join(
                fill(name, index, template, {"network_allowed": net}) for net in edge.network_allowed
            )
        elif name != "BACKEND_SERVER_OPTIONS":
            overrides[name] = fill(name, index, template, values)
    check_options = overrides.pop(f"BACKEND_SERVER_{kind}_HEALTHCHECK_OPTIONS", default_check)
    server_template = present.get("BACKEND_SERVER_OPTIONS")
    if server_template is None:
        return overrides, check_options, None
    sticky = service.sticky and service.mode == "http"

    def server_line(server: Any, check: str) -> str:
        return fill(
            "BACKEND_SERVER_OPTIONS",
            index,
            server_template,
            {
                "host": server.host,
                "host_ipv4": server.address,
                "port": server.port,
                "serverName": server.name,
                "serverId": server.server_id,
                "cookieOptions": f" cookie {server.name}" if sticky else "",
                "healthCheckOptions": check,
                "otherOptions": " disabled" if server.draining else "",
            },
        )

    server_line(_Probe(), check_options)  # refuse a bad template even while the app has no task
    return overrides, check_options, server_line


class _Probe:
    host = "probe"
    address = "127.0.0.1"
    port = 1
    name = "probe_127.0.0.1_1"
    server_id = 1
    draining = False
