"""App definitions: Marathon's defaults, its validation rules and error shapes, and the legacy forms still in use.

An app arrives in any of the forms clients send (``ports`` or ``portDefinitions``, ``uris`` or ``fetch``, Docker
settings under ``container.docker`` as in 1.4 or at the container level as in 1.5, the pre-0.7 ``{image, options}``
container from the seed talks) and is normalised into one canonical JSON form with every default filled in. That
form is what is stored, compared to detect config changes, and returned (only with keys the strict
marathon-python models know).

Malformed JSON types are Marathon's 400 ``Invalid JSON`` with Play's error codes; rule violations are its 422
``Object is not valid`` with ``details`` grouped by path (array elements as ``/healthChecks(0)/portIndex``).
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

from mesolite.marathon import pathid

CONSTRAINT_OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
MARATHON_HEALTH = ("HTTP", "HTTPS", "TCP")
KILL_SELECTIONS = ("YOUNGEST_FIRST", "OLDEST_FIRST")
NETWORKS = ("HOST", "BRIDGE", "USER", "NONE")
PORT_PROTOCOLS = ("tcp", "udp", "udp,tcp")
_PORT_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_LABEL_ENV = re.compile(r"[^A-Z0-9_]")
# ``//cmd`` (the command executor, also when empty) or the path of a custom executor (``AppValidation``).
_EXECUTOR = re.compile(r"^(//cmd)|(/?[^/]+(/[^/]+)*)|$")

DEFAULT_UPGRADE = {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
RESIDENT_UPGRADE = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
DEFAULT_UNREACHABLE = {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}

# Fields that only change how many instances run; anything else changing is a config change (a rolling restart).
SCALE_FIELDS = ("instances", "version", "versionInfo")


class BadJson(Exception):
    """Marathon's 400: the body is not JSON, or a field has the wrong JSON type."""

    def __init__(self, path: str = "/", error: str = "error.expected.jsobject") -> None:
        super().__init__(f"{path}: {error}")
        self.path = path
        self.error = error

    def body(self) -> dict[str, Any]:
        return {"message": "Invalid JSON", "details": [{"path": self.path, "errors": [self.error]}]}


class Invalid(Exception):
    """Marathon's 422 with ``details`` grouped by path."""

    def __init__(self, errors: list[tuple[str, str]], message: str = "Object is not valid") -> None:
        super().__init__("; ".join(f"{p}: {e}" for p, e in errors))
        self.errors = errors
        self.message = message

    def body(self) -> dict[str, Any]:
        grouped: dict[str, list[str]] = {}
        for path, error in self.errors:
            grouped.setdefault(path, [])
            if error not in grouped[path]:
                grouped[path].append(error)
        return {"message": self.message, "details": [{"path": p, "errors": e} for p, e in grouped.items()]}


# ---------------------------------------------------------------------------------------------- JSON type checks

_TYPE_CODES = {
    str: "error.expected.jsstring",
    bool: "error.expected.jsboolean",
    list: "error.expected.jsarray",
    dict: "error.expected.jsobject",
    "number": "error.expected.jsnumber",
    "int": "error.expected.jsnumber",
}


def _is(value: Any, kind: Any) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "int":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))


def _typed(obj: dict[str, Any], key: str, kind: Any, path: str) -> Any:
    """The field if present and of the right JSON type (null counts as absent); else Marathon's 400."""
    value = obj.get(key)
    if value is None:
        return None
    if not _is(value, kind):
        raise BadJson(f"{path}/{key}", _TYPE_CODES[kind])
    if kind == "int":
        return int(value)
    if kind == "number":
        return float(value)
    return value


def _string_list(obj: dict[str, Any], key: str, path: str) -> list[str] | None:
    value = _typed(obj, key, list, path)
    if value is None:
        return None
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise BadJson(f"{path}/{key}({i})", "error.expected.jsstring")
    return list(value)


def _string_map(obj: dict[str, Any], key: str, path: str, allow_secret: bool = False) -> dict[str, Any]:
    value = _typed(obj, key, dict, path) or {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, str):
            out[k] = v
        elif allow_secret and isinstance(v, dict) and isinstance(v.get("secret"), str):
            out[k] = {"secret": v["secret"]}
        elif isinstance(v, int | float) and not isinstance(v, bool):
            raise BadJson(f"{path}/{key}/{k}", "error.expected.jsstring")
        else:
            raise BadJson(f"{path}/{key}/{k}", "error.expected.jsstring")
    return out


