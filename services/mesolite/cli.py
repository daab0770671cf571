"""The ``mesolite`` command: one subcommand per service, with flags named as in the originals."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from mesolite.core.attributes import AttributeParseError, Attributes
from mesolite.core.flags import parse_duration
from mesolite.core.resources import ResourceError, Resources
from mesolite.haproxy_bridge import zdd_config


def _resources_arg(text: str) -> Resources:
    if text.startswith("file://"):
        with open(text[len("file://") :]) as handle:
            text = handle.read().strip()
    try:
        return Resources.parse(text)
    except ResourceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _attributes_arg(text: str) -> Attributes:
    try:
        return Attributes.parse(text)
    except AttributeParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _weights_arg(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        role, _, weight = item.partition("=")
        try:
            weights[role] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid weight '{item}' (expected role=weight)") from None
    return weights


def _optional_duration(text: str) -> float | None:
    return None if text in ("", "none", "0") else parse_duration(text)


def _agent_isolation_flags(agent: argparse.ArgumentParser) -> None:
    """Containerization, recovery, fetcher and GC flags of ``mesolite agent``, named and defaulted as in Mesos."""
    flag = lambda v: v.lower() in ("1", "true", "yes", "")  # noqa: E731 - Mesos booleans
    agent.add_argument("--isolation", default="auto", help="cgroups/cpu,cgroups/mem or posix/cpu,posix/mem")
    agent.add_argument("--cgroups_root", default="mesolite")
    agent.add_argument("--cgroups_enable_cfs", type=flag, nargs="?", const=True, default=False)
    agent.add_argument("--containerizers", default="mesos", help="mesos or mesos,docker")
    agent.add_argument("--docker_socket", default=os.environ.get("DOCKER_HOST", "/var/run/docker.sock"))
    agent.add_argument("--recover", choices=["reconnect", "cleanup"], default="reconnect")
    agent.add_argument("--executor_registration_timeout", type=parse_duration, default=60.0)
    agent.add_argument("--executor_reregistration_timeout", type=parse_duration, default=2.0)
    agent.add_argument("--executor_shutdown_grace_period", type=parse_duration, default=5.0)
    agent.add_argument("--fetcher_cache_dir", default=None, help="default: <work_dir>/fetch")
    agent.add_argument("--fetcher_cache_size", type=_bytes_arg, default=2 * 1024**3)
    agent.add_argument("--gc_delay", type=parse_duration, default=7 * 86400.0)
    agent.add_argument("--gc_disk_headroom", type=float, default=0.1)
    agent.add_argument("--disk_watch_interval", type=parse_duration, default=60.0)


def _bytes_arg(text: str) -> int:
    """Mesos byte sizes: ``2GB``, ``512MB``, ``100KB``, ``10B`` or a plain number of bytes."""
    units = {"TB": 1024**4, "GB": 1024**3, "MB": 1024**2, "KB": 1024, "B": 1}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * factor)
            except ValueError:
                break
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size '{text}' (expected e.g. 2GB, 512MB)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesolite", description=__doc__)
    parser.add_argument("--log_level", default=os.environ.get("MESOLITE_LOG_LEVEL", "info"))
    sub = parser.add_subparsers(dest="command", required=True)

    master = sub.add_parser("master", help="run a Mesos master")
    master.add_argument("--ip", default="127.0.0.1")
    master.add_argument("--port", type=int, default=5050)
    master.add_argument("--hostname")
    master.add_argument("--work_dir", required=True)
    master.add_argument("--cluster")
    master.add_argument("--zk", help="zk://host:port[,host:port...]/path: elect a leader among masters")
    master.add_argument("--zk_session_timeout", type=parse_duration, default=10.0)
    master.add_argument(
        "--quorum", type=int, default=1, help="accepted for compatibility; the registry lives in ZooKeeper"
    )
    master.add_argument("--allocation_interval", type=parse_duration, default=1.0)
    master.add_argument(
        "--offer_timeout",
        type=_optional_duration,
        default=60.0,
        help="rescind offers held longer than this (default 60secs; 'none' disables)",
    )
    master.add_argument("--agent_ping_timeout", type=parse_duration, default=15.0)
    master.add_argument("--max_agent_ping_timeouts", type=int, default=5)
    master.add_argument("--agent_reregister_timeout", type=parse_duration, default=600.0)
    master.add_argument("--heartbeat_interval", type=parse_duration, default=15.0, help=argparse.SUPPRESS)
    master.add_argument("--weights", type=_weights_arg, default={})
    master.add_argument("--threads", type=int, default=128, help="HTTP threads (each subscribed scheduler holds one)")

    agent = sub.add_parser("agent", help="run a Mesos agent")
    agent.add_argument("--master", required=True, help="HOST:PORT of the master")
    agent.add_argument("--ip", default="127.0.0.1")
    agent.add_argument("--port", type=int, default=5051)
    agent.add_argument("--hostname")
    agent.add_argument("--work_dir", required=True)
    agent.add_argument("--resources", type=_resources_arg, default=Resources())
    agent.add_argument("--attributes", type=_attributes_arg, default=Attributes())
    agent.add_argument("--switch_user", type=lambda v: v.lower() in ("1", "true", "yes"), default=True)
    agent.add_argument("--threads", type=int, default=64, help="HTTP threads (each subscribed executor holds one)")
    _agent_isolation_flags(agent)

    chronos = sub.add_parser("chronos", help="run Chronos (ISO 8601 and dependency jobs) as a framework")
    chronos.add_argument("--master", required=True, help="HOST:PORT of the master, or zk://hosts/mesos")
    chronos.add_argument("--http_port", type=int, default=4400)
    chronos.add_argument("--http_address", default="127.0.0.1")
    chronos.add_argument("--hostname", help="advertised host (/leader, framework hostname)")
    chronos.add_argument("--work_dir", help="where jobs, runs and history are kept (without --zk)")
    chronos.add_argument("--zk", help="zk://host:port[,host:port...]/path: elect a leader, keep state in ZooKeeper")
    chronos.add_argument("--zk_hosts", help="Chronos' form of --zk: host:port[,host:port...] (with --zk_path)")
    chronos.add_argument("--zk_path", default="/chronos/state", help="with --zk_hosts")
    chronos.add_argument("--zk_timeout", type=float, default=10000.0, help="ZooKeeper session timeout, ms")
    chronos.add_argument("--user", default="root", help="default runAsUser of jobs")
    chronos.add_argument("--mesos_framework_name", default="chronos")
    chronos.add_argument("--mesos_role", default="*")
    chronos.add_argument("--mesos_checkpoint", type=lambda v: v.lower() in ("1", "true", "yes"), default=True)
    chronos.add_argument("--failover_timeout", type=float, default=604800.0, help="seconds")
    chronos.add_argument("--mesos_task_cpu", type=float, default=0.1)
    chronos.add_argument("--mesos_task_mem", type=float, default=128.0)
    chronos.add_argument("--mesos_task_disk", type=float, default=256.0)
    chronos.add_argument("--failure_retry", type=float, default=60000.0, help="ms between retries of a failed run")
    chronos.add_argument("--disable_after_failures", type=int, default=0)
    chronos.add_argument("--task_epsilon", type=int, default=60, help="default epsilon of jobs, seconds")
    chronos.add_argument("--reconciliation_interval", type=float, default=600.0, help="seconds")
    chronos.add_argument("--decline_offer_duration", type=float, help="ms to decline unused offers for")
    chronos.add_argument("--job_history_limit", type=int, default=5)
    chronos.add_argument("--webui_url")
    chronos.add_argument("--threads", type=int, default=16)

    dns = sub.add_parser("dns", help="run Mesos-DNS (DNS and HTTP discovery of tasks) from a Mesos-DNS config.json")
    dns.add_argument("--config", "-config", default="config.json", help="path to the Mesos-DNS config.json")
    dns.add_argument("--dns-port", "--dns_port", type=int, help="DNS port (UDP and TCP), overriding the config's port")
    dns.add_argument("--workers", type=int, help="DNS worker processes sharing the port (default: one per core)")
    dns.add_argument(
        "--watch-interval",
        "--watch_interval",
        type=float,
        default=0.5,
        help="seconds between /master/state-summary change checks (0: only poll every refreshSeconds, as upstream)",
    )

    marathon = sub.add_parser("marathon", help="run Marathon (long-running apps over the v2 REST API)")
    marathon.add_argument("--master", required=True, help="HOST:PORT of the master, or zk://HOSTS/mesos")
    marathon.add_argument("--http_port", type=int, default=8080)
    marathon.add_argument("--http_address", default="127.0.0.1")
    marathon.add_argument("--hostname", help="advertised host (/v2/leader, framework hostname)")
    marathon.add_argument("--work_dir", help="where apps, groups, deployments and tasks are kept (without --zk)")
    marathon.add_argument("--framework_name", default="marathon")
    marathon.add_argument("--mesos_user", default=None, help="user tasks run as (default: the current user)")
    marathon.add_argument("--mesos_role", default="*")
    marathon.add_argument("--failover_timeout", type=float, default=604800.0, help="seconds")
    marathon.add_argument("--local_port_min", type=int, default=10000)
    marathon.add_argument("--local_port_max", type=int, default=20000)
    marathon.add_argument("--max_instances_per_offer", type=int, default=5)
    marathon.add_argument("--decline_offer_duration", type=float, default=120000.0, help="ms")
    marathon.add_argument("--task_launch_timeout", type=float, default=300000.0, help="ms")
    marathon.add_argument("--reconciliation_interval", type=float, default=600000.0, help="ms")
    marathon.add_argument("--event_subscriber", choices=["http_callback"], help="enable /v2/eventSubscriptions")
    marathon.add_argument("--max_running_deployments", type=int, default=100)
    marathon.add_argument("--webui_url")
    marathon.add_argument("--zk", help="zk://HOSTS/marathon: elect a leader among instances, keep state there")
    marathon.add_argument("--zk_session_timeout", type=float, default=10000.0, help="ms")
    marathon.add_argument("--zk_timeout", type=float, default=10000.0, help="ms to connect to ZooKeeper")
    marathon.add_argument("--leader_proxy_connection_timeout", type=float, default=5000.0, help="ms")
    marathon.add_argument("--leader_proxy_read_timeout", type=float, default=10000.0, help="ms")
    marathon.add_argument("--threads", type=int, default=64, help="HTTP threads (each /v2/events stream holds one)")

    _haproxy_bridge_parser(sub)
    zdd_config.add_parser(sub)

    up = sub.add_parser("up", help="run the local demo cluster")
    up.add_argument("--work_dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "mesolite-demo"))
    up.add_argument("--ip", default="127.0.0.1")
    up.add_argument("--agents", type=int, default=2)
    up.add_argument("--dns-port", dest="dns_port", type=int, default=8053, help="Mesos-DNS port (UDP and TCP)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "master":
        return run_master(args)
    if args.command == "agent":
        return run_agent(args)
    if args.command == "chronos":
        return run_chronos(args)
    if args.command == "dns":
        return run_dns(args)
    if args.command == "marathon":
        return run_marathon(args)
    if args.command == "haproxy-bridge":
        return run_haproxy_bridge(args)
    if args.command == "zdd":
        return zdd_config.run(args)
    return run_demo(args)


def run_master(args: argparse.Namespace) -> int:
    from mesolite.core.server import serve
    from mesolite.master.api import create_app
    from mesolite.master.state import MasterConfig

    config = MasterConfig(
        ip=args.ip,
        port=args.port,
        hostname=args.hostname,
        work_dir=args.work_dir,
        allocation_interval=args.allocation_interval,
        offer_timeout=args.offer_timeout,
        agent_ping_timeout=args.agent_ping_timeout,
        max_agent_ping_timeouts=args.max_agent_ping_timeouts,
        agent_reregister_timeout=args.agent_reregister_timeout,
        heartbeat_interval=args.heartbeat_interval,
        weights=args.weights,
        cluster=args.cluster,
        zk=args.zk,
        quorum=args.quorum,
        zk_session_timeout=args.zk_session_timeout,
    )
    serve(lambda: create_app(config), args.ip, args.port, threads=args.threads, log_level=args.log_level)
    return 0


def run_agent(args: argparse.Namespace) -> int:
    from mesolite.agent.api import create_app
    from mesolite.agent.state import AgentConfig, detect_resources
    from mesolite.core.server import serve

    config = AgentConfig(
        master=args.master,
        ip=args.ip,
        port=args.port,
        hostname=args.hostname,
        work_dir=args.work_dir,
        resources=detect_resources(args.resources, args.work_dir),
        attributes=args.attributes,
        switch_user=args.switch_user,
        isolation=args.isolation,
        cgroups_root=args.cgroups_root,
        cgroups_enable_cfs=args.cgroups_enable_cfs,
        containerizers=tuple(c.strip() for c in args.containerizers.split(",") if c.strip()),
        docker_socket=args.docker_socket,
        recover=args.recover,
        executor_registration_timeout=args.executor_registration_timeout,
        executor_reregistration_timeout=min(args.executor_reregistration_timeout, 15.0),
        executor_shutdown_grace_period=args.executor_shutdown_grace_period,
        fetcher_cache_dir=args.fetcher_cache_dir,
        fetcher_cache_size=args.fetcher_cache_size,
        gc_delay=args.gc_delay,
        gc_disk_headroom=args.gc_disk_headroom,
        disk_watch_interval=args.disk_watch_interval,
    )
    if args.recover == "cleanup":
        # Mesos: kill every executor the previous agent left, then exit (before an incompatible upgrade).
        from mesolite.agent.checkpoint import destroy_containers

        killed = destroy_containers(args.work_dir)
        logging.getLogger("mesolite.agent").info("--recover=cleanup: destroyed %d containers", killed)
        return 0
    serve(lambda: create_app(config), args.ip, args.port, threads=args.threads, log_level=args.log_level)
    return 0


def run_chronos(args: argparse.Namespace) -> int:
    from mesolite.chronos.api import create_app
    from mesolite.chronos.config import ChronosConfig, zk_url
    from mesolite.core.server import serve

    zk = zk_url(args.zk, args.zk_hosts, args.zk_path)
    if not zk and not args.work_dir:
        print("mesolite chronos: --work_dir is needed unless the state is in ZooKeeper (--zk)", file=sys.stderr)
        return 2
    config = ChronosConfig(
        master=args.master,
        work_dir=args.work_dir or "",
        http_address=args.http_address,
        http_port=args.http_port,
        hostname=args.hostname,
        user=args.user,
        mesos_framework_name=args.mesos_framework_name,
        mesos_role=args.mesos_role,
        mesos_checkpoint=args.mesos_checkpoint,
        failover_timeout=args.failover_timeout,
        mesos_task_cpu=args.mesos_task_cpu,
        mesos_task_mem=args.mesos_task_mem,
        mesos_task_disk=args.mesos_task_disk,
        failure_retry_ms=args.failure_retry,
        disable_after_failures=args.disable_after_failures,
        task_epsilon=args.task_epsilon,
        reconciliation_interval=args.reconciliation_interval,
        decline_offer_duration_ms=args.decline_offer_duration,
        job_history_limit=args.job_history_limit,
        webui_url=args.webui_url,
        zk=zk,
        zk_timeout_ms=args.zk_timeout,
    )
    serve(lambda: create_app(config), args.http_address, args.http_port, threads=args.threads, log_level=args.log_level)
    return 0


def run_dns(args: argparse.Namespace) -> int:
    from mesolite.dns.api import run
    from mesolite.dns.config import ConfigError, load_config
    from mesolite.dns.state import default_workers

    try:
        config = load_config(args.config)
        if args.dns_port is not None:
            if not 0 < args.dns_port <= 65535:
                raise ConfigError(f"--dns-port: {args.dns_port} is not a port (1-65535)")
            config.Port = args.dns_port
    except ConfigError as exc:
        print(f"mesolite dns: {exc}", file=sys.stderr)
        return 1
    config.workers = default_workers() if args.workers is None else args.workers
    config.watch_interval = args.watch_interval
    return run(config, log_level=args.log_level)


def run_marathon(args: argparse.Namespace) -> int:
    import getpass

    from mesolite.core.server import serve
    from mesolite.marathon.api import create_app
    from mesolite.marathon.service import MarathonConfig

    if not args.zk and not args.work_dir:
        print("mesolite marathon: --work_dir is required without --zk", file=sys.stderr)
        return 2
    config = MarathonConfig(
        master=args.master,
        work_dir=args.work_dir or "",
        http_port=args.http_port,
        hostname=args.hostname or args.http_address,
        http_address=args.http_address,
        framework_name=args.framework_name,
        mesos_user=args.mesos_user or getpass.getuser(),
        mesos_role=args.mesos_role,
        failover_timeout=args.failover_timeout,
        local_port_min=args.local_port_min,
        local_port_max=args.local_port_max,
        max_instances_per_offer=args.max_instances_per_offer,
        decline_offer_duration=args.decline_offer_duration / 1000.0,
        task_launch_timeout=args.task_launch_timeout / 1000.0,
        reconciliation_interval=args.reconciliation_interval / 1000.0,
        event_subscriber=args.event_subscriber,
        webui_url=args.webui_url,
        zk=args.zk,
        zk_session_timeout=args.zk_session_timeout / 1000.0,
        zk_timeout=args.zk_timeout / 1000.0,
        leader_proxy_connection_timeout=args.leader_proxy_connection_timeout / 1000.0,
        leader_proxy_read_timeout=args.leader_proxy_read_timeout / 1000.0,
        max_running_deployments=args.max_running_deployments,
    )
    serve(lambda: create_app(config), args.http_address, args.http_port, threads=args.threads, log_level=args.log_level)
    return 0


def _haproxy_bridge_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Flags of ``mesolite haproxy-bridge``: marathon-lb's names (dashes) where it has them."""
    bridge = sub.add_parser("haproxy-bridge", help="keep a real HAProxy in step with Marathon's apps (service ports)")
    bridge.add_argument(
        "--marathon", "-m", nargs="+", required=True, help="Marathon URL(s), tried in order (http://HOST:8080)"
    )
    bridge.add_argument("--work_dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "mesolite-haproxy-bridge"))
    bridge.add_argument("--haproxy-config", help="the haproxy.cfg to maintain (default <work_dir>/haproxy.cfg)")
    bridge.add_argument("--haproxy-bin", default="haproxy")
    bridge.add_argument(
        "--group", action="append", help="only apps whose HAPROXY_GROUP names this group (repeatable; default '*': all)"
    )
    bridge.add_argument(
        "--reload-command", help="reload an HAProxy run by something else (e.g. 'systemctl reload haproxy')"
    )
    bridge.add_argument("--haproxy-socket", help="the stats socket with expose-fd listeners (default per mode)")
    bridge.add_argument("--template-dir", help="jinja2 templates overriding the built-in ones, file by file")
    bridge.add_argument("--bind-address", default="*", help="address the frontends bind (default '*': all)")
    bridge.add_argument("--vhost-port", type=int, default=80, help="port of the HAPROXY_{n}_VHOST frontend (0: none)")
    bridge.add_argument("--stats-port", type=int, default=9090, help="HAProxy's stats page (0: none)")
    bridge.add_argument(
        "--ssl-certs",
        help="comma list of PEM files (certificate + key) or directories of them for the HTTPS vhost frontend; "
        "the first is served to clients without SNI",
    )
    bridge.add_argument("--https-port", type=int, default=443, help="port of the HTTPS vhost frontend (0: none)")
    bridge.add_argument("--stats-address", help="address of the stats page (default: --bind-address)")
    bridge.add_argument("--http_address", default="127.0.0.1", help="address of the bridge's /health and /metrics")
    bridge.add_argument("--http_port", type=int, default=9091, help="port of the bridge's /health and /metrics")
    bridge.add_argument(
        "--source", choices=["apps", "tasks"], default="apps", help="tasks: the legacy /v2/tasks text/plain list"
    )
    bridge.add_argument("--sse", action=argparse.BooleanOptionalAction, default=True, help="follow /v2/events")
    bridge.add_argument("--strict-mode", action="store_true", help="only ports with HAPROXY_{n}_ENABLED=true")
    bridge.add_argument(
        "--resync-interval", type=parse_duration, help="full re-read period (default 5mins, 1mins with --no-sse)"
    )
    bridge.add_argument("--min-reload-interval", type=parse_duration, default=0.5)
    bridge.add_argument("--reload-timeout", type=parse_duration, default=30.0)
    bridge.add_argument("--hard-stop-after", default="5m", help="how long old workers may serve old connections")
    bridge.add_argument("--max-backoff", type=parse_duration, default=30.0)
    bridge.add_argument("--haproxy-log", help="HAProxy's log target: /dev/log, stderr (<work_dir>/haproxy.log), ...")
    bridge.add_argument("--threads", type=int, default=8)


def run_haproxy_bridge(args: argparse.Namespace) -> int:
    from mesolite.core.server import serve
    from mesolite.haproxy_bridge.api import create_app
    from mesolite.haproxy_bridge.config import BridgeConfig

    marathons = [url for value in args.marathon for url in value.split(",") if url]
    config = BridgeConfig(
        marathon=marathons,
        work_dir=args.work_dir,
        haproxy_config=args.haproxy_config,
        haproxy_bin=args.haproxy_bin,
        groups=[g.strip() for value in args.group or ["*"] for g in value.split(",") if g.strip()],
        reload_command=args.reload_command,
        haproxy_socket=args.haproxy_socket,
        template_dir=args.template_dir,
        bind_address=args.bind_address,
        vhost_port=args.vhost_port,
        https_port=args.https_port,
        ssl_certs=_ssl_certs(args.ssl_certs),
        stats_port=args.stats_port,
        stats_address=args.stats_address,
        http_address=args.http_address,
        api_port=args.http_port,
        source=args.source,
        sse=args.sse,
        strict_mode=args.strict_mode,
        resync_interval=args.resync_interval or (300.0 if args.sse else 60.0),
        min_reload_interval=args.min_reload_interval,
        reload_timeout=args.reload_timeout,
        hard_stop_after=args.hard_stop_after,
        max_backoff=args.max_backoff,
        haproxy_log=args.haproxy_log,
    )
    os.makedirs(config.work_dir, exist_ok=True)
    serve(lambda: create_app(config), args.http_address, args.http_port, threads=args.threads, log_level=args.log_level)
    return 0


def _ssl_certs(value: str | None) -> list[str]:
    """``--ssl-certs``: each a readable PEM file or a directory of them (HAProxy's ``crt`` takes both)."""
    certs = [os.path.abspath(p.strip()) for p in (value or "").split(",") if p.strip()]
    for path in certs:
        if not os.access(path, os.R_OK):
            raise SystemExit(f"--ssl-certs: cannot read {path}")
    return certs


def run_demo(args: argparse.Namespace) -> int:
    """Every service that exists, on its standard port, as child processes; Ctrl-C stops them all."""
    ip = args.ip
    base = [sys.executable, "-m", "mesolite.cli", "--log_level", "warning"]
    specs: list[tuple[str, list[str], str]] = [
        (
            "master",
            ["master", "--ip", ip, "--port", "5050", "--work_dir", f"{args.work_dir}/master"],
            f"http://{ip}:5050",
        ),
    ]
    for n in range(args.agents):
        port = 5051 + n
        specs.append(
            (
                f"agent{n + 1}",
                [
                    "agent",
                    "--master",
                    f"{ip}:5050",
                    "--ip",
                    ip,
                    "--port",
                    str(port),
                    "--work_dir",
                    f"{args.work_dir}/agent{n + 1}",
                    "--attributes",
                    f"rack_id:{n + 1}",
                ],
                f"http://{ip}:{port}",
            )
        )
    marathon_args = ["--master", f"{ip}:5050", "--http_address", ip, "--http_port", "8080"]
    specs.append(
        ("marathon", ["marathon", *marathon_args, "--work_dir", f"{args.work_dir}/marathon"], f"http://{ip}:8080")
    )
    chronos_args = ["--master", f"{ip}:5050", "--http_address", ip, "--http_port", "4400"]
    specs.append(("chronos", ["chronos", *chronos_args, "--work_dir", f"{args.work_dir}/chronos"], f"http://{ip}:4400"))
    from mesolite.dns.config import write_demo_config

    dns_port = args.dns_port
    dns_config = write_demo_config(f"{args.work_dir}/dns", ip, master=f"{ip}:5050", dns_port=dns_port, http_port=8123)
    specs.append(("dns", ["dns", "--config", dns_config], f"http://{ip}:8123 (DNS on {ip}:{dns_port}, udp and tcp)"))
    if shutil.which("haproxy"):
        bridge_args = ["--marathon", f"http://{ip}:8080", "--bind-address", ip, "--http_address", ip]
        specs.append(
            (
                "haproxy",
                ["haproxy-bridge", *bridge_args, "--work_dir", f"{args.work_dir}/haproxy-bridge"],
                f"http://{ip}:9091 (HAProxy: service ports, vhosts on {ip}:80, stats on {ip}:9090)",
            )
        )
    children: list[subprocess.Popen[bytes]] = []
    try:
        for name, command, url in specs:
            children.append(subprocess.Popen(base + command))
            print(f"{name:<8} {url}", flush=True)
        print("mesolite demo running; Ctrl-C stops it.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a service exited; stopping the demo", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
