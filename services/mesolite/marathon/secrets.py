"""Marathon's secrets (``--enable_features secrets``): declarations, the references to them, and what they become in
the TaskInfo (MA docs/docs/secrets.md, ``types/secrets.raml``, ``api/v2/validation``).

An app declares ``"secrets": {"<name>": {"source": "<store path>"}}`` and refers to a declaration from its ``env``
(``{"DB_PW": {"secret": "<name>"}}``), a file volume (``{"containerPath": ..., "secret": "<name>"}``) or, for the Mesos
containerizer, its image's ``pullConfig``. Each becomes a Mesos ``Secret`` of type REFERENCE naming the store path,
which the agent resolves (its ``--secrets_dir``): Marathon itself never sees a value. Without the feature, or with a
reference to an undeclared secret, the app is refused with Marathon's 422 rather than started without its secrets.
"""

from __future__ import annotations

from typing import Any

FEATURE = "secrets"
NOT_ENABLED = "Feature secrets is not enabled. Enable with --enable_features secrets)"  # the ")" is upstream's
ENV_NEEDS_FEATURE = "use of secret-references in the environment requires the secrets feature to be enabled"


def _undefined(name: str) -> str:
    return f"references an undefined secret named '{name}'"


def _secret_volumes(app: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    volumes = (app.get("container") or {}).get("volumes") or []
    return [(i, v) for i, v in enumerate(volumes) if "secret" in v]


def _pull_config(app: dict[str, Any]) -> dict[str, Any] | None:
    docker = (app.get("container") or {}).get("docker") or {}
    return docker.get("pullConfig")


def errors(app: dict[str, Any], features: frozenset[str]) -> list[tuple[str, str]]:
    """What is wrong with an app's secrets, as Marathon's ``details[]`` (path, message) pairs."""
    out: list[tuple[str, str]] = []
    declared = app.get("secrets") or {}
    env_refs = {k: v["secret"] for k, v in (app.get("env") or {}).items() if isinstance(v, dict)}
    enabled = FEATURE in features
    if declared and not enabled:
        out.append(("/secrets", NOT_ENABLED))
    if env_refs and not enabled:
        out.append(("/env", ENV_NEEDS_FEATURE))
    for name, definition in declared.items():
        if not name:
            out.append(("/secrets", "must not be empty"))
        source = definition.get("source") if isinstance(definition, dict) else None
        if not isinstance(source, str) or not source:
            out.append((f"/secrets/{name}/source", "must not be empty"))
    for variable, name in env_refs.items():
        if name not in declared:
            out.append((f"/env/{variable}", _undefined(name)))
    for index, volume in _secret_volumes(app):
        path = f"/container/volumes({index})"
        if not enabled:
            out.append((path, NOT_ENABLED))
        elif volume["secret"] not in declared:
            out.append((path, "volume.secret must refer to an existing secret"))
    pull = _pull_config(app)
    if pull is not None:
        path = "/container/docker/pullConfig"
        if not enabled:
            out.append((path, NOT_ENABLED))
        elif (app.get("container") or {}).get("type") != "MESOS":
            out.append((path, "pullConfig is not supported with Docker containerizer"))
        elif pull.get("secret") not in declared:
            out.append((path, "pullConfig.secret must refer to an existing secret"))
    return out


def reference(app: dict[str, Any], name: str) -> dict[str, Any]:
    """The Mesos ``Secret`` for the declared secret ``name``."""
    return {"type": "REFERENCE", "reference": {"name": app["secrets"][name]["source"]}}


def env_variables(app: dict[str, Any]) -> list[dict[str, Any]]:
    """``Environment.Variable``\\s of type SECRET for the app's env references."""
    return [
        {"name": key, "type": "SECRET", "secret": reference(app, value["secret"])}
        for key, value in (app.get("env") or {}).items()
        if isinstance(value, dict)
    ]


def volumes(app: dict[str, Any]) -> list[dict[str, Any]]:
    """File-based secrets as Mesos ``Volume``\\s with a SECRET source (read-only)."""
    return [
        {
            "container_path": volume["containerPath"],
            "mode": "RO",
            "source": {"type": "SECRET", "secret": reference(app, volume["secret"])},
        }
        for _, volume in _secret_volumes(app)
    ]


def pull_config(app: dict[str, Any]) -> dict[str, Any] | None:
    """``Image.Docker.config``: the image's pull credentials as a secret."""
    pull = _pull_config(app)
    return reference(app, pull["secret"]) if pull else None