# ---------------------------------------------------------------------------------------------- normalisation


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, error: str) -> None:
        self.items.append((path, error))

    def at_least(self, path: str, value: float | None, minimum: float) -> None:
        if value is not None and value < minimum:
            self.add(path, f"got {_num(value)}, expected {_num(minimum)} or more")


def _num(value: float) -> str:
    return repr(float(value))


def normalize_app(raw: Any, base: str = "/", require_id: bool = True) -> dict[str, Any]:
    """Validate one app definition and return its canonical form (without ``version``/``versionInfo``)."""
    if not isinstance(raw, dict):
        raise BadJson("/", "error.expected.jsobject")
    errors = _Errors()
    app: dict[str, Any] = {}

    raw_id = _typed(raw, "id", str, "")
    if raw_id is None or raw_id.strip("/") == "":
        if require_id:
            errors.add("/id", "must not be empty")
        app["id"] = canonical_or_empty(raw_id or "", base)
    else:
        for error in pathid.segment_errors(raw_id):
            errors.add("/id", error)
        app["id"] = pathid.canonical(raw_id, base)

    cmd = _typed(raw, "cmd", str, "")
    args = _string_list(raw, "args", "")
    if cmd is not None and cmd == "":
        errors.add("/cmd", "must not be empty")
    app["cmd"] = cmd if cmd else None
    app["args"] = args
    app["user"] = _typed(raw, "user", str, "")
    app["env"] = _string_map(raw, "env", "", allow_secret=True)
    app["instances"] = _typed(raw, "instances", "int", "")
    app["cpus"] = _typed(raw, "cpus", "number", "")
    app["mem"] = _typed(raw, "mem", "number", "")
    app["disk"] = _typed(raw, "disk", "number", "")
    app["gpus"] = _typed(raw, "gpus", "int", "")
    for key, default in (("instances", 1), ("cpus", 1.0), ("mem", 128.0), ("disk", 0.0), ("gpus", 0)):
        if app[key] is None:
            app[key] = default
        errors.at_least(f"/{key}", app[key], 0.0)
    app["executor"] = _typed(raw, "executor", str, "") or ""
    if not _EXECUTOR.fullmatch(app["executor"]):
        errors.add("/executor", f"must fully match regular expression '{_EXECUTOR.pattern}'")
    app["constraints"] = _constraints(raw, errors)
    app["fetch"] = _fetch(raw, errors)
    app["storeUrls"] = _string_list(raw, "storeUrls", "") or []
    app["backoffSeconds"] = _default(_typed(raw, "backoffSeconds", "number", ""), 1)
    app["backoffFactor"] = _default(_typed(raw, "backoffFactor", "number", ""), 1.15)
    app["maxLaunchDelaySeconds"] = _default(_typed(raw, "maxLaunchDelaySeconds", "number", ""), 3600)
    errors.at_least("/backoffSeconds", app["backoffSeconds"], 0.0)
    errors.at_least("/backoffFactor", app["backoffFactor"], 1.0)
    errors.at_least("/maxLaunchDelaySeconds", app["maxLaunchDelaySeconds"], 0.0)
    app["container"] = _container(raw, errors)
    network = ((app["container"] or {}).get("docker") or {}).get("network") or "HOST"
    app["portDefinitions"] = _port_definitions(raw, errors, network)
    app["requirePorts"] = bool(_typed(raw, "requirePorts", bool, ""))
    app["healthChecks"] = _health_checks(raw, errors)
    app["readinessChecks"] = _readiness_checks(raw, errors)
    app["dependencies"] = _dependencies(raw, errors, app["id"])
    app["labels"] = _string_map(raw, "labels", "")
    app["acceptedResourceRoles"] = _string_list(raw, "acceptedResourceRoles", "")
    app["ipAddress"] = _typed(raw, "ipAddress", dict, "")
    app["residency"] = _typed(raw, "residency", dict, "")
    app["secrets"] = _typed(raw, "secrets", dict, "") or {}  # checked against the features at deploy (secrets.py)
    grace = _typed(raw, "taskKillGracePeriodSeconds", "number", "")
    if grace is not None and grace <= 0:
        errors.add("/taskKillGracePeriodSeconds", f"got {_num(grace)}, expected more than 0.0")
    app["taskKillGracePeriodSeconds"] = grace
    kill_selection = _typed(raw, "killSelection", str, "") or "YOUNGEST_FIRST"
    if kill_selection not in KILL_SELECTIONS:
        errors.add("/killSelection", f"error.unknown.enum.literal (allowed: {', '.join(KILL_SELECTIONS)})")
    app["killSelection"] = kill_selection
    resident = any(v.get("persistent") for v in (app["container"] or {}).get("volumes") or [])
    app["unreachableStrategy"] = _unreachable(raw, errors, resident)
    app["upgradeStrategy"] = _upgrade(raw, errors, resident)
    if resident and app["residency"] is None:
        app["residency"] = {"relaunchEscalationTimeoutSeconds": 3600, "taskLostBehavior": "WAIT_FOREVER"}

    if app["cmd"] is not None and app["args"] is not None:
        errors.add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
    elif app["cmd"] is None and app["args"] is None and app["container"] is None:
        errors.add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
    _check_health_ports(app, errors)
    _check_readiness_ports(app, errors)
    if errors.items:
        raise Invalid(errors.items)
    return app


