"""Helpers of the image tests (the images and the registry are fixtures in conftest.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import wait_until

ROOT = Path(__file__).resolve().parents[3]
MKIMAGE = [sys.executable, str(ROOT / "scripts" / "mkimage.py")]
USER, PASSWORD = "alice", "wonderland"
PRINT_ARGS = '#!/bin/sh\necho "$@" > "$MESOS_SANDBOX/args"\n'


def mkimage(*args: str) -> None:
    subprocess.run([*MKIMAGE, *args], check=True, capture_output=True, timeout=120)


@dataclass
class ImageDir:
    path: str  # the --docker_registry directory
    busybox: str  # the busybox tarball in it


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    docker_config: str  # a Docker config.json with the right credentials

    def config_with(self, password: str) -> str:
        auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
        return json.dumps({"auths": {f"http://{self.host}/v2/": {"auth": auth}}})


def image_container(name: str, cached: bool = True, **extra: object) -> dict:
    """A ContainerInfo of the Mesos containerizer with a Docker image, as Marathon 1.5 sends it."""
    image: dict = {"type": "DOCKER", "docker": {"name": name}}
    if not cached:
        image["cached"] = False
    return {"type": "MESOS", "mesos": {"image": image}, **extra}


def sandbox_of(work_dir: str, task_id: str) -> Path:
    [path] = {p.resolve() for p in Path(work_dir).glob(f"slaves/*/frameworks/*/executors/{task_id}/runs/latest")}
    return path


def no_mounts_below(path: str) -> bool:
    with open("/proc/self/mountinfo") as handle:
        return not any(line.split()[4].startswith(os.path.abspath(path) + "/") for line in handle)


def wait_file(path: Path, timeout: float = 15.0) -> str:
    wait_until(lambda: path.exists() and path.read_text(), timeout=timeout, what=f"{path} to be written")
    time.sleep(0.05)
    return path.read_text()
