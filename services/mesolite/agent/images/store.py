"""The Docker image store under ``--docker_store_dir`` (Mesos' provisioner/docker/store.cpp, docker/paths.hpp).

Layout: ``layers/<id>/{rootfs|rootfs.overlay, json}`` (one directory per layer, named by its digest or its v1 id,
shared by every image that has it), ``storedImages`` (image name → its layer ids, bottom first, and its config) and
``staging/<tmp>`` (where a pull unpacks before anything becomes visible). A layer appears in ``layers/`` by one
``rename`` once it is complete, and an image in ``storedImages`` once all its layers are there, so a failed pull (a
corrupt archive, a registry gone mid-blob, a full disk) leaves nothing half-unpacked behind: its staging directory
goes, and the next pull starts over.

Layers are unpacked in the format of the provisioner backend: for ``overlay`` the Docker whiteouts become overlayfs
ones (``.wh.<name>`` a 0/0 character device, ``.wh..wh..opq`` the ``trusted.overlay.opaque`` attribute), stored as
``rootfs.overlay``; for ``copy`` they stay files (``rootfs``) that the copy backend applies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
BACKENDS = ("overlay", "copy")


class StoreError(Exception):
    pass


@dataclass
class StoredImage:
    name: str  # the canonical reference it was stored under
    layers: list[str]  # layer ids, bottom first
    config: dict[str, Any]  # the image config's ``config`` section (Env, Entrypoint, Cmd, WorkingDir, User, ...)

    def record(self) -> dict[str, Any]:
        return {"layers": self.layers, "config": self.config}


class HashingReader:
    """A file object that hashes what is read through it (a layer checked against its digest while unpacking)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class ImageStore:
    def __init__(self, directory: str, backend: str) -> None:
        if backend not in BACKENDS:
            raise StoreError(f"Unknown image provisioner backend '{backend}'")
        self.directory = os.path.abspath(directory)
        self.backend = backend
        self._images_file = os.path.join(self.directory, "storedImages")
        self._lock = threading.Lock()
        self._pulls: dict[str, threading.Lock] = {}

    def start(self) -> None:
        """Create the layout; what an agent that died mid-pull left in staging goes (Mesos does the same)."""
        for sub in ("layers", "staging"):
            os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
        staging = os.path.join(self.directory, "staging")
        for name in os.listdir(staging):
            shutil.rmtree(os.path.join(staging, name), ignore_errors=True)

    # ------------------------------------------------------------------ images

    def get(self, name: str) -> StoredImage | None:
        record = self._images().get(name)
        if not isinstance(record, dict):
            return None
        layers = [str(layer) for layer in record.get("layers") or []]
        if not all(self.has_layer(layer) for layer in layers):
            return None  # a layer was removed by hand: pull again
        return StoredImage(name, layers, dict(record.get("config") or {}))

    def put(self, image: StoredImage) -> None:
        with self._lock:
            images = self._images()
            images[image.name] = image.record()
            temporary = f"{self._images_file}.tmp"
            with open(temporary, "w") as handle:
                json.dump(images, handle, indent=1, sort_keys=True)
            os.replace(temporary, self._images_file)

    def _images(self) -> dict[str, Any]:
        try:
            with open(self._images_file) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable image index %s: %s", self._images_file, exc)
            return {}
        return data if isinstance(data, dict) else {}

    @contextmanager
    def pulling(self, name: str) -> Iterator[None]:
        """One pull of an image at a time: a second task of the same image waits and then finds it stored."""
        with self._lock:
            lock = self._pulls.setdefault(name, threading.Lock())
        with lock:
            yield

    # ------------------------------------------------------------------ layers

    def layer_dir(self, layer_id: str) -> str:
        if not layer_id or "/" in layer_id or layer_id.startswith("."):
            raise StoreError(f"Invalid layer id '{layer_id}'")
        return os.path.join(self.directory, "layers", layer_id)

    def layer_rootfs(self, layer_id: str) -> str:
        return os.path.join(self.layer_dir(layer_id), "rootfs.overlay" if self.backend == "overlay" else "rootfs")

    def has_layer(self, layer_id: str) -> bool:
        return os.path.isdir(self.layer_rootfs(layer_id))

    @contextmanager
    def staging(self) -> Iterator[str]:
        """A directory for one pull, removed whatever happens."""
        os.makedirs(os.path.join(self.directory, "staging"), exist_ok=True)
        path = tempfile.mkdtemp(dir=os.path.join(self.directory, "staging"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def add_layer(
        self,
        layer_id: str,
        stream: IO[bytes],
        staging: str,
        config: dict[str, Any] | None = None,
        expected_sha256: str | None = None,
    ) -> None:
        """Unpack one layer archive (tar, optionally gzip/bzip2/xz) from ``stream`` and move it into the store.
        ``expected_sha256`` is the digest of the bytes read (a registry blob's digest, an archive's diff id)."""
        if self.has_layer(layer_id):
            return
        target = os.path.join(staging, layer_id)
        rootfs = os.path.join(target, os.path.basename(self.layer_rootfs(layer_id)))
        os.makedirs(rootfs)
        reader = HashingReader(stream)
        try:
            with tarfile.open(fileobj=reader, mode="r|*") as archive:  # type: ignore[call-overload]
                unpack(archive, rootfs, overlay=self.backend == "overlay")
            reader.drain()
        except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as exc:
            raise StoreError(f"Failed to extract layer '{layer_id}': {exc or type(exc).__name__}") from None
        if expected_sha256 and reader.hexdigest() != expected_sha256:
            raise StoreError(
                f"Layer '{layer_id}' is corrupt: its sha256 is {reader.hexdigest()}, expected {expected_sha256}"
            )
        with open(os.path.join(target, "json"), "w") as handle:
            json.dump(config or {}, handle)
        try:
            os.rename(target, self.layer_dir(layer_id))
        except OSError:
            if not self.has_layer(layer_id):  # not another pull that got there first
                raise


def _safe_name(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"archive member '{name}' points outside the layer")
    return "/".join(parts)


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def unpack(archive: tarfile.TarFile, rootfs: str, overlay: bool) -> None:
    """Extract a layer into ``rootfs`` with its owners, modes (setuid and sticky bits too) and device nodes, refusing
    members that would land outside it (``..``, or through a symlink the layer itself planted)."""
    root = os.path.realpath(rootfs)
    directories: list[tuple[str, tarfile.TarInfo]] = []
    for member in archive:
        name = _safe_name(member.name)
        if not name:
            continue
        parent, base = os.path.split(name)
        target_parent = os.path.join(root, parent)
        if parent:
            os.makedirs(target_parent, exist_ok=True)
        if not _inside(root, target_parent):
            raise ValueError(f"archive member '{member.name}' points outside the layer")
        if overlay and base == OPAQUE_WHITEOUT:
            os.setxattr(target_parent, "trusted.overlay.opaque", b"y")
            continue
        if overlay and base.startswith(WHITEOUT_PREFIX):
            hidden = os.path.join(target_parent, base[len(WHITEOUT_PREFIX) :])
            _remove(hidden)
            os.mknod(hidden, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
            continue
        if member.islnk():
            link = _safe_name(member.linkname)
            if not _inside(root, os.path.join(root, link)):
                raise ValueError(f"hard link '{member.name}' points outside the layer")
            member.linkname = link
        member.name = name
        if member.isdir():
            directories.append((name, member))
            os.makedirs(os.path.join(root, name), exist_ok=True)
            continue
        _remove(os.path.join(root, name))
        archive.extract(member, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")
    # Directory modes and times last, so that a read-only directory could still be filled.
    for name, member in reversed(directories):
        path = os.path.join(root, name)
        os.lchown(path, member.uid, member.gid)
        os.chmod(path, member.mode & 0o7777)
        os.utime(path, (member.mtime, member.mtime))


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