def canonical_or_empty(raw_id: str, base: str) -> str:
    return pathid.canonical(raw_id, base) if raw_id else ""


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _constraints(raw: dict[str, Any], errors: _Errors) -> list[list[str]]:
    value = _typed(raw, "constraints", list, "") or []
    out: list[list[str]] = []
    for i, item in enumerate(value):
        path = f"/constraints({i})"
        item = _legacy_constraint(item)
        if not isinstance(item, list):
            raise BadJson(path, "error.expected.jsarray")
        parts = [str(p) if isinstance(p, int | float) and not isinstance(p, bool) else p for p in item]
        if not all(isinstance(p, str) for p in parts):
            raise BadJson(path, "error.expected.jsstring")
        if len(parts) not in (2, 3):
            errors.add(path, "Each constraint must have either 2 or 3 fields")
            continue
        field, operator = parts[0], parts[1].upper()
        param = parts[2] if len(parts) == 3 else None
        if operator not in CONSTRAINT_OPERATORS:
            errors.add(path, f"Constraint operator must be one of the following: [{', '.join(CONSTRAINT_OPERATORS)}]")
            continue
        if not field:
            errors.add(path, "Missing field and operator")
        if operator in ("LIKE", "UNLIKE"):
            if param is None:
                errors.add(path, "A regular expression value must be provided")
            else:
                try:
                    re.compile(param)
                except re.error:
                    errors.add(path, "'" + param + "' is not a valid regular expression")
        elif operator == "MAX_PER":
            if param is None or not param.isdigit():
                errors.add(path, "Value was not a valid number")
        elif operator == "GROUP_BY" and param is not None and not param.isdigit():
            errors.add(path, "Value was not a valid number")
        elif operator == "IS" and param is None:
            errors.add(path, "A value must be provided")
        elif operator == "UNIQUE" and param is not None:
            errors.add(path, "Value specified but not used")
        out.append([field, operator] + ([param] if param is not None else []))
    return out


def _legacy_constraint(item: Any) -> Any:
    """A constraint written as ``{"hostname": "UNLIKE", "slave": "slave-[2-3]"}`` (seed 000): field → operator
    plus one more entry holding the value."""
    if isinstance(item, list) and len(item) == 1 and isinstance(item[0], dict):
        item = item[0]
    if not isinstance(item, dict):
        return item
    field = next((k for k, v in item.items() if isinstance(v, str) and v.upper() in CONSTRAINT_OPERATORS), None)
    if field is None:
        return item
    rest = [v for k, v in item.items() if k != field]
    return [field, item[field]] + rest[:1]


