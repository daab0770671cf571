#!/usr/bin/env python3
"""Docker images without Docker: build them from Debian packages, save them as ``docker save`` tarballs, push them
to a registry, load them into podman.

    scripts/mkimage.py busybox OUT/busybox:latest.tar [--name busybox:latest]      # Debian's busybox-static
    scripts/mkimage.py debian OUT/x.tar --name mesolite/redis:7 --package redis-server --cmd '["redis-server"]'
    scripts/mkimage.py push OUT/busybox:latest.tar 127.0.0.1:5000/busybox:latest [--user USER:PASSWORD]

A tarball carries both layouts ``docker save`` has produced (``manifest.json`` with a config, and the legacy
``repositories`` with ``<id>/json`` and ``<id>/layer.tar``), so the Mesos containerizer's ``--docker_registry``
directory, ``podman load`` and Mesos itself all read it. ``--entrypoint``, ``--cmd`` (JSON lists), ``--env K=V``
and ``--workdir`` set the image config; ``--file SRC:DEST`` adds a file; ``--podman`` also loads the image into
podman (for the Docker containerizer). Standard library only; ``debian`` needs apt (the package lists) and root.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

CREATED = "2024-01-01T00:00:00Z"
# Packages a package's Depends pull in that only matter to install it (maintainer scripts, users, init systems).
INSTALL_ONLY = {
    "adduser", "cdebconf", "debconf", "dpkg", "init-system-helpers", "install-info", "lsb-base", "passwd",
    "perl", "perl-base", "perl-modules-5.36", "libperl5.36", "sysvinit-utils", "tar", "usr-is-merged", "usrmerge",
    "libdebian-installer4", "libnewt0.52", "libslang2", "libtextwrap1", "libfile-find-rule-perl",
    "libnumber-compare-perl", "libtext-glob-perl", "readline-common", "libreadline8", "libpam-modules",
    "libpam-modules-bin", "libpam0g", "libsemanage2", "libsemanage-common", "libsepol2", "libaudit1",
    "libaudit-common", "libcap-ng0", "libelogind0", "libgdbm-compat4", "libgdbm6", "libdb5.3", "libacl1",
    "libselinux1", "libpcre2-8-0", "libmd0", "libbz2-1.0", "libcrypt1", "media-types", "tzdata", "debianutils",
    "libtinfo6", "systemd", "systemd-sysv", "logrotate", "cron",
}  # fmt: skip
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


# ---------------------------------------------------------------------------------------------- layers and archives


def layer_tar(rootfs: str) -> bytes:
    """An uncompressed layer archive of ``rootfs`` (owners and modes as they are, times fixed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(directory, name)
                info = archive.gettarinfo(path, os.path.relpath(path, rootfs))
                info.mtime = 0
                info.uname = info.gname = ""
                if info.isreg():
                    with open(path, "rb") as handle:
                        archive.addfile(info, handle)
                else:
                    archive.addfile(info)
    return buffer.getvalue()


def whiteout_layer(removed: list[str], opaque: list[str], files: dict[str, bytes]) -> bytes:
    """A layer that deletes ``removed`` paths, empties ``opaque`` directories and adds ``files``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:

        def add(name: str, data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))

        for path in removed:
            parent, base = os.path.split(path.strip("/"))
            add(os.path.join(parent, f".wh.{base}"))
        for path in opaque:
            add(os.path.join(path.strip("/"), ".wh..wh..opq"))
        for name, data in files.items():
            add(name.strip("/"), data)
    return buffer.getvalue()


def save(out: str, name: str, layers: list[bytes], config: dict[str, Any]) -> None:
    """Write a ``docker save`` archive of one image made of ``layers`` (bottom first)."""
    diff_ids = [hashlib.sha256(layer).hexdigest() for layer in layers]
    image_config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created": CREATED, "created_by": "mesolite scripts/mkimage.py"} for _ in layers],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    ids: list[str] = []
    parent = ""
    for diff_id in diff_ids:
        ids.append(hashlib.sha256(f"{parent}\n{diff_id}".encode()).hexdigest())
        parent = ids[-1]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    temporary = f"{out}.tmp"
    with tarfile.open(temporary, "w") as archive:

        def add(member: str, data: bytes) -> None:
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))

        for index, (layer_id, layer) in enumerate(zip(ids, layers, strict=True)):
            v1: dict[str, Any] = {"id": layer_id, "created": CREATED, "os": "linux"}
            if index:
                v1["parent"] = ids[index - 1]
            if index == len(ids) - 1:
                v1["config"] = config
            add(f"{layer_id}/VERSION", b"1.0")
            add(f"{layer_id}/json", json.dumps(v1).encode())
            add(f"{layer_id}/layer.tar", layer)
        add(f"{config_digest}.json", config_bytes)
        manifest = [
            {
                "Config": f"{config_digest}.json",
                "RepoTags": [f"{repository}:{tag}"],
                "Layers": [f"{i}/layer.tar" for i in ids],
            }
        ]
        add("manifest.json", json.dumps(manifest).encode())
        add("repositories", json.dumps({repository: {tag: ids[-1]}}).encode())
    os.replace(temporary, out)


def read_archive(path: str) -> tuple[dict[str, Any], list[bytes]]:
    """(image config JSON, layer archives) of a tarball this script wrote."""
    with tarfile.open(path) as archive:

        def read(member: str) -> bytes:
            handle = archive.extractfile(member)
            assert handle is not None, member
            return handle.read()

        [entry] = json.loads(read("manifest.json"))
        return json.loads(read(entry["Config"])), [read(layer) for layer in entry["Layers"]]


# ---------------------------------------------------------------------------------------------- root filesystems


def base_rootfs(rootfs: str) -> None:
    for directory in ("etc", "tmp", "root", "proc", "sys", "dev", "mnt/mesos/sandbox", "var/tmp", "run"):
        os.makedirs(os.path.join(rootfs, directory), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    os.chmod(os.path.join(rootfs, "var/tmp"), 0o1777)
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        if not os.path.exists(os.path.join(rootfs, name)):
            with open(os.path.join(rootfs, name), "w") as handle:
                handle.write(text)


def busybox_rootfs(rootfs: str, busybox: str = "/bin/busybox") -> None:
    """Debian's busybox-static: one static binary and its applets as links, so the image needs no libc."""
    if not os.path.exists(busybox):
        sys.exit(f"{busybox} is missing (apt-get install busybox-static)")
    base_rootfs(rootfs)
    os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
    shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


def debian_rootfs(rootfs: str, packages: list[str], cache: str) -> None:
    """Unpack ``packages`` and what they depend on (less what only installing needs) from Debian's archive."""
    closure = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
         "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    wanted = sorted({line for line in closure.splitlines() if line and not line.startswith((" ", "<"))} - INSTALL_ONLY)
    os.makedirs(cache, exist_ok=True)
    missing = [p for p in wanted if not any(f.startswith(f"{p}_") for f in os.listdir(cache))]
    if missing:
        subprocess.run(["apt-get", "download", "-q", *missing], cwd=cache, check=True)
    base_rootfs(rootfs)
    for package in wanted:
        [deb] = sorted(f for f in os.listdir(cache) if f.startswith(f"{package}_") and f.endswith(".deb"))[-1:]
        subprocess.run(["dpkg-deb", "-x", os.path.join(cache, deb), rootfs], check=True)
    subprocess.run(["ldconfig", "-r", rootfs], check=False)


def add_files(rootfs: str, specs: list[str]) -> None:
    for spec in specs:
        source, _, dest = spec.partition(":")
        target = os.path.join(rootfs, dest.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


# ---------------------------------------------------------------------------------------------- registry push


def push(archive: str, reference: str, user: str | None) -> None:
    """Push a tarball to a v2 registry (``host:port/repo:tag``; plain HTTP for loopback hosts) as schema 2."""
    host, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    scheme = "http" if host.split(":")[0] in ("localhost", "127.0.0.1") else "https"
    base = f"{scheme}://{host}/v2/{repository}"
    headers = {"Authorization": "Basic " + base64.b64encode(user.encode()).decode()} if user else {}
    config, layers = read_archive(archive)
    config_bytes = json.dumps(config, sort_keys=True).encode()
    blobs = [gzip.compress(layer, mtime=0) for layer in layers]
    for blob in [config_bytes, *blobs]:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        request = urllib.request.Request(f"{base}/blobs/uploads/", method="POST", headers=headers, data=b"")
        with urllib.request.urlopen(request, timeout=60) as response:
            location = response.headers["Location"]
        location = location if "://" in location else f"{scheme}://{host}{location}"
        separator = "&" if "?" in location else "?"
        request = urllib.request.Request(
            f"{location}{separator}digest={digest}",
            method="PUT",
            headers={**headers, "Content-Type": "application/octet-stream"},
            data=blob,
        )
        urllib.request.urlopen(request, timeout=60).close()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config_bytes),
            "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(blob),
                "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
            }
            for blob in blobs
        ],
    }
    request = urllib.request.Request(
        f"{base}/manifests/{tag}",
        method="PUT",
        headers={**headers, "Content-Type": manifest["mediaType"]},
        data=json.dumps(manifest).encode(),
    )
    urllib.request.urlopen(request, timeout=60).close()


