"""``mesolite master`` settings: the flags of ``mesos-master``, with Mesos' names, forms and defaults, so an
operator's command line (or a systemd unit written for Mesos) carries over."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from mesolite.core.flags import optional_duration, parse_duration, parse_weights, parse_zk_url_flag
from mesolite.master import allocator


@dataclass
class MasterConfig:
    ip: str = "127.0.0.1"
    port: int = 5050
    hostname: str | None = None
    work_dir: str = "/var/lib/mesolite/master"
    allocation_interval: float = 1.0
    offer_timeout: float | None = 60.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    agent_reregister_timeout: float = 600.0
    heartbeat_interval: float = 15.0
    min_allocatable: tuple[dict[str, float], ...] = allocator.DEFAULT_MIN_ALLOCATABLE
    weights: dict[str, float] = field(default_factory=dict)
    cluster: str | None = None
    zk: str | None = None
    quorum: int = 1
    zk_session_timeout: float = 10.0
    max_operator_event_stream_subscribers: int = 1000

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.ip


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    master = subparsers.add_parser("master", help="run a Mesos master")
    master.add_argument("--ip", default="127.0.0.1")
    master.add_argument("--port", type=int, default=5050)
    master.add_argument("--hostname")
    master.add_argument("--work_dir", required=True)
    master.add_argument("--cluster")
    master.add_argument(
        "--zk", type=parse_zk_url_flag, help="zk://host:port[,host:port...]/path: elect a leader among masters"
    )
    master.add_argument("--zk_session_timeout", type=parse_duration, default=10.0)
    master.add_argument(
        "--quorum", type=int, default=1, help="accepted for compatibility; the registry lives in ZooKeeper"
    )
    master.add_argument("--allocation_interval", type=parse_duration, default=1.0)
    master.add_argument(
        "--offer_timeout",
        type=optional_duration,
        default=60.0,
        help="rescind offers held longer than this (default 60secs; 'none' disables)",
    )
    master.add_argument("--agent_ping_timeout", type=parse_duration, default=15.0)
    master.add_argument("--max_agent_ping_timeouts", type=int, default=5)
    master.add_argument("--agent_reregister_timeout", type=parse_duration, default=600.0)
    master.add_argument("--heartbeat_interval", type=parse_duration, default=15.0, help=argparse.SUPPRESS)
    master.add_argument("--weights", type=parse_weights, default={}, help="role=weight[,role=weight...]")
    master.add_argument(
        "--max_operator_event_stream_subscribers",
        type=int,
        default=1000,
        help="operator API SUBSCRIBE streams kept at most; past it the oldest is closed",
    )
    master.add_argument("--threads", type=int, default=128, help="HTTP threads (each subscribed scheduler holds one)")
    return master


def from_args(args: argparse.Namespace) -> MasterConfig:
    return MasterConfig(
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
        weights=dict(args.weights),
        cluster=args.cluster,
        zk=args.zk,
        quorum=args.quorum,
        zk_session_timeout=args.zk_session_timeout,
        max_operator_event_stream_subscribers=args.max_operator_event_stream_subscribers,
    )
