"""``mesolite marathon`` settings: Marathon's own flags, with its names and units (milliseconds where Marathon takes
milliseconds), so an operator's command line carries over; the config holds seconds."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import dataclass, field

from mesolite.core.flags import FlagError, parse_master, parse_zk_url_flag


@dataclass
class MarathonConfig:
    master: str
    work_dir: str
    http_port: int = 8080
    hostname: str = "127.0.0.1"
    http_address: str = "127.0.0.1"
    framework_name: str = "marathon"
    mesos_user: str = "root"
    mesos_role: str = "*"
    failover_timeout: float = 604800.0
    local_port_min: int = 10000
    local_port_max: int = 20000
    max_instances_per_offer: int = 5
    decline_offer_duration: float = 120.0
    task_launch_timeout: float = 300.0
    reconciliation_interval: float = 600.0
    event_subscriber: str | None = None
    webui_url: str | None = None
    zk: str | None = None
    zk_session_timeout: float = 10.0
    zk_timeout: float = 10.0
    leader_proxy_connection_timeout: float = 5.0
    leader_proxy_read_timeout: float = 10.0
    max_running_deployments: int = 100
    features: frozenset[str] = field(default_factory=frozenset)


# ``--enable_features``: the ones mesolite implements (Marathon knows more; naming one of those is refused rather
# than accepted and ignored).
FEATURES = ("secrets",)


def parse_features(text: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(names - set(FEATURES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown or unsupported feature '{unknown[0]}' (supported: secrets)")
    return names


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    marathon = subparsers.add_parser("marathon", help="run Marathon (long-running apps over the v2 REST API)")
    marathon.add_argument(
        "--master", type=parse_master, required=True, help="HOST:PORT of the master, or zk://HOSTS/mesos"
    )
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
    marathon.add_argument(
        "--zk", type=parse_zk_url_flag, help="zk://HOSTS/marathon: elect a leader among instances, keep state there"
    )
    marathon.add_argument("--zk_session_timeout", type=float, default=10000.0, help="ms")
    marathon.add_argument("--zk_timeout", type=float, default=10000.0, help="ms to connect to ZooKeeper")
    marathon.add_argument("--leader_proxy_connection_timeout", type=float, default=5000.0, help="ms")
    marathon.add_argument("--leader_proxy_read_timeout", type=float, default=10000.0, help="ms")
    marathon.add_argument(
        "--enable_features", type=parse_features, default=frozenset(), help="secrets (tasks' secrets by reference)"
    )
    marathon.add_argument("--threads", type=int, default=64, help="HTTP threads (each /v2/events stream holds one)")
    return marathon


def from_args(args: argparse.Namespace) -> MarathonConfig:
    if not args.zk and not args.work_dir:
        raise FlagError("--work_dir is required without --zk")
    if args.local_port_min > args.local_port_max:
        raise FlagError(f"--local_port_min {args.local_port_min} is above --local_port_max {args.local_port_max}")
    return MarathonConfig(
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
        features=args.enable_features,
    )
