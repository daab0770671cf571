"""Fixtures of the agent's own integration tests: the podman-backed Docker engine."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.cluster import free_port, wait_until
from tests.integration.agent.images_fixtures import PASSWORD, PRINT_ARGS, USER, ImageDir, Registry, mkimage

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


# ------------------------------------------------------------------ images (test_images.py, test_secrets.py)


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> ImageDir:
    """``busybox:latest`` (two layers, the second with whiteouts; Cmd /bin/sh, an Env of its own),
    ``argv:latest`` (an Entrypoint printing its arguments, a Cmd) and ``broken:latest`` (a truncated tarball)."""
    base = tmp_path_factory.mktemp("images")
    busybox = str(base / "busybox:latest.tar")
    mkimage("busybox", busybox, "--name", "busybox:latest", "--test-layer", "--cmd", '["/bin/sh"]',
            "--env", "PATH=/bin", "--env", "IMAGE_VAR=from-image", "--env", "OVERRIDDEN=image")  # fmt: skip
    script = base / "print-args.sh"
    script.write_text(PRINT_ARGS)
    mkimage("busybox", str(base / "argv:latest.tar"), "--name", "argv:latest", "--env", "PATH=/bin",
            "--file", f"{script}:/print-args.sh", "--entrypoint", '["/bin/sh", "/print-args.sh"]',
            "--cmd", '["from-cmd"]', "--workdir", "/tmp")  # fmt: skip
    data = Path(busybox).read_bytes()
    (base / "broken:latest.tar").write_bytes(data[: len(data) // 2])
    return ImageDir(str(base), busybox)


@pytest.fixture(scope="session")
def registry(image_dir: ImageDir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port, basic auth only, with busybox pushed to it."""
    binary = shutil.which("docker-registry")
    if binary is None or shutil.which("htpasswd") is None:
        pytest.fail("docker-registry and htpasswd are missing: run scripts/install-system-deps.sh")
    base = tmp_path_factory.mktemp("registry")
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
    (base / "htpasswd").write_text(htpasswd.stdout)
    port = free_port()
    (base / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: mesolite-test\n    path: {base / 'htpasswd'}\n"
    )
    with open(base / "registry.log", "wb") as log:
        process = subprocess.Popen([binary, "serve", str(base / "config.yml")], stdout=log, stderr=log)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401,
                   what="docker-registry to answer", retry_on=(requests.ConnectionError,))  # fmt: skip
        host = f"127.0.0.1:{port}"
        mkimage("push", image_dir.busybox, f"{host}/busybox:latest", "--user", f"{USER}:{PASSWORD}")
        registry = Registry(host, "")
        registry.docker_config = registry.config_with(PASSWORD)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
