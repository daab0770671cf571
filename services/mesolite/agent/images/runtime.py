"""The Mesos containerizer's pre-exec step: what turns a command into a container with an image, secrets and
volumes. The containerizer calls ``prepare`` once per container before its supervisor starts (and ``finished`` when
it ended); everything else about launching is the containerizer's and the supervisor's business.

``prepare`` plays the parts of Mesos' isolators that act before the exec:

- ``filesystem/linux`` + the provisioner (``--image_providers docker``): the image is pulled into the store (once;
  ``cached: false`` pulls again) and a rootfs is provisioned for the container;
- ``docker/runtime``: the image's Env, Entrypoint, Cmd and WorkingDir are merged with the CommandInfo as Mesos does
  (docs/isolators/docker-runtime.md; ``--docker_ignore_runtime`` skips that);
- ``environment_secret`` / ``volume/secret``: every SECRET environment variable and volume must resolve (checked
  here, read by the container init);
- ``volume/host_path`` / ``volume/sandbox_path``: the volumes to bind in;
- ``namespaces/pid``: a pid namespace of the container's own.

It answers the spec the supervisor runs: the container init (container_init.py) with its instructions in
``init.json`` beside the container's other checkpointed files, which never hold a secret's value.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from mesolite.agent.images import provisioner
from mesolite.agent.images.provisioner import ProvisionError
from mesolite.agent.images.puller import Puller
from mesolite.agent.images.reference import ImageReference, ReferenceError
from mesolite.agent.images.registry import PullError
from mesolite.agent.images.store import ImageStore, StoredImage, StoreError
from mesolite.agent.secrets import SecretError, SecretResolver

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_SPEC = "init.json"
INIT_ERROR = "init.error"


class PrepareError(Exception):
    """The container cannot start; the message is the TASK_FAILED reason (never a secret's value)."""


@dataclass
class RuntimeSettings:
    work_dir: str
    isolation: frozenset[str]
    image_providers: tuple[str, ...] = ()
    docker_registry: str = "https://registry-1.docker.io"
    docker_store_dir: str | None = None
    docker_config: str | None = None
    backend: str | None = None  # None: overlay where the kernel has it, else copy
    sandbox_directory: str = "/mnt/mesos/sandbox"
    docker_ignore_runtime: bool = False
    secrets_dir: str | None = None

    @property
    def filesystem_linux(self) -> bool:
        return "filesystem/linux" in self.isolation

    @property
    def pid_namespace(self) -> bool:
        return "namespaces/pid" in self.isolation


def default_backend() -> str:
    """Mesos picks overlay when the kernel supports it, copy otherwise."""
    try:
        with open("/proc/filesystems") as handle:
            if any(line.split()[-1] == "overlay" for line in handle if line.strip()):
                return "overlay"
    except OSError:
        pass
    return "copy"


class ContainerRuntime:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.resolver = SecretResolver(settings.secrets_dir)
        self.store: ImageStore | None = None
        self.puller: Puller | None = None
        if "docker" in settings.image_providers:
            backend = settings.backend or default_backend()
            store_dir = settings.docker_store_dir or os.path.join(settings.work_dir, "store", "docker")
            self.store = ImageStore(store_dir, backend)
            self.puller = Puller(self.store, settings.docker_registry, settings.docker_config)

    def start(self, live_containers: set[str] | None = None) -> None:
        if self.store is not None:
            self.store.start()
        if live_containers is not None:
            provisioner.recover(self.settings.work_dir, live_containers)

    # ------------------------------------------------------------------ the hook

    def prepare(self, container_id: str, spec: dict[str, Any], meta: str) -> dict[str, Any]:
        """The supervisor spec to run instead of ``spec``: the container init, when the container needs one."""
        container_info = spec.pop("container_info", None) or {}
        command = spec.pop("command_info", None) or {}
        image = _image_of(container_info)
        secret_env = _secret_env(command)
        secret_files, mounts = self._volumes(container_info, spec["cwd"], image is not None)
        if image is None and not secret_env and not secret_files and not mounts:
            return spec
        if image is not None and "docker" not in self.settings.image_providers:
            raise PrepareError(
                f"Container image of type {image.get('type', 'UNKNOWN')} is not supported: "
                "this agent has no --image_providers"
            )
        for item in secret_env + secret_files:
            try:
                self.resolver.check(item["secret"])
            except SecretError as exc:
                raise PrepareError(str(exc)) from None
        init: dict[str, Any] = {
            "sandbox": spec["cwd"],
            "sandbox_path": self.settings.sandbox_directory,
            "secrets_dir": self.resolver.directory,
            "secret_env": secret_env,
            "secret_files": secret_files,
            "mounts": mounts,
            "user": _with_groups(spec.get("user")),
            "pid_namespace": self.settings.pid_namespace,
            "mount_namespace": bool(secret_files or mounts) or self.settings.pid_namespace,
            "error_file": os.path.join(meta, INIT_ERROR),
            "argv": spec.get("argv"),
            "executable": spec.get("executable"),
            "env": spec["env"],
            "cwd": spec["cwd"],
        }
        if image is not None:
            stored = self._pull(image)
            init.update(self._merge(stored, command, spec["env"]))
            init["rootfs"] = self._provision(container_id, stored)
        if not init.get("argv"):
            raise PrepareError("No command to run")
        path = os.path.join(meta, INIT_SPEC)
        with open(path, "w") as handle:
            json.dump(init, handle)
        return {
            **spec,
            "argv": [sys.executable, "-m", "mesolite.agent.container_init", path],
            "executable": sys.executable,
            "env": {"PATH": os.environ.get("PATH", DEFAULT_PATH)},
            "user": None,  # the init drops to the task's user itself, once its mounts are done
        }

    def finished(self, container_id: str, meta: str) -> str | None:
        """The container ended: remove its rootfs; answers why it failed to start, if it did."""
        try:
            provisioner.destroy(self.settings.work_dir, container_id)
        except OSError as exc:
            log.warning("removing the rootfs of container %s failed: %s", container_id, exc)
        try:
            with open(os.path.join(meta, INIT_ERROR)) as handle:
                return handle.read().strip() or None
        except OSError:
            return None

    # ------------------------------------------------------------------ images

    def _pull(self, image: dict[str, Any]) -> StoredImage:
        assert self.store is not None and self.puller is not None
        if image.get("type") != "DOCKER":
            raise PrepareError(f"Unsupported container image type: {image.get('type', 'UNKNOWN')}")
        docker = image.get("docker") or {}
        name = docker.get("name")
        try:
            ref = ImageReference.parse(str(name or ""))
        except ReferenceError as exc:
            raise PrepareError(f"Failed to parse the image name '{name}': {exc}") from None
        pull_config = None
        if docker.get("config"):
            try:
                pull_config = self.resolver.resolve(docker["config"])
            except SecretError as exc:
                raise PrepareError(f"Failed to resolve the image's pull config: {exc}") from None
        cached = image.get("cached", True) is not False
        with self.store.pulling(ref.canonical()):
            stored = self.store.get(ref.canonical()) if cached else None
            if stored is not None:
                return stored
            try:
                stored = self.puller.pull(ref, pull_config)
            except (PullError, StoreError, OSError) as exc:
                raise PrepareError(f"Failed to pull image '{ref.printed()}': {exc}") from None
        log.info("pulled image %s (%d layers)", ref.printed(), len(stored.layers))
        return stored

    def _provision(self, container_id: str, image: StoredImage) -> str:
        assert self.store is not None
        layers = [self.store.layer_rootfs(layer) for layer in image.layers]
        try:
            return provisioner.provision(self.settings.work_dir, container_id, self.store.backend, layers)
        except ProvisionError as exc:
            raise PrepareError(str(exc)) from None

    def _merge(self, image: StoredImage, command: dict[str, Any], agent_env: dict[str, str]) -> dict[str, Any]:
        """argv, env and working directory from the image's config and the CommandInfo (Mesos' docker/runtime)."""
        config = {} if self.settings.docker_ignore_runtime else image.config
        if config.get("User"):
            log.warning("image %s: ignoring its User '%s' as Mesos does", image.name, config["User"])
        env = {k: v for k, v in agent_env.items() if k.startswith(("MESOS_", "LIBPROCESS_"))}
        env["MESOS_SANDBOX"] = self.settings.sandbox_directory
        for item in config.get("Env") or []:
            key, sep, value = str(item).partition("=")
            if sep and key:
                env[key] = value
        env.update(_value_env(command))
        env.setdefault("PATH", DEFAULT_PATH)
        argv, executable = launch_command(command, config)
        workdir = config.get("WorkingDir") or self.settings.sandbox_directory
        return {"argv": argv, "executable": executable, "env": env, "cwd": workdir}

    # ------------------------------------------------------------------ volumes

    def _volumes(
        self, container_info: dict[str, Any], sandbox: str, has_image: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(secret files, bind mounts) of ContainerInfo.volumes; volumes need ``filesystem/linux`` (a mount
        namespace), except for a container without one, which keeps today's behaviour (no volumes)."""
        secret_files: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        if container_info.get("type", "MESOS") != "MESOS":
            return secret_files, mounts
        for volume in container_info.get("volumes") or []:
            if not isinstance(volume, dict):
                continue
            target = volume.get("container_path")
            if not isinstance(target, str) or not target:
                raise PrepareError("A volume needs 'container_path'")
            readonly = str(volume.get("mode", "RW")).upper() == "RO"
            source = volume.get("source") or {}
            kind = source.get("type")
            if kind == "SECRET":
                secret_files.append({"secret": source.get("secret"), "target": target, "readonly": True})
                continue
            if kind == "SANDBOX_PATH":
                relative = (source.get("sandbox_path") or {}).get("path")
                if not isinstance(relative, str) or relative.startswith("/") or ".." in relative.split("/"):
                    raise PrepareError(f"Invalid sandbox path volume for '{target}'")
                host = os.path.join(sandbox, relative)
                os.makedirs(host, exist_ok=True)
            else:
                host = str(volume.get("host_path") or (source.get("host_path") or {}).get("path") or "")
                if not host:
                    if volume.get("image"):
                        raise PrepareError(f"Image volumes are not supported (volume '{target}')")
                    continue  # persistent volumes and the like are not this step's
                host = host if host.startswith("/") else os.path.join(sandbox, host)
                if not os.path.exists(host):
                    os.makedirs(host, exist_ok=True)  # as Mesos' volume/host_path does for a missing directory
            if not has_image and not self.settings.filesystem_linux:
                continue
            mounts.append({"source": host, "target": target, "readonly": readonly})
        if secret_files and not (has_image or self.settings.filesystem_linux):
            raise PrepareError("Secret volumes need --isolation=filesystem/linux (a mount namespace)")
        return secret_files, mounts


def launch_command(command: dict[str, Any], config: dict[str, Any]) -> tuple[list[str], str]:
    """(argv, executable) per Mesos' docker/runtime isolator (containers-pods-edge reference §1.4)."""
    value = command.get("value")
    arguments = [str(a) for a in command.get("arguments") or []]
    if command.get("shell", True):
        if not value:
            raise PrepareError("Shell specified but no command value provided")
        return ["/bin/sh", "-c", str(value)], "/bin/sh"
    if value:
        return (arguments or [str(value)]), str(value)
    entrypoint = [str(a) for a in config.get("Entrypoint") or []]
    cmd = [str(a) for a in config.get("Cmd") or []]
    if entrypoint:
        return entrypoint + (arguments or cmd), entrypoint[0]
    if cmd:
        return [cmd[0]] + (arguments or cmd[1:]), cmd[0]
    raise PrepareError("Failed to determine the launch command: No executable is found")


def _image_of(container_info: dict[str, Any]) -> dict[str, Any] | None:
    if container_info.get("type", "MESOS") != "MESOS":
        return None
    image = (container_info.get("mesos") or {}).get("image")
    return image if isinstance(image, dict) else None


def _value_env(command: dict[str, Any]) -> dict[str, str]:
    env = {}
    for variable in (command.get("environment") or {}).get("variables") or []:
        if isinstance(variable, dict) and variable.get("type", "VALUE") == "VALUE" and "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env


def _secret_env(command: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for variable in (command.get("environment") or {}).get("variables") or []:
        if isinstance(variable, dict) and variable.get("type") == "SECRET":
            if not isinstance(variable.get("secret"), dict):
                raise PrepareError(f"Environment variable '{variable.get('name')}' of type SECRET has no secret")
            out.append({"name": str(variable.get("name")), "secret": variable["secret"]})
        elif isinstance(variable, dict) and variable.get("type") not in (None, "VALUE", "SECRET"):
            raise PrepareError(f"Environment variable '{variable.get('name')}' has an unknown type")
    return out


def _with_groups(user: dict[str, Any] | None) -> dict[str, Any] | None:
    if not user:
        return None
    try:
        groups = os.getgrouplist(str(user["name"]), int(user["gid"]))
    except OSError:
        groups = [int(user["gid"])]
    return {**user, "groups": groups}
