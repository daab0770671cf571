"""Pod definitions (``/v2/pods``, Marathon 1.4+): defaults, validation in Marathon's 400/422 shapes, and the JSON.

A pod is a group of containers launched together on one agent as one Mesos task group, sharing the network and the
pod's volumes. The definition arrives in Marathon's RAML shape (``pod.raml``, ``podContainer.raml``) and is stored
in that shape with every default filled in: ``scaling {kind: fixed, instances: 1}``, ``scheduling`` (backoff 1 s ×
1.15 up to 300 s, upgrade 1/1, unreachableStrategy ``{0, 0}``, killSelection ``YOUNGEST_FIRST``),
``executorResources {cpus 0.1, mem 32, disk 10}`` (also the minimums), per-container resources ``{cpus 1, mem 128,
disk 0, gpus 0}``, host networking when no network is given, and under host networking every endpoint gets a host
port (0 = any).

Validation follows ``PodsValidation``: unique container, endpoint, volume names and fixed ports; volume mounts name
a declared volume and every volume is mounted; health checks name one of the container's endpoints, have exactly
one of ``http``/``tcp``/``exec`` and a timeout below the interval. What mesolite cannot carry out is refused with a
422 rather than accepted and dropped: secrets (Marathon's own answer while the ``secrets`` feature is off),
persistent volumes, container networks (the agents have no CNI), ``linuxInfo``, ``resourceLimits``, ``check`` and
``tty``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from mesolite.marathon import pathid
from mesolite.marathon.appdef import (
    KILL_SELECTIONS,
    BadJson,
    Invalid,
    _constraints,
    _default,
    _Errors,
    _is,
    _string_map,
    _typed,
    _unreachable,
)

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_ERROR = f"must fully match regular expression '{NAME.pattern}'"
ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,253}$")
SECRETS_OFF = "Feature secrets is not enabled. Enable with --enable_features secrets)"
EXECUTOR_DEFAULTS = {"cpus": 0.1, "mem": 32.0, "disk": 10.0}
CONTAINER_DEFAULTS = {"cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0}
NETWORK_MODES = ("container", "container/bridge", "host")
# Not carried out by mesolite's agents yet: refused (422) instead of accepted and ignored.
UNSUPPORTED_POD = {
    "linuxInfo": "linuxInfo is not supported by this Marathon's agents",
}
UNSUPPORTED_CONTAINER = {
    "resourceLimits": "resourceLimits are not supported by this Marathon's agents",
    "linuxInfo": "linuxInfo is not supported by this Marathon's agents",
    "check": "Mesos checks are not supported by this Marathon's agents; use healthCheck",
}


def normalize_pod(raw: Any, roles: tuple[str, ...] = ("*",)) -> dict[str, Any]:
    """Validate a pod definition and return its canonical form (without ``version``)."""
    if not isinstance(raw, dict):
        raise BadJson("/", "error.expected.jsobject")
    errors = _Errors()
    pod: dict[str, Any] = {}
    raw_id = _typed(raw, "id", str, "")
    if not raw_id or not raw_id.strip("/"):
        errors.add("/id", "must not be empty")
        pod["id"] = "/"
    else:
        for error in pathid.segment_errors(raw_id):
            errors.add("/id", error)
        pod["id"] = pathid.canonical(raw_id)
    pod["labels"] = _string_map(raw, "labels", "")
    user = _typed(raw, "user", str, "")
    if user is not None:
        if not user:
            errors.add("/user", "must not be empty")
        pod["user"] = user
    role = _typed(raw, "role", str, "")
    if role is not None:
        if role not in roles:
            errors.add("/role", f"got {role}, expected one of: [{', '.join(roles)}]")
        pod["role"] = role
    pod["environment"] = _environment(raw, "", errors)
    if _typed(raw, "secrets", dict, ""):
        errors.add("/secrets", SECRETS_OFF)
    pod["secrets"] = {}
    for key, message in UNSUPPORTED_POD.items():
        if raw.get(key) is not None:
            errors.add(f"/{key}", message)
    if _typed(raw, "legacySharedCgroups", bool, ""):
        errors.add(
            "/legacySharedCgroups", "containers of a pod always get cgroups of their own on this Marathon's agents"
        )
    pod["volumes"] = _volumes(raw, errors)
    pod["networks"] = _networks(raw, errors)
    host_mode = pod["networks"][0]["mode"] == "host"
    containers = _typed(raw, "containers", list, "")
    if not containers:
        errors.add("/containers", "must not be empty")
    pod["containers"] = [_container(c, i, host_mode, pod["volumes"], errors) for i, c in enumerate(containers or [])]
    pod["scaling"] = _scaling(raw, errors)
    pod["scheduling"] = _scheduling(raw, errors)
    pod["executorResources"] = _executor_resources(raw, errors)
    _check_uniqueness(pod, errors)
    if errors.items:
        raise Invalid(errors.items)
    return pod


def _environment(obj: dict[str, Any], path: str, errors: _Errors) -> dict[str, str]:
    env = _typed(obj, "environment", dict, path) or {}
    out: dict[str, str] = {}
    for name, value in env.items():
        if not ENV_NAME.match(name):
            errors.add(f"{path}/environment/{name}", f"must fully match regular expression '{ENV_NAME.pattern}'")
        if isinstance(value, dict) and "secret" in value:
            errors.add(f"{path}/environment/{name}", SECRETS_OFF)
        elif not isinstance(value, str):
            raise BadJson(f"{path}/environment/{name}", "error.expected.jsstring")
        else:
            out[name] = value
    return out


def _volumes(raw: dict[str, Any], errors: _Errors) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_typed(raw, "volumes", list, "") or []):
        path = f"/volumes({i})"
        if not isinstance(item, dict):
            raise BadJson(path, "error.expected.jsobject")
        name = _typed(item, "name", str, path) or ""
        if not NAME.match(name):
            errors.add(f"{path}/name", NAME_ERROR)
        volume: dict[str, Any] = {"name": name}
        if item.get("secret") is not None:
            errors.add(f"{path}/secret", SECRETS_OFF)
        elif item.get("persistent") is not None:
            errors.add(f"{path}/persistent", "persistent volumes for pods are not supported by this Marathon")
        elif item.get("host") is not None:
            host = _typed(item, "host", str, path)
            if not host or not host.startswith("/"):
                errors.add(f"{path}/host", "must be an absolute path")
            volume["host"] = host
        out.append(volume)
    return out


def _networks(raw: dict[str, Any], errors: _Errors) -> list[dict[str, Any]]:
    networks = _typed(raw, "networks", list, "") or []
    out = []
    for i, item in enumerate(networks):
        path = f"/networks({i})"
        if not isinstance(item, dict):
            raise BadJson(path, "error.expected.jsobject")
        mode = _typed(item, "mode", str, path) or "container"
        if mode not in NETWORK_MODES:
            errors.add(f"{path}/mode", f"error.unknown.enum.literal (allowed: {', '.join(NETWORK_MODES)})")
        elif mode != "host":
            errors.add(
                f"{path}/mode",
                f"{mode} networking is not supported: this Marathon's agents have no container networks (CNI)",
            )
        if mode == "host" and item.get("name") is not None:
            errors.add(f"{path}/name", "must be empty for host mode networking")
        entry: dict[str, Any] = {"mode": mode}
        labels = _string_map(item, "labels", path)
        if labels:
            entry["labels"] = labels
        out.append(entry)
    if len(out) > 1 and any(n["mode"] == "host" for n in out):
        errors.add("/networks", "host networking may not be combined with other networks")
    return out or [{"mode": "host"}]


def _resources(obj: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any]:
    raw = _typed(obj, "resources", dict, path) or {}
    rpath = f"{path}/resources"
    out: dict[str, Any] = {}
    for key, default in CONTAINER_DEFAULTS.items():
        kind = "int" if key == "gpus" else "number"
        out[key] = _default(_typed(raw, key, kind, rpath), default)
    errors.at_least(f"{rpath}/cpus", out["cpus"], 0.001)
    errors.at_least(f"{rpath}/mem", out["mem"], 0.001)
    errors.at_least(f"{rpath}/disk", out["disk"], 0.0)
    errors.at_least(f"{rpath}/gpus", out["gpus"], 0)
    return out


def _executor_resources(raw: dict[str, Any], errors: _Errors) -> dict[str, float]:
    given = _typed(raw, "executorResources", dict, "") or {}
    out = {}
    for key, default in EXECUTOR_DEFAULTS.items():
        out[key] = _default(_typed(given, key, "number", "/executorResources"), default)
        errors.at_least(f"/executorResources/{key}", out[key], default)
    return out


def _container(raw: Any, index: int, host_mode: bool, volumes: list[dict[str, Any]], errors: _Errors) -> dict[str, Any]:
    path = f"/containers({index})"
    if not isinstance(raw, dict):
        raise BadJson(path, "error.expected.jsobject")
    name = _typed(raw, "name", str, path) or ""
    if not NAME.match(name) or len(name) > 63:
        errors.add(f"{path}/name", NAME_ERROR)
    container: dict[str, Any] = {"name": name, "resources": _resources(raw, path, errors)}
    for key, message in UNSUPPORTED_CONTAINER.items():
        if raw.get(key) is not None:
            errors.add(f"{path}/{key}", message)
    if _typed(raw, "tty", bool, path):
        errors.add(f"{path}/tty", "a TTY is not supported by this Marathon's agents")
    exec_ = _exec(raw, path, errors)
    if exec_ is not None:
        container["exec"] = exec_
    container["endpoints"] = _endpoints(raw, path, host_mode, errors)
    image = _image(raw, path, errors)
    if image is not None:
        container["image"] = image
    if image is None and exec_ is None:
        errors.add(path, "a container needs exec.command, an image, or both")
    container["environment"] = _environment(raw, path, errors)
    user = _typed(raw, "user", str, path)
    if user:
        container["user"] = user
    check = _health_check(raw, path, container["endpoints"], errors)
    if check is not None:
        container["healthCheck"] = check
    container["volumeMounts"] = _volume_mounts(raw, path, volumes, errors)
    container["artifacts"] = _artifacts(raw, path, errors)
    container["labels"] = _string_map(raw, "labels", path)
    lifecycle = _typed(raw, "lifecycle", dict, path)
    if lifecycle is not None:
        grace = _typed(lifecycle, "killGracePeriodSeconds", "number", f"{path}/lifecycle")
        if grace is not None:
            errors.at_least(f"{path}/lifecycle/killGracePeriodSeconds", grace, 0.0)
            container["lifecycle"] = {"killGracePeriodSeconds": grace}
    return container


def _exec(raw: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    value = _typed(raw, "exec", dict, path)
    if value is None:
        return None
    epath = f"{path}/exec"
    command = _command(value, epath, errors)
    out: dict[str, Any] = {"command": command}
    override = _typed(value, "overrideEntrypoint", bool, epath)
    if override is not None:
        if override is False and "shell" in command:
            errors.add(f"{epath}/overrideEntrypoint", "must not be false when command.shell is given")
        out["overrideEntrypoint"] = override
    return out


def _command(obj: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any]:
    command = _typed(obj, "command", dict, path)
    cpath = f"{path}/command"
    if command is None:
        errors.add(cpath, "must not be empty")
        return {"shell": ""}
    shell = _typed(command, "shell", str, cpath)
    argv = command.get("argv")
    if (shell is None) == (argv is None):
        errors.add(cpath, "must have exactly one of shell or argv")
        return {"shell": shell or ""}
    if shell is not None:
        if not shell:
            errors.add(f"{cpath}/shell", "must not be empty")
        return {"shell": shell}
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise BadJson(f"{cpath}/argv", "error.expected.jsarray")
    if not argv:
        errors.add(f"{cpath}/argv", "must not be empty")
    return {"argv": list(argv)}


def _endpoints(raw: dict[str, Any], path: str, host_mode: bool, errors: _Errors) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_typed(raw, "endpoints", list, path) or []):
        epath = f"{path}/endpoints({i})"
        if not isinstance(item, dict):
            raise BadJson(epath, "error.expected.jsobject")
        name = _typed(item, "name", str, epath) or ""
        if not NAME.match(name) or len(name) > 63:
            errors.add(f"{epath}/name", NAME_ERROR)
        endpoint: dict[str, Any] = {"name": name}
        container_port = _typed(item, "containerPort", "int", epath)
        host_port = _typed(item, "hostPort", "int", epath)
        if container_port is not None:
            if host_mode:
                errors.add(f"{epath}/containerPort", "is not allowed when using host-mode networking")
            elif not 0 <= container_port <= 65535:
                errors.add(f"{epath}/containerPort", f"got {container_port}, expected between 0 and 65535")
            endpoint["containerPort"] = container_port
        if host_port is None and host_mode:
            host_port = 0  # under host networking every endpoint is a host port, any free one unless given
        if host_port is not None:
            if not 0 <= host_port <= 65535:
                errors.add(f"{epath}/hostPort", f"got {host_port}, expected between 0 and 65535")
            endpoint["hostPort"] = host_port
        protocols = item.get("protocol")
        if protocols is None:
            protocols = ["tcp"]
        if not isinstance(protocols, list) or not all(isinstance(p, str) for p in protocols):
            raise BadJson(f"{epath}/protocol", "error.expected.jsarray")
        if len(set(protocols)) != len(protocols):
            errors.add(f"{epath}/protocol", "Duplicate protocols within the same endpoint are not allowed")
        for protocol in protocols:
            if protocol not in ("tcp", "udp"):
                errors.add(f"{epath}/protocol", "Invalid protocol. Only 'udp' and 'tcp' are allowed.")
        endpoint["protocol"] = list(protocols)
        labels = _string_map(item, "labels", epath)
        if labels:
            endpoint["labels"] = labels
        out.append(endpoint)
    return out


def _image(raw: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    image = _typed(raw, "image", dict, path)
    if image is None:
        return None
    ipath = f"{path}/image"
    kind = _typed(image, "kind", str, ipath) or "DOCKER"
    if kind != "DOCKER":
        errors.add(f"{ipath}/kind", "error.unknown.enum.literal (allowed: DOCKER)")
    image_id = _typed(image, "id", str, ipath)
    if not image_id:
        errors.add(f"{ipath}/id", "must not be empty")
    if image.get("pullConfig") is not None:
        errors.add(f"{ipath}/pullConfig", SECRETS_OFF)
    out: dict[str, Any] = {"kind": kind, "id": image_id or ""}
    force = _typed(image, "forcePull", bool, ipath)
    if force is not None:
        out["forcePull"] = force
    return out


def _health_check(
    raw: dict[str, Any], path: str, endpoints: list[dict[str, Any]], errors: _Errors
) -> dict[str, Any] | None:
    check = _typed(raw, "healthCheck", dict, path)
    if check is None:
        return None
    hpath = f"{path}/healthCheck"
    out: dict[str, Any] = {}
    for key, default in (
        ("gracePeriodSeconds", 300),
        ("intervalSeconds", 60),
        ("maxConsecutiveFailures", 3),
        ("timeoutSeconds", 20),
        ("delaySeconds", 15),
    ):
        out[key] = _default(_typed(check, key, "int", hpath), default)
        errors.at_least(f"{hpath}/{key}", out[key], 0)
    if out["timeoutSeconds"] >= out["intervalSeconds"]:
        errors.add(
            f"{hpath}/timeoutSeconds", f"got {out['timeoutSeconds']}, expected less than {out['intervalSeconds']}"
        )
    kinds = [k for k in ("http", "tcp", "exec") if check.get(k) is not None]
    if len(kinds) != 1:
        errors.add(hpath, "Only one of http, tcp, or command may be specified")
        return out
    kind = kinds[0]
    body = _typed(check, kind, dict, hpath) or {}
    if kind == "exec":
        out["exec"] = {"command": _command(body, f"{hpath}/exec", errors)}
        return out
    endpoint = _typed(body, "endpoint", str, f"{hpath}/{kind}") or ""
    if endpoint not in {e["name"] for e in endpoints}:
        errors.add(f"{hpath}/{kind}/endpoint", "contained in the container endpoints")
    entry: dict[str, Any] = {"endpoint": endpoint}
    if kind == "http":
        entry["path"] = _typed(body, "path", str, f"{hpath}/http") or "/"
        scheme = _typed(body, "scheme", str, f"{hpath}/http") or "HTTP"
        if scheme not in ("HTTP", "HTTPS"):
            errors.add(f"{hpath}/http/scheme", "error.unknown.enum.literal (allowed: HTTP, HTTPS)")
        entry["scheme"] = scheme
    out[kind] = entry
    return out


def _volume_mounts(
    raw: dict[str, Any], path: str, volumes: list[dict[str, Any]], errors: _Errors
) -> list[dict[str, Any]]:
    declared = {v["name"] for v in volumes}
    out = []
    for i, item in enumerate(_typed(raw, "volumeMounts", list, path) or []):
        mpath = f"{path}/volumeMounts({i})"
        if not isinstance(item, dict):
            raise BadJson(mpath, "error.expected.jsobject")
        name = _typed(item, "name", str, mpath) or ""
        if name not in declared:
            errors.add(f"{mpath}/name", "Referenced Volume in VolumeMount should exist")
        mount_path = _typed(item, "mountPath", str, mpath) or ""
        if not 1 <= len(mount_path) <= 1024:
            errors.add(f"{mpath}/mountPath", "must not be empty")
        out.append({"name": name, "mountPath": mount_path, "readOnly": bool(_typed(item, "readOnly", bool, mpath))})
    return out


def _artifacts(raw: dict[str, Any], path: str, errors: _Errors) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_typed(raw, "artifacts", list, path) or []):
        apath = f"{path}/artifacts({i})"
        if not isinstance(item, dict):
            raise BadJson(apath, "error.expected.jsobject")
        uri = _typed(item, "uri", str, apath) or ""
        if not uri:
            errors.add(f"{apath}/uri", "must not be empty")
        entry: dict[str, Any] = {
            "uri": uri,
            "extract": _default(_typed(item, "extract", bool, apath), True),
            "executable": bool(_typed(item, "executable", bool, apath)),
            "cache": bool(_typed(item, "cache", bool, apath)),
        }
        dest = _typed(item, "destPath", str, apath)
        if dest:
            entry["destPath"] = dest
        out.append(entry)
    return out


def _scaling(raw: dict[str, Any], errors: _Errors) -> dict[str, Any]:
    scaling = _typed(raw, "scaling", dict, "") or {}
    kind = _typed(scaling, "kind", str, "/scaling") or "fixed"
    if kind != "fixed":
        errors.add("/scaling", "Not a fixed scaling policy")
    out: dict[str, Any] = {"kind": "fixed", "instances": _default(_typed(scaling, "instances", "int", "/scaling"), 1)}
    errors.at_least("/scaling/instances", out["instances"], 0)
    maximum = _typed(scaling, "maxInstances", "int", "/scaling")
    if maximum is not None:
        if maximum < out["instances"]:
            errors.add("/scaling/maxInstances", f"got {maximum}, expected {out['instances']} or more")
        out["maxInstances"] = maximum
    return out


def _scheduling(raw: dict[str, Any], errors: _Errors) -> dict[str, Any]:
    scheduling = _typed(raw, "scheduling", dict, "") or {}
    spath = "/scheduling"
    backoff = _typed(scheduling, "backoff", dict, spath) or {}
    bpath = f"{spath}/backoff"
    out: dict[str, Any] = {
        "backoff": {
            "backoff": _default(_typed(backoff, "backoff", "number", bpath), 1.0),
            "backoffFactor": _default(_typed(backoff, "backoffFactor", "number", bpath), 1.15),
            "maxLaunchDelay": _default(_typed(backoff, "maxLaunchDelay", "number", bpath), 300.0),
        }
    }
    for key, value in out["backoff"].items():
        errors.at_least(f"{bpath}/{key}", value, 0.0)
    upgrade = _typed(scheduling, "upgrade", dict, spath) or {}
    out["upgrade"] = {}
    for key in ("minimumHealthCapacity", "maximumOverCapacity"):
        value = _default(_typed(upgrade, key, "number", f"{spath}/upgrade"), 1.0)
        if not 0 <= value <= 1:
            errors.add(f"{spath}/upgrade/{key}", f"got {value}, expected between 0.0 and 1.0")
        out["upgrade"][key] = value
    placement = _typed(scheduling, "placement", dict, spath) or {}
    inner = _Errors()
    constraints = _constraints(placement, inner)
    for p, e in inner.items:
        errors.add(f"{spath}/placement{p}", e)
    roles = placement.get("acceptedResourceRoles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise BadJson(f"{spath}/placement/acceptedResourceRoles", "error.expected.jsarray")
    out["placement"] = {"constraints": constraints, "acceptedResourceRoles": list(roles)}
    kill_selection = _typed(scheduling, "killSelection", str, spath) or "YOUNGEST_FIRST"
    if kill_selection not in KILL_SELECTIONS:
        errors.add(f"{spath}/killSelection", f"error.unknown.enum.literal (allowed: {', '.join(KILL_SELECTIONS)})")
    out["killSelection"] = kill_selection
    inner = _Errors()
    out["unreachableStrategy"] = _unreachable(scheduling, inner, resident=False)
    for p, e in inner.items:
        errors.add(f"{spath}{p}", e)
    return out


def _check_uniqueness(pod: dict[str, Any], errors: _Errors) -> None:
    containers = pod["containers"]
    names = [c["name"] for c in containers]
    if len(set(names)) != len(names):
        errors.add("/containers", "container names must be unique")
    endpoints = [e for c in containers for e in c["endpoints"]]
    endpoint_names = [e["name"] for e in endpoints]
    if len(set(endpoint_names)) != len(endpoint_names):
        errors.add("/", "endpoint names nust be unique across all containers")
    host_ports = [e["hostPort"] for e in endpoints if e.get("hostPort")]
    if len(set(host_ports)) != len(host_ports):
        errors.add("/", "host ports must be unique across all containers")
    container_ports = [e["containerPort"] for e in endpoints if e.get("containerPort")]
    if len(set(container_ports)) != len(container_ports):
        errors.add("/", "container ports must be unique across all containers")
    volume_names = [v["name"] for v in pod["volumes"]]
    if len(set(volume_names)) != len(volume_names):
        errors.add("/volumes", "volume names must be unique")
    mounted = {m["name"] for c in containers for m in c["volumeMounts"]}
    for i, volume in enumerate(pod["volumes"]):
        if volume["name"] not in mounted:
            errors.add(f"/volumes({i})", "volume must be referenced by at least one container")


# ---------------------------------------------------------------------------------------------- helpers


def pod_json(pod: dict[str, Any]) -> dict[str, Any]:
    """The Pod as the API answers it (the internal version bookkeeping left out)."""
    out = copy.deepcopy(pod)
    out.pop("versionInfo", None)
    return out


def requested_host_ports(pod: dict[str, Any]) -> list[int | None]:
    """One entry per endpoint with a host port, in container order: the fixed port, or None for "any"."""
    return [e["hostPort"] or None for c in pod["containers"] for e in c["endpoints"] if "hostPort" in e]


def container(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in pod["containers"] if c["name"] == name), None)


def has_health_checks(pod: dict[str, Any]) -> bool:
    return any("healthCheck" in c for c in pod["containers"])


def total_resources(pod: dict[str, Any]) -> dict[str, float]:
    """What one instance takes from an offer: the executor's share plus every container's."""
    total = {k: float(v) for k, v in pod["executorResources"].items()}
    total.setdefault("gpus", 0.0)
    for c in pod["containers"]:
        for key in ("cpus", "mem", "disk", "gpus"):
            total[key] = total.get(key, 0.0) + float(c["resources"][key])
    return total


def is_number(value: Any) -> bool:
    return _is(value, "number")
