"""Marathon path ids (``/prod/db/mysql``): normalisation, relative resolution, and the forms derived from them.

Apps and groups are addressed by absolute paths, but definitions may use relative ids (``mysql``, ``../cache``)
resolved against the enclosing group; text-format task lists and task ids use the "safe" form (``prod_db_mysql``)
and DNS names the reversed form (``mysql.db.prod``).
"""

from __future__ import annotations

import re

# Marathon's segment rule (PathId.scala), widened to allow '_' inside a segment: the seed talks post apps such as
# "rails_app", which Marathon 0.x accepted, and every seed definition must be accepted as written.
SEGMENT_PATTERN = r"^(([a-z0-9]|[a-z0-9][a-z0-9_\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9_\-]*[a-z0-9])|(\.|\.\.)$"
_SEGMENT = re.compile(SEGMENT_PATTERN)
RESERVED = ("restart", "tasks", "versions", ".", "..")


def canonical(path: str, base: str = "/") -> str:
    """Resolve ``path`` (absolute or relative to group ``base``) to an absolute id without '.'/'..' segments."""
    parts: list[str] = [] if path.startswith("/") else [p for p in base.split("/") if p]
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    return "/" + "/".join(parts)


def segment_errors(path: str) -> list[str]:
    """Marathon's id errors for a raw (possibly relative) id, in its wording."""
    errors: list[str] = []
    segments = [s for s in path.split("/") if s]
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            errors.append(f"must fully match regular expression '{SEGMENT_PATTERN}'")
            break
    if segments and segments[-1] in RESERVED:
        errors.append("must not end with any of the following reserved keywords: " + ", ".join(RESERVED))
    return errors


def parent(path: str) -> str:
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or "/"


def is_ancestor(ancestor: str, path: str) -> bool:
    """True when ``path`` lies strictly below ``ancestor``."""
    if ancestor == "/":
        return path != "/"
    return path.startswith(ancestor.rstrip("/") + "/")


def safe(path: str) -> str:
    """``/tools/docker/registry`` → ``tools_docker_registry`` (task ids, text/plain task lists)."""
    return "_".join(p for p in path.split("/") if p)


def hostname(path: str) -> str:
    """``/tools/docker/registry`` → ``registry.docker.tools`` (TaskInfo.name, DiscoveryInfo.name)."""
    return ".".join(reversed([p for p in path.split("/") if p]))
