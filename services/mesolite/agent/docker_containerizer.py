"""The Docker containerizer (``--containerizers=mesos,docker``): tasks with ``ContainerInfo{type: DOCKER}``.

It talks to a Docker-compatible engine through the ``docker`` SDK on ``--docker_socket`` (podman's ``system service``
works as well as dockerd). Creation happens here, in the agent, so that every mistake (no engine, no such image, a
parameter Docker would refuse) is a TASK_FAILED with the reason before anything runs; starting, following the logs
into the sandbox and waiting for the exit happen in the container's supervisor (supervisor.py), which outlives the
agent like Mesos' docker executor does.

Translation from ContainerInfo follows Mesos' src/docker/docker.cpp: the sandbox is bind-mounted at
``/mnt/mesos/sandbox`` (also the working directory) with ``MESOS_SANDBOX`` pointing there; ``shell: true`` commands
run as ``/bin/sh -c`` with that entrypoint, otherwise ``value`` and ``arguments`` are the container's command after
the image's entrypoint; cpus become ``cpu_shares`` (``max(1024 × cpus, 2)``) and mem the memory limit;
``parameters`` are ``docker run`` flags.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import threading
from typing import Any

from mesolite.agent.cgroups import cpu_shares, memory_limit_bytes
from mesolite.agent.images.reference import ImageReference, ReferenceError
from mesolite.agent.images.registry import PullError, find_auth, parse_docker_config

log = logging.getLogger(__name__)

SANDBOX_PATH = "/mnt/mesos/sandbox"
LABEL_WORK_DIR = "mesolite.agent_work_dir"
LABEL_CONTAINER = "mesolite.container_id"
# Creating and starting containers at once beyond this only makes the engine slower for all of them (podman's API
# service answers hundreds of concurrent creates with timeouts); a burst of launches queues here instead.
CONCURRENT_LAUNCHES = 4


class DockerError(Exception):
    pass


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise DockerError(f"expected KEY=VALUE, got '{text}'")
    return key, value


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("", "1", "true", "yes")


def _ulimit(text: str) -> Any:
    from docker.types import Ulimit

    name, value = _key_value(text)
    soft, _, hard = value.partition(":")
    return Ulimit(name=name, soft=int(soft), hard=int(hard or soft))


def _tmpfs(options: dict[str, Any], value: str) -> None:
    path, _, mount_options = value.partition(":")
    options.setdefault("tmpfs", {})[path] = mount_options


# ``docker run`` flags (ContainerInfo.docker.parameters) and how each becomes an argument of containers.create().
_LIST_PARAMETERS = {
    "cap-add": "cap_add",
    "cap-drop": "cap_drop",
    "dns": "dns",
    "dns-search": "dns_search",
    "security-opt": "security_opt",
    "device": "devices",
    "group-add": "group_add",
}
_SCALAR_PARAMETERS = {
    "hostname": "hostname",
    "h": "hostname",
    "workdir": "working_dir",
    "w": "working_dir",
    "user": "user",
    "u": "user",
    "entrypoint": "entrypoint",
    "shm-size": "shm_size",
    "pid": "pid_mode",
    "ipc": "ipc_mode",
    "stop-signal": "stop_signal",
}


def registry_auth(image: str, sandbox: str, docker_config: str | None) -> dict[str, str] | None:
    """The credentials a pull of ``image`` uses, as Mesos' Docker containerizer finds them: a ``.docker/config.json``
    (from a fetched ``docker.tar.gz``) or ``.dockercfg`` in the task's sandbox, else ``--docker_config``."""
    try:
        reference = ImageReference.parse(image)
    except ReferenceError:
        return None
    host = reference.registry or "docker.io"
    configs = []
    for name in (os.path.join(".docker", "config.json"), ".dockercfg"):
        path = os.path.join(sandbox, name)
        if os.path.isfile(path):
            configs.append(parse_docker_config(path))
    configs.append(parse_docker_config(docker_config))
    auth = find_auth(configs, host)
    if auth is None:
        return None
    try:
        username, _, password = base64.b64decode(auth).decode().partition(":")
    except ValueError:
        raise DockerError(f"The Docker config's 'auth' for {host} is not base64 of user:password") from None
    return {"username": username, "password": password, "serveraddress": host}