def _fetch(raw: dict[str, Any], errors: _Errors) -> list[dict[str, Any]]:
    fetch = _typed(raw, "fetch", list, "")
    uris = _string_list(raw, "uris", "")
    out: list[dict[str, Any]] = []
    if fetch is not None:
        for i, item in enumerate(fetch):
            path = f"/fetch({i})"
            if not isinstance(item, dict):
                raise BadJson(path, "error.expected.jsobject")
            uri = _typed(item, "uri", str, path)
            if not uri:
                errors.add(f"{path}/uri", "must not be empty")
            entry = {
                "uri": uri or "",
                "extract": _default(_typed(item, "extract", bool, path), True),
                "executable": bool(_typed(item, "executable", bool, path)),
                "cache": bool(_typed(item, "cache", bool, path)),
            }
            dest = _typed(item, "destPath", str, path)
            if dest:
                entry["destPath"] = dest
            out.append(entry)
    if uris:
        known = {e["uri"] for e in out}
        for uri in uris:
            # Slides wrap long URLs; a URI never contains whitespace.
            uri = "".join(uri.split())
            if uri not in known:
                out.append({"uri": uri, "extract": _is_archive(uri), "executable": False, "cache": False})
    return out


def _is_archive(uri: str) -> bool:
    return uri.endswith((".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"))


def _container(raw: dict[str, Any], errors: _Errors) -> dict[str, Any] | None:
    container = _typed(raw, "container", dict, "")
    if container is None:
        return None
    path = "/container"
    if "type" not in container and "docker" not in container and isinstance(container.get("image"), str):
        container = _legacy_container(container)
    ctype = _typed(container, "type", str, path) or "DOCKER"
    if ctype not in ("DOCKER", "MESOS"):
        errors.add(f"{path}/type", "error.unknown.enum.literal (allowed: DOCKER, MESOS)")
    out: dict[str, Any] = {"type": ctype, "volumes": _volumes(container, errors, path)}
    docker = _typed(container, "docker", dict, path)
    networks = raw.get("networks")
    top_mappings = _typed(container, "portMappings", list, path)
    if ctype == "DOCKER" or docker is not None:
        docker = docker or {}
        dpath = f"{path}/docker"
        image = _typed(docker, "image", str, dpath)
        if not image and ctype == "DOCKER":
            errors.add(f"{dpath}/image", "must not be empty")
        network = _typed(docker, "network", str, dpath)
        if network is None and isinstance(networks, list) and networks and isinstance(networks[0], dict):
            mode = str(networks[0].get("mode", "host")).lower()
            network = {"host": "HOST", "container/bridge": "BRIDGE", "container": "USER"}.get(mode, "HOST")
        network = network or "HOST"
        if network not in NETWORKS:
            errors.add(f"{dpath}/network", f"error.unknown.enum.literal (allowed: {', '.join(NETWORKS)})")
        mappings_raw = _typed(docker, "portMappings", list, dpath)
        mpath = f"{dpath}/portMappings"
        if mappings_raw is None and top_mappings is not None:
            mappings_raw, mpath = top_mappings, f"{path}/portMappings"
        mappings = _port_mappings(mappings_raw or [], errors, mpath)
        if mappings and network not in ("BRIDGE", "USER"):
            errors.add(mpath, "Port mappings must be empty when the network mode is not BRIDGE or USER")
        parameters = _typed(docker, "parameters", list, dpath) or []
        params_out = []
        for i, p in enumerate(parameters):
            if not isinstance(p, dict) or not isinstance(p.get("key"), str):
                raise BadJson(f"{dpath}/parameters({i})", "error.expected.jsobject")
            params_out.append({"key": p["key"], "value": str(p.get("value", ""))})
        out["docker"] = {
            "image": image or "",
            "network": network,
            "portMappings": mappings,
            "privileged": bool(_typed(docker, "privileged", bool, dpath)),
            "parameters": params_out,
            "forcePullImage": bool(_typed(docker, "forcePullImage", bool, dpath)),
        }
        pull_config = _typed(docker, "pullConfig", dict, dpath)
        if pull_config is not None:
            out["docker"]["pullConfig"] = {"secret": _typed(pull_config, "secret", str, f"{dpath}/pullConfig")}
    return out


