"""Docker image references and where they are pulled from, parsed the way Mesos does (src/docker/spec.cpp,
provisioner/docker/registry_puller.cpp).

``[HOST[:PORT]/]REPO[:TAG|@DIGEST]``: the first path component names a registry only when it contains ``.`` or ``:``
or is ``localhost`` (so ``gilbert/inky`` is a Docker Hub repository); the tag defaults to ``latest`` for fetches.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_REGISTRY = "https://registry-1.docker.io"
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


class ReferenceError(ValueError):
    pass


@dataclass(frozen=True)
class ImageReference:
    repository: str  # as written, without the registry: "busybox", "library/busybox", "team/app"
    registry: str | None = None  # "host[:port]" when the name carries one
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        if not isinstance(text, str) or not text.strip():
            raise ReferenceError("The image name is empty")
        name, digest = text.strip(), None
        if "@" in name:
            name, _, digest = name.partition("@")
            if not _DIGEST.match(digest):
                raise ReferenceError(f"Invalid digest '{digest}' in image '{text}'")
        tag = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG.match(tag):
                raise ReferenceError(f"Invalid tag '{tag}' in image '{text}'")
        registry = None
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, name = first, rest
        if not _REPOSITORY.match(name):
            raise ReferenceError(f"Invalid repository '{name}' in image '{text}'")
        return cls(repository=name, registry=registry, tag=tag, digest=digest)

    def printed(self) -> str:
        """``[registry/]repo[:tag|@digest]`` with nothing added: the name of a local tarball (Mesos' paths)."""
        out = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.digest:
            return f"{out}@{self.digest}"
        if self.tag:
            return f"{out}:{self.tag}"
        return out

    @property
    def reference(self) -> str:
        """What a manifest is fetched by: the digest, else the tag (``latest`` by default)."""
        return self.digest or self.tag or "latest"

    def canonical(self) -> str:
        """The key the image store keeps the image under (the tag made explicit)."""
        base = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return f"{base}@{self.digest}" if self.digest else f"{base}:{self.reference}"


@dataclass(frozen=True)
class Endpoint:
    """The registry an image comes from: scheme, ``host[:port]`` and the repository path there."""

    scheme: str
    host: str
    repository: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint(ref: ImageReference, default_registry: str = DEFAULT_REGISTRY) -> Endpoint:
    """Where ``ref`` is pulled from. A reference that names a registry picks its scheme by port (443 https, 80 http,
    any other port of a loopback host http: a local registry is plain HTTP, as docker allows); otherwise the scheme,
    host and port of ``--docker_registry`` are used. Docker Hub's official images live under ``library/``."""
    if ref.registry:
        host = ref.registry
        port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else None
        if port == "443":
            scheme = "https"
        elif port == "80" or (port is not None and is_loopback(host)):
            scheme = "http"
        else:
            scheme = "https"
    else:
        parts = urlsplit(default_registry if "://" in default_registry else f"https://{default_registry}")
        scheme, host = parts.scheme or "https", parts.netloc
    repository = ref.repository
    if "docker.io" in host and "/" not in repository:
        repository = f"library/{repository}"
    if host == "docker.io":
        host = "registry-1.docker.io"
    return Endpoint(scheme=scheme, host=host, repository=repository)


def registry_key(key: str) -> str:
    """A ``--docker_config`` ``auths`` key as ``host[:port]`` (scheme and path stripped, as Mesos compares them)."""
    key = key.strip()
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0]


def credentials_match(key: str, host: str) -> bool:
    found = registry_key(key)
    return found == host or ("docker.io" in found and "docker.io" in host)
