"""``mesolite agent`` settings: the flags of ``mesos-agent`` (containerization, recovery, fetcher, GC), with Mesos'
names, forms and defaults, so an operator's command line carries over."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from mesolite.agent.fetcher import DEFAULT_CACHE_SIZE
from mesolite.core.attributes import Attributes
from mesolite.core.flags import (
    FlagError,
    parse_attributes,
    parse_bool,
    parse_bytes,
    parse_duration,
    parse_master,
    parse_resources,
)
from mesolite.core.resources import Resources

WEEK = 7 * 86400.0
CONTAINERIZERS = ("mesos", "docker")
# Mesos caps how long a restarted agent waits for its executors to re-register.
MAX_EXECUTOR_REREGISTRATION_TIMEOUT = 15.0


@dataclass
class AgentConfig:
    master: str = "127.0.0.1:5050"
    ip: str = "127.0.0.1"
    port: int = 5051
    hostname: str | None = None
    work_dir: str = "/var/lib/mesolite/agent"
    resources: Resources = field(default_factory=Resources)
    attributes: Attributes = field(default_factory=Attributes)
    switch_user: bool = True
    registration_backoff: float = 1.0
    status_retry_min: float = 10.0
    isolation: str = "auto"
    cgroups_root: str = "mesolite"
    cgroups_enable_cfs: bool = False
    containerizers: tuple[str, ...] = ("mesos",)
    docker_socket: str = "/var/run/docker.sock"
    recover: str = "reconnect"
    executor_registration_timeout: float = 60.0
    executor_reregistration_timeout: float = 2.0
    executor_shutdown_grace_period: float = 5.0
    fetcher_cache_dir: str | None = None
    fetcher_cache_size: int = DEFAULT_CACHE_SIZE
    gc_delay: float = WEEK
    gc_disk_headroom: float = 0.1
    disk_watch_interval: float = 60.0
    image_providers: tuple[str, ...] = ()
    docker_registry: str = "https://registry-1.docker.io"
    docker_store_dir: str | None = None
    docker_config: str | None = None
    image_provisioner_backend: str | None = None
    sandbox_directory: str = "/mnt/mesos/sandbox"
    docker_ignore_runtime: bool = False
    secrets_dir: str | None = None

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.ip


def parse_containerizers(text: str) -> tuple[str, ...]:
    """``--containerizers mesos,docker``: the order is the order tried, as in Mesos; an unknown one is refused."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in CONTAINERIZERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown containerizer in '{text}' (expected mesos, docker or mesos,docker)")
    return names


def parse_image_providers(text: str) -> tuple[str, ...]:
    """``--image_providers docker`` (case-insensitive, as in Mesos); appc images are not supported here."""
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name != "docker"]
    if unknown:
        raise argparse.ArgumentTypeError(f"unsupported image provider '{unknown[0]}' (supported: docker)")
    return names


# What ``--isolation`` may name: the resource isolators (cgroups.py) and the pre-exec ones (images/runtime.py). The
# volume and secret isolators Mesos adds by itself with filesystem/linux are accepted too.
KNOWN_ISOLATORS = frozenset(
    {
        "auto",
        "posix/cpu",
        "posix/mem",
        "posix/disk",
        "cgroups/cpu",
        "cgroups/mem",
        "filesystem/posix",
        "filesystem/linux",
        "docker/runtime",
        "namespaces/pid",
        "environment_secret",
        "volume/secret",
        "volume/host_path",
        "volume/sandbox_path",
    }
)


def isolators(isolation: str) -> frozenset[str]:
    return frozenset(part.strip() for part in isolation.split(",") if part.strip())


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    agent = subparsers.add_parser("agent", help="run a Mesos agent")
    agent.add_argument(
        "--master", type=parse_master, required=True, help="HOST:PORT of the master, or zk://HOSTS/mesos"
    )
    agent.add_argument("--ip", default="127.0.0.1")
    agent.add_argument("--port", type=int, default=5051)
    agent.add_argument("--hostname")
    agent.add_argument("--work_dir", required=True)
    agent.add_argument("--resources", type=parse_resources, default=Resources(), help="e.g. cpus:2;mem:1024, file://")
    agent.add_argument("--attributes", type=parse_attributes, default=Attributes(), help="e.g. rack:r1;zone:2")
    agent.add_argument("--switch_user", type=parse_bool, default=True)
    agent.add_argument("--threads", type=int, default=64, help="HTTP threads (each subscribed executor holds one)")
    _isolation_flags(agent)
    _image_flags(agent)
    return agent