def _legacy_container(container: dict[str, Any]) -> dict[str, Any]:
    """Marathon 0.6's ``{"image": "docker://…", "options": [...]}`` (seed 001) as a Docker container."""
    image = container["image"]
    if image.startswith("docker://"):
        image = image[len("docker://") :]
    parameters: list[dict[str, str]] = []
    options = [str(o) for o in container.get("options") or []]
    long_names = {"-v": "volume", "-e": "env", "-p": "publish", "-h": "hostname", "-u": "user", "-w": "workdir"}
    i = 0
    while i < len(options):
        option = options[i]
        if option.startswith("--") and "=" in option:
            key, _, value = option[2:].partition("=")
            parameters.append({"key": key, "value": value})
            i += 1
        elif option.startswith("-") and i + 1 < len(options):
            key = long_names.get(option, option.lstrip("-"))
            parameters.append({"key": key, "value": options[i + 1]})
            i += 2
        else:
            parameters.extend({"key": k, "value": ""} for k in shlex.split(option.lstrip("-")))
            i += 1
    return {"type": "DOCKER", "docker": {"image": image, "network": "HOST", "parameters": parameters}}


def _port_mappings(items: list[Any], errors: _Errors, path: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(items):
        ipath = f"{path}({i})"
        if not isinstance(item, dict):
            raise BadJson(ipath, "error.expected.jsobject")
        mapping: dict[str, Any] = {
            "containerPort": _default(_typed(item, "containerPort", "int", ipath), 0),
            "hostPort": _typed(item, "hostPort", "int", ipath),
            "servicePort": _default(_typed(item, "servicePort", "int", ipath), 0),
            "protocol": _typed(item, "protocol", str, ipath) or "tcp",
        }
        if mapping["hostPort"] is None:
            mapping["hostPort"] = 0
        for key in ("containerPort", "hostPort", "servicePort"):
            if not 0 <= mapping[key] <= 65535:
                errors.add(f"{ipath}/{key}", f"got {mapping[key]}, expected between 0 and 65535")
        if mapping["protocol"] not in PORT_PROTOCOLS:
            errors.add(f"{ipath}/protocol", "Invalid protocol. Only 'udp', 'tcp' or 'udp,tcp' are allowed.")
        name = _typed(item, "name", str, ipath)
        if name is not None:
            if not _PORT_NAME.match(name):
                errors.add(f"{ipath}/name", f"must fully match regular expression '{_PORT_NAME.pattern}'")
            mapping["name"] = name
        labels = _string_map(item, "labels", ipath)
        if labels:
            mapping["labels"] = labels
        out.append(mapping)
    names = [m["name"] for m in out if "name" in m]
    if len(names) != len(set(names)):
        errors.add(path, "Port names must be unique.")
    return out


def _volumes(container: dict[str, Any], errors: _Errors, path: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_typed(container, "volumes", list, path) or []):
        vpath = f"{path}/volumes({i})"
        if not isinstance(item, dict):
            raise BadJson(vpath, "error.expected.jsobject")
        container_path = _typed(item, "containerPath", str, vpath)
        if not container_path:
            errors.add(f"{vpath}/containerPath", "must not be empty")
        mode = _typed(item, "mode", str, vpath) or "RW"
        if mode not in ("RO", "RW"):
            errors.add(f"{vpath}/mode", "error.unknown.enum.literal (allowed: RO, RW)")
        volume: dict[str, Any] = {"containerPath": container_path or "", "mode": mode}
        host_path = _typed(item, "hostPath", str, vpath)
        persistent = _typed(item, "persistent", dict, vpath)
        external = _typed(item, "external", dict, vpath)
        if host_path is not None:
            volume["hostPath"] = host_path
        if persistent is not None:
            size = persistent.get("size")
            if not _is(size, "number") or size <= 0:
                errors.add(f"{vpath}/persistent/size", "must be greater than 0")
            volume["persistent"] = {"type": persistent.get("type", "root"), "size": size}
        if external is not None:
            volume["external"] = external
        secret = _typed(item, "secret", str, vpath)
        if secret is not None:
            volume["secret"] = secret  # a file-based secret (secrets.py)
        if host_path is None and persistent is None and external is None and secret is None:
            errors.add(vpath, "volume must have one of hostPath, persistent or external")
        out.append(volume)
    return out


def _port_definitions(raw: dict[str, Any], errors: _Errors, network: str) -> list[dict[str, Any]]:
    defs = _typed(raw, "portDefinitions", list, "")
    ports = _typed(raw, "ports", list, "")
    if ports is not None:
        for i, p in enumerate(ports):
            if not _is(p, "int"):
                raise BadJson(f"/ports({i})", "error.expected.jsnumber")
    if defs is None and ports is None:
        if network in ("BRIDGE", "USER"):
            return []
        return [{"port": 0, "protocol": "tcp"}]
    out: list[dict[str, Any]] = []
    if defs is not None:
        for i, item in enumerate(defs):
            path = f"/portDefinitions({i})"
            if not isinstance(item, dict):
                raise BadJson(path, "error.expected.jsobject")
            port = _default(_typed(item, "port", "int", path), 0)
            entry: dict[str, Any] = {"port": port, "protocol": _typed(item, "protocol", str, path) or "tcp"}
            if not 0 <= port <= 65535:
                errors.add(f"{path}/port", f"got {port}, expected between 0 and 65535")
            if entry["protocol"] not in PORT_PROTOCOLS:
                errors.add(f"{path}/protocol", "Invalid protocol. Only 'udp', 'tcp' or 'udp,tcp' are allowed.")
            name = _typed(item, "name", str, path)
            if name is not None:
                if not _PORT_NAME.match(name):
                    errors.add(f"{path}/name", f"must fully match regular expression '{_PORT_NAME.pattern}'")
                entry["name"] = name
            labels = _string_map(item, "labels", path)
            if labels:
                entry["labels"] = labels
            out.append(entry)
        if ports is not None and [int(p) for p in ports] != [d["port"] for d in out]:
            errors.add("/", "You cannot specify both ports and port definitions")
    else:
        out = [{"port": int(p), "protocol": "tcp"} for p in ports or []]
    if network in ("BRIDGE", "USER"):
        return []
    fixed = [d["port"] for d in out if d["port"] != 0]
    if len(fixed) != len(set(fixed)):
        errors.add("/portDefinitions", "Ports must be unique.")
    names = [d["name"] for d in out if "name" in d]
    if len(names) != len(set(names)):
        errors.add("/portDefinitions", "Port names must be unique.")
    return out


def _health_checks(raw: dict[str, Any], errors: _Errors) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_typed(raw, "healthChecks", list, "") or []):
        path = f"/healthChecks({i})"
        if not isinstance(item, dict):
            raise BadJson(path, "error.expected.jsobject")
        protocol = (_typed(item, "protocol", str, path) or "HTTP").upper()
        if protocol not in HEALTH_PROTOCOLS:
            errors.add(f"{path}/protocol", f"error.unknown.enum.literal (allowed: {', '.join(HEALTH_PROTOCOLS)})")
        check: dict[str, Any] = {
            "protocol": protocol,
            "gracePeriodSeconds": _default(_typed(item, "gracePeriodSeconds", "int", path), 300),
            "intervalSeconds": _default(_typed(item, "intervalSeconds", "int", path), 60),
            "timeoutSeconds": _default(_typed(item, "timeoutSeconds", "int", path), 20),
            "maxConsecutiveFailures": _default(_typed(item, "maxConsecutiveFailures", "int", path), 3),
            "delaySeconds": _default(_typed(item, "delaySeconds", "int", path), 15),
        }
        for key in ("gracePeriodSeconds", "maxConsecutiveFailures", "delaySeconds"):
            errors.at_least(f"{path}/{key}", check[key], 0)
        for key in ("intervalSeconds", "timeoutSeconds"):
            errors.at_least(f"{path}/{key}", check[key], 1)
        if protocol == "COMMAND":
            command = item.get("command")
            if isinstance(command, str):
                command = {"value": command}
            if not isinstance(command, dict) or not isinstance(command.get("value"), str) or not command["value"]:
                errors.add(f"{path}/command", "Health check protocol COMMAND requires a command")
                command = {"value": ""}
            check["command"] = {"value": command["value"]}
        else:
            port = _typed(item, "port", "int", path)
            if port is not None:
                check["port"] = port
            else:
                check["portIndex"] = _default(_typed(item, "portIndex", "int", path), 0)
                errors.at_least(f"{path}/portIndex", check["portIndex"], 0)
        if protocol in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"):
            check["path"] = _typed(item, "path", str, path) or "/"
        if protocol in ("HTTP", "HTTPS"):
            check["ignoreHttp1xx"] = bool(_typed(item, "ignoreHttp1xx", bool, path))
        out.append(check)
    kinds = {c["protocol"] in MARATHON_HEALTH for c in out if c["protocol"] != "COMMAND"}
    if len(kinds) > 1:
        errors.add("/healthChecks", "AppDefinition can only have Marathon or Mesos health checks, not both")
    return out