class DockerContainerizer:
    def __init__(self, socket: str, work_dir: str, docker_config: str | None = None) -> None:
        self.socket = socket if "://" in socket else f"unix://{socket}"
        self.work_dir = os.path.abspath(work_dir)
        self.docker_config = docker_config
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.launches = threading.BoundedSemaphore(CONCURRENT_LAUNCHES)

    def client(self) -> Any:
        with self._client_lock:
            return self._connect()

    def _connect(self) -> Any:
        if self._client is None:
            try:
                import docker
            except ImportError as exc:  # pragma: no cover - docker is a dependency
                raise DockerError(f"the docker SDK is not installed: {exc}") from None
            try:
                self._client = docker.DockerClient(base_url=self.socket, timeout=60)
                self._client.ping()
            except Exception as exc:  # noqa: BLE001 - docker wraps some errors, not all (requests, OSError)
                self._client = None
                raise DockerError(f"Docker daemon at {self.socket} is unreachable: {exc}") from None
        return self._client

    def create(
        self,
        container_id: str,
        container_info: dict[str, Any],
        command: dict[str, Any],
        env: dict[str, str],
        cpus: float,
        mem: float,
        sandbox: str,
    ) -> str:
        """Create (not start) the container; answers its name. Raises DockerError with the reason."""
        from docker.errors import DockerException, ImageNotFound

        docker_info = container_info.get("docker") or {}
        image = docker_info.get("image")
        if not isinstance(image, str) or not image:
            raise DockerError("ContainerInfo.docker.image is required")
        client = self.client()
        options = self._options(container_id, container_info, command, env, cpus, mem, sandbox)
        try:
            auth = registry_auth(image, sandbox, self.docker_config)
        except (PullError, OSError) as exc:
            raise DockerError(f"Failed to read the Docker config: {exc}") from None
        try:
            if docker_info.get("force_pull_image"):
                self._pull(image, auth)
            else:
                try:
                    client.images.get(image)
                except ImageNotFound:
                    self._pull(image, auth)
            client.containers.create(image, **options)
        except DockerError:
            raise
        except (DockerException, OSError) as exc:
            raise DockerError(f"Failed to create container from image '{image}': {exc}") from None
        except Exception as exc:  # noqa: BLE001 - requests errors when the engine goes away mid-call
            raise DockerError(f"Docker daemon at {self.socket} failed: {exc}") from None
        return str(options["name"])

    def _pull(self, image: str, auth: dict[str, str] | None) -> None:
        repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        try:
            self.client().images.pull(repository, tag=tag or "latest", auth_config=auth)
        except Exception as exc:  # noqa: BLE001 - any failure to pull is a failed launch with its cause
            raise DockerError(f"Failed to pull image '{image}': {exc}") from None

    def _options(
        self,
        container_id: str,
        container_info: dict[str, Any],
        command: dict[str, Any],
        env: dict[str, str],
        cpus: float,
        mem: float,
        sandbox: str,
    ) -> dict[str, Any]:
        docker_info = container_info.get("docker") or {}
        options: dict[str, Any] = {
            "name": f"mesos-{container_id}",
            "detach": True,
            "environment": {**env, "MESOS_SANDBOX": SANDBOX_PATH},
            "labels": {LABEL_WORK_DIR: self.work_dir, LABEL_CONTAINER: container_id},
            "volumes": [f"{sandbox}:{SANDBOX_PATH}:rw"],
            "working_dir": SANDBOX_PATH,
            "privileged": bool(docker_info.get("privileged", False)),
        }
        if cpus > 0:
            options["cpu_shares"] = cpu_shares(cpus)
        if mem > 0:
            options["mem_limit"] = memory_limit_bytes(mem)
        network = str(docker_info.get("network") or "HOST").upper()
        if network == "HOST":
            options["network_mode"] = "host"
        elif network == "NONE":
            options["network_mode"] = "none"
        elif network == "BRIDGE":
            options["network_mode"] = "bridge"
            ports: dict[str, int] = {}
            for mapping in docker_info.get("port_mappings") or []:
                protocol = str(mapping.get("protocol") or "tcp").lower()
                ports[f"{int(mapping['container_port'])}/{protocol}"] = int(mapping["host_port"])
            if ports:
                options["ports"] = ports
        elif network == "USER":
            names = [n.get("name") for n in container_info.get("network_infos") or [] if n.get("name")]
            if not names:
                raise DockerError("network USER needs a network name in ContainerInfo.network_infos")
            options["network_mode"] = names[0]
        else:
            raise DockerError(f"Unsupported Docker network '{network}'")
        for volume in container_info.get("volumes") or []:
            host_path, container_path = volume.get("host_path"), volume.get("container_path")
            if not host_path or not container_path:
                raise DockerError("Docker volumes need 'host_path' and 'container_path'")
            if not os.path.isabs(host_path):
                host_path = os.path.join(sandbox, host_path)  # relative host paths live in the sandbox, as in Mesos
            mode = "ro" if str(volume.get("mode", "RW")).upper() == "RO" else "rw"
            options["volumes"].append(f"{host_path}:{container_path}:{mode}")
        for parameter in docker_info.get("parameters") or []:
            self._parameter(options, str(parameter.get("key", "")).lstrip("-"), str(parameter.get("value", "")))
        if command.get("shell", True):
            value = command.get("value")
            if value:
                options["entrypoint"] = ["/bin/sh"]
                options["command"] = ["-c", str(value)]
        else:
            argv = ([str(command["value"])] if command.get("value") else []) + [
                str(a) for a in command.get("arguments") or []
            ]
            if argv:
                options["command"] = argv
        return options

    @staticmethod
    def _parameter(options: dict[str, Any], key: str, value: str) -> None:
        if key in ("env", "e"):
            name, val = _key_value(value)
            options["environment"][name] = val
        elif key in ("label", "l"):
            name, val = _key_value(value)
            options["labels"][name] = val
        elif key in ("volume", "v"):
            options["volumes"].append(value)
        elif key == "add-host":
            host, _, address = value.partition(":")
            options.setdefault("extra_hosts", {})[host] = address
        elif key == "sysctl":
            name, val = _key_value(value)
            options.setdefault("sysctls", {})[name] = val
        elif key == "ulimit":
            options.setdefault("ulimits", []).append(_ulimit(value))
        elif key == "tmpfs":
            _tmpfs(options, value)
        elif key in ("read-only", "init"):
            options["read_only" if key == "read-only" else "init"] = _truthy(value)
        elif key in _LIST_PARAMETERS:
            options.setdefault(_LIST_PARAMETERS[key], []).append(value)
        elif key in _SCALAR_PARAMETERS:
            options[_SCALAR_PARAMETERS[key]] = value
        else:
            raise DockerError(f"Unsupported docker parameter '{key}'")

    def stop(self, name: str, grace: float) -> None:
        """``docker stop -t grace``: SIGTERM (or the image's stop signal), SIGKILL after the grace period."""
        try:
            self.client().containers.get(name).stop(timeout=max(0, math.ceil(grace)))
        except Exception as exc:  # noqa: BLE001 - gone already, or the engine is: the supervisor reports either way
            log.info("stopping container %s: %s", name, exc)

    def remove(self, name: str) -> None:
        try:
            self.client().containers.get(name).remove(force=True)
        except Exception as exc:  # noqa: BLE001 - best effort
            log.info("removing container %s: %s", name, exc)
