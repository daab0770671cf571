"""A container's root filesystem from the layers of its image (Mesos' provisioner, backends/{overlay,copy}.cpp).

``<work_dir>/provisioner/containers/<cid>/backends/<backend>/rootfses/<rootfs id>``:

- ``overlay``: an overlayfs mount of the layers (read-only, shared with every container of the image) under a
  writable upper directory of the container's own (``scratch/<rootfs id>/{upperdir,workdir,links}``; the lower
  directories are passed as short relative symlinks so that deep images fit in one mount call);
- ``copy``: the layers copied in order, each one's whiteouts applied first.

The rootfs is mounted in the agent's mount namespace, so it outlives the agent like the container does; the
container's own namespace sees it as its ``/`` after the container init's ``pivot_root``. ``destroy`` unmounts
whatever is mounted below the container's directory and removes it, and is safe to repeat (an agent restarted
midway, recovery of a container that ended while no agent ran, ``--recover=cleanup``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid

from mesolite.agent.images.store import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

log = logging.getLogger(__name__)


class ProvisionError(Exception):
    pass


def containers_dir(work_dir: str) -> str:
    return os.path.join(os.path.abspath(work_dir), "provisioner", "containers")


def container_dir(work_dir: str, container_id: str) -> str:
    if not container_id or "/" in container_id or container_id.startswith("."):
        raise ProvisionError(f"Invalid container id '{container_id}'")
    return os.path.join(containers_dir(work_dir), container_id)


def provision(work_dir: str, container_id: str, backend: str, layers: list[str]) -> str:
    """Build the rootfs of ``container_id`` from ``layers`` (directories, bottom first); answers its path."""
    if not layers:
        raise ProvisionError("The image has no layers")
    rootfs_id = str(uuid.uuid4())
    base = os.path.join(container_dir(work_dir, container_id), "backends", backend)
    rootfs = os.path.join(base, "rootfses", rootfs_id)
    os.makedirs(rootfs)
    try:
        if backend == "overlay":
            _overlay(os.path.join(base, "scratch", rootfs_id), layers, rootfs)
        else:
            _copy(layers, rootfs)
    except (OSError, ProvisionError, subprocess.SubprocessError) as exc:
        destroy(work_dir, container_id)
        raise ProvisionError(f"Failed to provision the rootfs with the '{backend}' backend: {exc}") from None
    return rootfs


def _overlay(scratch: str, layers: list[str], rootfs: str) -> None:
    links = os.path.join(scratch, "links")
    for sub in ("upperdir", "workdir", "links"):
        os.makedirs(os.path.join(scratch, sub))
    names = []
    for index, layer in enumerate(reversed(layers)):  # overlayfs lists the top layer first
        os.symlink(layer, os.path.join(links, str(index)))
        names.append(f"links/{index}")
    options = f"lowerdir={':'.join(names)},upperdir=upperdir,workdir=workdir"
    # mount(8) from the scratch directory: the relative paths keep the option string short (one page at most).
    result = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, rootfs],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise ProvisionError(f"mount -t overlay failed: {result.stderr.strip() or result.returncode}")


def _copy(layers: list[str], rootfs: str) -> None:
    for layer in layers:
        _apply_whiteouts(layer, rootfs)
        result = subprocess.run(
            ["cp", "-a", "--reflink=auto", f"{layer}/.", rootfs], capture_output=True, text=True, timeout=3600
        )
        if result.returncode != 0:
            raise ProvisionError(f"copying layer '{layer}' failed: {result.stderr.strip()[-500:]}")
        for directory, _dirs, files in os.walk(rootfs):
            for name in files:
                if name.startswith(WHITEOUT_PREFIX):
                    os.unlink(os.path.join(directory, name))


def _apply_whiteouts(layer: str, rootfs: str) -> None:
    """What the layer deletes from the ones below: ``.wh.<name>`` one entry, ``.wh..wh..opq`` a directory's
    previous contents."""
    for directory, _dirs, files in os.walk(layer):
        relative = os.path.relpath(directory, layer)
        target = os.path.normpath(os.path.join(rootfs, relative))
        for name in files:
            if name == OPAQUE_WHITEOUT:
                if os.path.isdir(target) and not os.path.islink(target):
                    for entry in os.listdir(target):
                        _remove(os.path.join(target, entry))
            elif name.startswith(WHITEOUT_PREFIX):
                _remove(os.path.join(target, name[len(WHITEOUT_PREFIX) :]))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def mounts_below(path: str) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    prefix = os.path.abspath(path)
    found = []
    try:
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                point = line.split()[4].replace("\\040", " ")
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=len, reverse=True)


def destroy(work_dir: str, container_id: str) -> None:
    """Unmount and remove the container's rootfs (nothing to do if it has none)."""
    try:
        directory = container_dir(work_dir, container_id)
    except ProvisionError:
        return
    if not os.path.lexists(directory):
        return
    for point in mounts_below(directory):
        result = subprocess.run(["umount", "-l", point], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log.warning("could not unmount %s: %s", point, result.stderr.strip())
    if mounts_below(directory):
        log.warning("leaving %s in place: something is still mounted below it", directory)
        return
    shutil.rmtree(directory, ignore_errors=True)


def recover(work_dir: str, live: set[str]) -> None:
    """Remove the rootfses of containers that no longer exist (an agent that died before cleaning up)."""
    directory = containers_dir(work_dir)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name not in live:
            log.info("removing the rootfs of container %s (it no longer exists)", name)
            destroy(work_dir, name)
