"""Where an image comes from: a local directory of ``docker save`` tarballs or a Docker registry
(Mesos' provisioner/docker/puller.cpp, image_tar_puller.cpp).

``--docker_registry`` starting with ``/`` names a directory: ``busybox:latest`` is ``<dir>/busybox:latest.tar``
(the name as written, no tag added, slashes as subdirectories). Mesos then looks for every image there; mesolite does
too, and an image whose name carries a registry host (``127.0.0.1:5000/busybox``) and has no tarball there is pulled
from that registry instead, as the Mesos docs describe. Any other ``--docker_registry`` is a registry URL.

A tarball is read in either of ``docker save``'s layouts: ``manifest.json`` with its config and layer archives (each
layer checked against the config's ``diff_ids`` and stored under that digest), or the legacy ``repositories`` file
with ``<id>/json`` and ``<id>/layer.tar`` per layer, whose ``parent`` chain is walked as Mesos does.
"""

from __future__ import annotations

import json
import os
import tarfile
from typing import Any

from mesolite.agent.images import registry
from mesolite.agent.images.reference import DEFAULT_REGISTRY, ImageReference
from mesolite.agent.images.store import ImageStore, StoredImage, StoreError

GZIP_MAGIC = b"\x1f\x8b"


class Puller:
    def __init__(self, store: ImageStore, docker_registry: str, docker_config: str | None) -> None:
        self.store = store
        self.docker_registry = docker_registry
        self.local = docker_registry.startswith("/")
        self._config = docker_config

    def pull(self, ref: ImageReference, pull_config: bytes | None = None) -> StoredImage:
        """Raises registry.PullError (or StoreError) with what went wrong."""
        if self.local:
            path = tarball_path(self.docker_registry, ref)
            if os.path.exists(path) or not ref.registry:
                return pull_tarball(self.store, ref, path)
        configs = [registry.parse_docker_config(pull_config)] if pull_config else []
        configs.append(registry.parse_docker_config(self._config))
        default = self.docker_registry if not self.local else DEFAULT_REGISTRY
        return registry.pull(self.store, ref, default, configs)


def tarball_path(directory: str, ref: ImageReference) -> str:
    return os.path.join(directory, *f"{ref.printed()}.tar".split("/"))


def pull_tarball(store: ImageStore, ref: ImageReference, path: str) -> StoredImage:
    if not os.path.isfile(path):
        raise registry.PullError(f"Failed to find archive for image '{ref.printed()}' at '{path}'")
    try:
        with tarfile.open(path) as archive, store.staging() as staging:
            names = set(archive.getnames())
            if "manifest.json" in names:
                layers, config = _from_manifest(store, archive, ref, staging)
            elif "repositories" in names:
                layers, config = _from_repositories(store, archive, ref, staging)
            else:
                raise registry.PullError(
                    f"Failed to read 'repositories' in '{path}': not a 'docker save' archive of image '{ref.printed()}'"
                )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise registry.PullError(f"Failed to read the archive '{path}' of image '{ref.printed()}': {exc}") from None
    except StoreError as exc:
        raise registry.PullError(f"{exc} (in '{path}')") from None
    image = StoredImage(ref.canonical(), layers, config)
    store.put(image)
    return image


def _json_member(archive: tarfile.TarFile, name: str) -> Any:
    handle = archive.extractfile(name)
    if handle is None:
        raise registry.PullError(f"'{name}' is not a file in the archive")
    try:
        return json.loads(handle.read())
    except ValueError:
        raise registry.PullError(f"Failed to parse '{name}' in the archive") from None


def _candidates(ref: ImageReference) -> list[str]:
    """The names a ``docker save`` may have recorded the image under."""
    tag = ref.reference
    names = [ref.printed(), f"{ref.repository}:{tag}"]
    if ref.registry:
        names.append(f"{ref.registry}/{ref.repository}:{tag}")
    names += [f"docker.io/{ref.repository}:{tag}", f"docker.io/library/{ref.repository}:{tag}"]
    names += [f"localhost/{ref.repository}:{tag}"]
    return names


def _from_manifest(
    store: ImageStore, archive: tarfile.TarFile, ref: ImageReference, staging: str
) -> tuple[list[str], dict[str, Any]]:
    manifest = _json_member(archive, "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise registry.PullError("Failed to parse 'manifest.json' in the archive")
    wanted = set(_candidates(ref))
    entry = next((m for m in manifest if wanted & set(m.get("RepoTags") or [])), None)
    if entry is None:
        if len(manifest) != 1:
            raise registry.PullError(f"Repository '{ref.printed()}' does not exist in 'manifest.json'")
        entry = manifest[0]  # one image, saved by id or under another name: it is what the file is named for
    image_config = _json_member(archive, str(entry["Config"]))
    diff_ids = list((image_config.get("rootfs") or {}).get("diff_ids") or [])
    layer_paths = [str(p) for p in entry.get("Layers") or []]
    if len(diff_ids) != len(layer_paths):
        raise registry.PullError("The archive's config and manifest disagree on the number of layers")
    layers = []
    for layer_path, diff_id in zip(layer_paths, diff_ids, strict=True):
        algorithm, _, digest = str(diff_id).partition(":")
        if algorithm != "sha256" or len(digest) != 64:
            raise registry.PullError(f"Unsupported layer digest '{diff_id}'")
        layers.append(digest)
        if store.has_layer(digest):
            continue
        handle = archive.extractfile(layer_path)
        if handle is None:
            raise registry.PullError(f"Layer '{layer_path}' is not found in the archive")
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        store.add_layer(digest, handle, staging, {"diff_id": diff_id}, expected_sha256=None if compressed else digest)
    return layers, dict(image_config.get("config") or {})


def _from_repositories(
    store: ImageStore, archive: tarfile.TarFile, ref: ImageReference, staging: str
) -> tuple[list[str], dict[str, Any]]:
    repositories = _json_member(archive, "repositories")
    if not isinstance(repositories, dict):
        raise registry.PullError("Failed to read 'repositories'")
    tags = repositories.get(ref.repository)
    if tags is None and ref.registry:
        tags = repositories.get(f"{ref.registry}/{ref.repository}")
    if not isinstance(tags, dict):
        raise registry.PullError(f"Repository '{ref.repository}' does not exist in 'repositories'")
    top = tags.get(ref.tag or "latest")
    if not isinstance(top, str):
        raise registry.PullError(f"Layer id '{ref.tag or 'latest'}' is not found")
    chain: list[str] = []
    config: dict[str, Any] = {}
    layer_id: str | None = top
    while layer_id:
        if layer_id in chain:
            raise registry.PullError(f"Layer '{layer_id}' is its own ancestor")
        layer_json = _json_member(archive, f"{layer_id}/json")
        if not chain:
            config = dict(layer_json.get("config") or layer_json.get("container_config") or {})
        chain.append(layer_id)
        layer_id = layer_json.get("parent")
    chain.reverse()
    for layer in chain:
        if store.has_layer(layer):
            continue
        handle = archive.extractfile(f"{layer}/layer.tar")
        if handle is None:
            raise registry.PullError(f"Layer id '{layer}' is not found")
        store.add_layer(layer, handle, staging, {"id": layer})
    return chain, config