def _readiness_checks(raw: dict[str, Any], errors: _Errors) -> list[dict[str, Any]]:
    items = _typed(raw, "readinessChecks", list, "") or []
    if len(items) > 1:
        errors.add("/readinessChecks", "Only one readiness check is supported at the moment")
    out = []
    for i, item in enumerate(items):
        path = f"/readinessChecks({i})"
        if not isinstance(item, dict):
            raise BadJson(path, "error.expected.jsobject")
        check = {
            "name": _typed(item, "name", str, path) or "readinessCheck",
            "protocol": (_typed(item, "protocol", str, path) or "HTTP").upper(),
            "path": _typed(item, "path", str, path) or "/",
            "portName": _typed(item, "portName", str, path) or "http-api",
            "intervalSeconds": _default(_typed(item, "intervalSeconds", "int", path), 30),
            "timeoutSeconds": _default(_typed(item, "timeoutSeconds", "int", path), 10),
            "httpStatusCodesForReady": item.get("httpStatusCodesForReady") or [200],
            "preserveLastResponse": bool(_typed(item, "preserveLastResponse", bool, path)),
        }
        if check["protocol"] not in ("HTTP", "HTTPS"):
            errors.add(f"{path}/protocol", "error.unknown.enum.literal (allowed: HTTP, HTTPS)")
        if check["timeoutSeconds"] >= check["intervalSeconds"]:
            errors.add(f"{path}/timeoutSeconds", "must be smaller than intervalSeconds")
        out.append(check)
    return out


