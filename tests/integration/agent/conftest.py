"""Fixtures of the agent's own integration tests: the podman-backed Docker engine."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Engine:
    socket: str  # DOCKER_HOST form: unix:///...
    image: str  # a small local image (busybox), built by scripts/setup-podman.sh


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """podman's Docker-compatible API on the project's socket (scripts/setup-podman.sh), stopped afterwards when this
    session started it."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: the Docker containerizer tests need it (see .ci/run)")
    script = ROOT / "scripts" / "setup-podman.sh"
    result = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"scripts/setup-podman.sh start failed:\n{result.stderr}")
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    try:
        yield Engine(values["DOCKER_HOST"], values["MESOLITE_IMAGE"])
    finally:
        if values.get("STARTED") == "1":
            subprocess.run([str(script), "stop"], timeout=60, check=False)