def _image_flags(agent: argparse.ArgumentParser) -> None:
    """Images in the Mesos containerizer and secrets, with Mesos' names (``--secrets_dir`` is mesolite's stand-in
    for a ``--secret_resolver`` module: one root-only file per secret name)."""
    agent.add_argument("--image_providers", type=parse_image_providers, default=(), help="docker")
    agent.add_argument(
        "--docker_registry",
        default="https://registry-1.docker.io",
        help="registry URL, or a local directory of 'docker save' tarballs named <repository>:<tag>.tar",
    )
    agent.add_argument("--docker_store_dir", default=None, help="default: <work_dir>/store/docker")
    agent.add_argument("--docker_config", default=None, help="Docker config.json (path or JSON) for registry pulls")
    agent.add_argument("--image_provisioner_backend", choices=["overlay", "copy"], default=None)
    agent.add_argument("--sandbox_directory", default="/mnt/mesos/sandbox")
    agent.add_argument("--docker_ignore_runtime", type=parse_bool, nargs="?", const=True, default=False)
    agent.add_argument("--secrets_dir", default=None, help="secret store: <dir>/<secret name>, root-only files")


def _isolation_flags(agent: argparse.ArgumentParser) -> None:
    """Containerization, recovery, fetcher and GC flags, named and defaulted as in Mesos."""
    agent.add_argument("--isolation", default="auto", help="cgroups/cpu,cgroups/mem or posix/cpu,posix/mem")
    agent.add_argument("--cgroups_root", default="mesolite")
    agent.add_argument("--cgroups_enable_cfs", type=parse_bool, nargs="?", const=True, default=False)
    agent.add_argument("--containerizers", type=parse_containerizers, default=("mesos",), help="mesos or mesos,docker")
    agent.add_argument("--docker_socket", default=os.environ.get("DOCKER_HOST", "/var/run/docker.sock"))
    agent.add_argument("--recover", choices=["reconnect", "cleanup"], default="reconnect")
    agent.add_argument("--executor_registration_timeout", type=parse_duration, default=60.0)
    agent.add_argument("--executor_reregistration_timeout", type=parse_duration, default=2.0)
    agent.add_argument("--executor_shutdown_grace_period", type=parse_duration, default=5.0)
    agent.add_argument("--fetcher_cache_dir", default=None, help="default: <work_dir>/fetch")
    agent.add_argument("--fetcher_cache_size", type=parse_bytes, default=DEFAULT_CACHE_SIZE)
    agent.add_argument("--gc_delay", type=parse_duration, default=WEEK)
    agent.add_argument("--gc_disk_headroom", type=float, default=0.1)
    agent.add_argument("--disk_watch_interval", type=parse_duration, default=60.0)


def from_args(args: argparse.Namespace) -> AgentConfig:
    """The agent's settings as given; what ``--resources`` leaves out is detected when the agent starts
    (``agent.state.detect_resources``), since that looks at the machine."""
    wanted = isolators(args.isolation)
    unknown = sorted(wanted - KNOWN_ISOLATORS)
    if unknown:
        raise FlagError(f"Unknown or unsupported isolator '{unknown[0]}' in --isolation={args.isolation}")
    if "docker" in args.image_providers and not {"filesystem/linux", "docker/runtime"} <= wanted:
        raise FlagError(
            "--image_providers=docker needs --isolation with filesystem/linux and docker/runtime "
            f"(got --isolation={args.isolation})"
        )
    if not args.sandbox_directory.startswith("/"):
        raise FlagError(f"--sandbox_directory must be an absolute path (got '{args.sandbox_directory}')")
    return AgentConfig(
        master=args.master,
        ip=args.ip,
        port=args.port,
        hostname=args.hostname,
        work_dir=args.work_dir,
        resources=args.resources,
        attributes=args.attributes,
        switch_user=args.switch_user,
        isolation=args.isolation,
        cgroups_root=args.cgroups_root,
        cgroups_enable_cfs=args.cgroups_enable_cfs,
        containerizers=args.containerizers,
        docker_socket=args.docker_socket,
        recover=args.recover,
        executor_registration_timeout=args.executor_registration_timeout,
        executor_reregistration_timeout=min(args.executor_reregistration_timeout, MAX_EXECUTOR_REREGISTRATION_TIMEOUT),
        executor_shutdown_grace_period=args.executor_shutdown_grace_period,
        fetcher_cache_dir=args.fetcher_cache_dir,
        fetcher_cache_size=args.fetcher_cache_size,
        gc_delay=args.gc_delay,
        gc_disk_headroom=args.gc_disk_headroom,
        disk_watch_interval=args.disk_watch_interval,
        image_providers=args.image_providers,
        docker_registry=args.docker_registry,
        docker_store_dir=args.docker_store_dir,
        docker_config=args.docker_config,
        image_provisioner_backend=args.image_provisioner_backend,
        sandbox_directory=args.sandbox_directory,
        docker_ignore_runtime=args.docker_ignore_runtime,
        secrets_dir=args.secrets_dir,
    )