def _dependencies(raw: dict[str, Any], errors: _Errors, app_id: str) -> list[str]:
    out = []
    base = pathid.parent(app_id) if app_id else "/"
    for i, dep in enumerate(_string_list(raw, "dependencies", "") or []):
        for error in pathid.segment_errors(dep):
            errors.add(f"/dependencies({i})", error)
        out.append(pathid.canonical(dep, base))
    return out


def _unreachable(raw: dict[str, Any], errors: _Errors, resident: bool) -> Any:
    """``{inactiveAfterSeconds, expungeAfterSeconds}`` (default ``{0, 0}``: replace and forget at once), or
    ``"disabled"`` (never replaced; the default, and the only choice, for resident run specs whose data lives on
    their agent), as ``UnreachableStrategy.scala`` has them."""
    value = raw.get("unreachableStrategy")
    if value is None:
        return "disabled" if resident else dict(DEFAULT_UNREACHABLE)
    if value == "disabled":
        return "disabled"
    if not isinstance(value, dict):
        raise BadJson("/unreachableStrategy", "error.expected.jsobject")
    inactive = _default(_typed(value, "inactiveAfterSeconds", "int", "/unreachableStrategy"), 0)
    expunge = _default(_typed(value, "expungeAfterSeconds", "int", "/unreachableStrategy"), 0)
    errors.at_least("/unreachableStrategy/inactiveAfterSeconds", inactive, 0)
    errors.at_least("/unreachableStrategy/expungeAfterSeconds", expunge, 0)
    if inactive > expunge:
        errors.add(
            "/unreachableStrategy/inactiveAfterSeconds",
            f"inactiveAfterSeconds ({inactive}) must be less or equal to expungeAfterSeconds, which is {expunge}",
        )
    if resident:
        errors.add("/unreachableStrategy", "unreachableStrategy must be disabled for resident apps")
    return {"inactiveAfterSeconds": inactive, "expungeAfterSeconds": expunge}