# ---------------------------------------------------------------------------------------------- command line


def _config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Env": list(args.env or []) or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["Cmd"] = json.loads(args.cmd)
    if args.workdir:
        config["WorkingDir"] = args.workdir
    if args.user:
        config["User"] = args.user
    return config


def _podman_load(out: str) -> None:
    with open(out, "rb") as archive:  # on stdin: podman takes a colon in a path for a transport
        result = subprocess.run(["podman", "load"], stdin=archive, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"podman load failed: {result.stderr.strip()}")
    print(result.stdout.strip())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for kind in ("busybox", "debian"):
        build = commands.add_parser(kind)
        build.add_argument("out", help="the tarball to write")
        build.add_argument("--name", required=True, help="repository:tag recorded in the archive")
        build.add_argument("--entrypoint")
        build.add_argument("--cmd")
        build.add_argument("--env", action="append")
        build.add_argument("--workdir")
        build.add_argument("--user")
        build.add_argument("--file", action="append", default=[], help="SRC:DEST to add")
        build.add_argument("--podman", action="store_true", help="also podman load the image")
        if kind == "busybox":
            build.add_argument(
                "--test-layer", action="store_true", help="a second layer with whiteouts (for the store's tests)"
            )
        else:
            build.add_argument("--package", action="append", required=True)
            build.add_argument("--check", help="a command (JSON list) that must run in the rootfs (chroot)")
            build.add_argument("--deb-cache", default=os.path.expanduser("~/.cache/mesolite/debs"))
    push_parser = commands.add_parser("push")
    push_parser.add_argument("archive")
    push_parser.add_argument("reference", help="host:port/repository:tag")
    push_parser.add_argument("--user", help="USER:PASSWORD for basic auth")
    args = parser.parse_args(argv)
    if args.command == "push":
        try:
            push(args.archive, args.reference, args.user)
        except urllib.error.HTTPError as exc:
            sys.exit(f"push failed: {exc.code} {exc.reason}: {exc.read()[:300]!r}")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as rootfs:
        layers: list[bytes] = []
        if args.command == "busybox":
            busybox_rootfs(rootfs)
            with open(os.path.join(rootfs, "etc", "image-release"), "w") as handle:
                handle.write("mesolite busybox test image\n")
            if args.test_layer:
                os.makedirs(os.path.join(rootfs, "removed"))
                for name in ("gone", "kept"):
                    with open(os.path.join(rootfs, "removed", name), "w") as handle:
                        handle.write(name)
                os.makedirs(os.path.join(rootfs, "emptied"))
                with open(os.path.join(rootfs, "emptied", "old"), "w") as handle:
                    handle.write("old")
        else:
            debian_rootfs(rootfs, args.package, args.deb_cache)
        add_files(rootfs, args.file)
        if getattr(args, "check", None):
            subprocess.run(["chroot", rootfs, *json.loads(args.check)], check=True, capture_output=True)
        layers.append(layer_tar(rootfs))
        if getattr(args, "test_layer", False):
            layers.append(whiteout_layer(["/removed/gone"], ["/emptied"], {"emptied/new": b"new\n"}))
    save(args.out, args.name, layers, _config(args))
    print(f"{args.out}: {args.name}, {len(layers)} layer(s), {os.path.getsize(args.out) // 1024} KiB "
          f"in {time.monotonic() - started:.1f}s")  # fmt: skip
    if args.podman:
        _podman_load(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