def _upgrade(raw: dict[str, Any], errors: _Errors, resident: bool) -> dict[str, float]:
    value = _typed(raw, "upgradeStrategy", dict, "")
    default = RESIDENT_UPGRADE if resident else DEFAULT_UPGRADE
    if value is None:
        return dict(default)
    out = {}
    for key in ("minimumHealthCapacity", "maximumOverCapacity"):
        number = _typed(value, key, "number", "/upgradeStrategy")
        number = default[key] if number is None else number
        if number > 1:
            errors.add(f"/upgradeStrategy/{key}", "is greater than 1")
        elif number < 0:
            errors.add(f"/upgradeStrategy/{key}", "is less than 0")
        out[key] = number
    if resident and out["maximumOverCapacity"] != 0:
        errors.add("/upgradeStrategy/maximumOverCapacity", "got 1.0, expected 0.0 for resident apps")
    return out


def _check_health_ports(app: dict[str, Any], errors: _Errors) -> None:
    count = port_count(app)
    for i, check in enumerate(app["healthChecks"]):
        if "portIndex" in check and check["protocol"] != "COMMAND" and check["portIndex"] >= count:
            errors.add(
                f"/healthChecks({i})",
                "Health check port indices must address an element of the ports array or container port mappings.",
            )


def _check_readiness_ports(app: dict[str, Any], errors: _Errors) -> None:
    names = {p.get("name") for p in app["portDefinitions"]}
    names |= {m.get("name") for m in ((app["container"] or {}).get("docker") or {}).get("portMappings") or []}
    for i, check in enumerate(app["readinessChecks"]):
        if check["portName"] not in names:
            errors.add(f"/readinessChecks({i})", "readinessCheck.portName must be a defined port name")


# ---------------------------------------------------------------------------------------------- helpers


def port_mappings(app: dict[str, Any]) -> list[dict[str, Any]]:
    return ((app.get("container") or {}).get("docker") or {}).get("portMappings") or []


def network(app: dict[str, Any]) -> str:
    return ((app.get("container") or {}).get("docker") or {}).get("network") or "HOST"


def port_count(app: dict[str, Any]) -> int:
    mappings = port_mappings(app)
    return len(mappings) if mappings else len(app.get("portDefinitions") or [])


def service_ports(app: dict[str, Any]) -> list[int]:
    mappings = port_mappings(app)
    if mappings:
        return [m["servicePort"] for m in mappings]
    return [d["port"] for d in app.get("portDefinitions") or []]


def set_service_ports(app: dict[str, Any], ports: list[int]) -> None:
    mappings = port_mappings(app)
    target = mappings if mappings else app.get("portDefinitions") or []
    key = "servicePort" if mappings else "port"
    for entry, port in zip(target, ports, strict=False):
        entry[key] = port


def port_names(app: dict[str, Any]) -> list[str | None]:
    mappings = port_mappings(app)
    source = mappings if mappings else app.get("portDefinitions") or []
    return [entry.get("name") for entry in source]


def config_of(app: dict[str, Any]) -> dict[str, Any]:
    """The parts of an app whose change needs new tasks (everything but scale and version bookkeeping)."""
    return {k: v for k, v in app.items() if k not in SCALE_FIELDS}


def is_resident(app: dict[str, Any]) -> bool:
    return any(v.get("persistent") for v in (app.get("container") or {}).get("volumes") or [])


def label_env_name(name: str) -> str:
    return _LABEL_ENV.sub("_", name.upper())


def merge_update(existing: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """PUT with ``partialUpdate``: given fields replace the old ones; fields that are alternatives of a given one
    (``ports``/``portDefinitions``, ``uris``/``fetch``, ``cmd``/``args``) are dropped from the old definition."""
    merged = copy.deepcopy(existing)
    for key in ("version", "versionInfo", "ports", "uris"):
        merged.pop(key, None)
    alternatives = {
        "ports": ("portDefinitions",),
        "portDefinitions": ("ports",),
        "uris": ("fetch",),
        "fetch": ("uris",),
        "cmd": ("args",),
        "args": ("cmd",),
    }
    for key in update:
        for other in alternatives.get(key, ()):
            if other not in update:
                merged.pop(other, None)
    container = update.get("container")
    if isinstance(container, dict) and network({"container": container}) in ("BRIDGE", "USER"):
        if "portDefinitions" not in update and "ports" not in update:
            merged.pop("portDefinitions", None)
    merged.update({k: v for k, v in update.items() if k not in ("version",)})
    return merged
