"""``mesolite chronos`` settings, named after Chronos' own flags so operators' command lines carry over."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass
from typing import Any

from mesolite.chronos.jobs import JobDefaults
from mesolite.chronos.notifier import Channel, HttpChannel, MailChannel, Notifier, SlackChannel, parse_mail_server
from mesolite.chronos.scheduler import FrameworkConfig
from mesolite.chronos.state import StateConfig
from mesolite.core.flags import FlagError, parse_bool, parse_master, parse_zk_url_flag
from mesolite.core.zk import parse_zk_url


def zk_url(zk: str | None, zk_hosts: str | None = None, zk_path: str = "/chronos/state") -> str | None:
    """``--zk`` as given, or built from Chronos' own ``--zk_hosts`` and ``--zk_path`` (so upstream command lines keep
    their layout: ``<zk_path>/candidate``, ``<zk_path>/state``); None without ZooKeeper."""
    if zk:
        return zk
    return f"zk://{zk_hosts}/{zk_path.strip('/')}" if zk_hosts else None


@dataclass(frozen=True)
class ChronosConfig:
    master: str
    work_dir: str
    http_address: str = "127.0.0.1"
    http_port: int = 4400
    hostname: str | None = None
    user: str = "root"
    mesos_framework_name: str = "chronos"
    mesos_role: str = "*"
    mesos_checkpoint: bool = True
    failover_timeout: float = 604800.0
    mesos_task_cpu: float = 0.1
    mesos_task_mem: float = 128.0
    mesos_task_disk: float = 256.0
    failure_retry_ms: float = 60000.0
    disable_after_failures: int = 0
    task_epsilon: int = 60
    reconciliation_interval: float = 600.0
    decline_offer_duration_ms: float | None = None
    job_history_limit: int = 5
    webui_url: str | None = None
    zk: str | None = None  # zk://hosts/path: elect a leader among instances and keep all state in ZooKeeper
    zk_timeout_ms: float = 10000.0
    # Notifications (Chronos' flags): mail to the jobs' owners, Slack, a generic HTTP webhook.
    mail_server: str | None = None  # host:port
    mail_user: str | None = None
    mail_password: str | None = None
    mail_from: str | None = None
    mail_ssl: bool = False  # SSL on connect (no STARTTLS, as upstream)
    slack_url: str | None = None
    http_notification_url: str | None = None
    http_notification_credentials: str | None = None  # user:password, sent as Basic authentication
    cluster_name: str | None = None  # "[name]" before every notification's subject

    def notification_problem(self) -> str | None:
        """What is wrong with the notification flags: settings upstream would silently drop (no mail client without
        host:port or a sender, no login with only one of user and password) are refused at start instead."""
        if self.mail_server:
            try:
                parse_mail_server(self.mail_server)
            except ValueError as exc:
                return str(exc)
            if not self.mail_from:
                return "--mail_server needs --mail_from (the sender of the notifications)"
        elif self.mail_from or self.mail_user or self.mail_password or self.mail_ssl:
            return "--mail_from, --mail_user, --mail_password and --mail_ssl need --mail_server"
        if bool(self.mail_user) != bool(self.mail_password):
            return "--mail_user and --mail_password go together"
        if self.http_notification_credentials and ":" not in self.http_notification_credentials:
            return "--http_notification_credentials must be user:password"
        if self.http_notification_credentials and not self.http_notification_url:
            return "--http_notification_credentials needs --http_notification_url"
        return None

    @property
    def advertised_host(self) -> str:
        return self.hostname or (self.http_address if self.http_address not in ("", "0.0.0.0") else socket.getfqdn())

    @property
    def leader(self) -> str:
        """``/leader``: Chronos' latch id, ``hostname:http_port``."""
        return f"{self.advertised_host}:{self.http_port}"

    @property
    def zk_session_timeout(self) -> float:
        return self.zk_timeout_ms / 1000.0

    def leader_info(self, instance_id: str) -> dict[str, Any]:
        """What this instance publishes in its election znode: who it is and where its API answers."""
        host = self.advertised_host
        ip = self.http_address if self.http_address not in ("", "0.0.0.0") else host
        return {
            "id": instance_id,
            "leader": self.leader,
            "hostname": host,
            "port": self.http_port,
            "address": {"hostname": host, "ip": ip, "port": self.http_port},
        }

    @property
    def store_path(self) -> str:
        return os.path.join(self.work_dir, "chronos.db")

    def state_config(self) -> StateConfig:
        return StateConfig(
            defaults=JobDefaults(
                cpus=self.mesos_task_cpu,
                mem=self.mesos_task_mem,
                disk=self.mesos_task_disk,
                user=self.user,
                epsilon_seconds=self.task_epsilon,
            ),
            failure_retry=self.failure_retry_ms / 1000.0,
            disable_after_failures=self.disable_after_failures,
            history_limit=self.job_history_limit,
            cluster_name=self.cluster_name,
        )

    def notifier(self) -> Notifier:
        """A new notifier with a channel per configured destination (none: notifications are only logged)."""
        problem = self.notification_problem()
        if problem:
            raise ValueError(problem)
        channels: list[Channel] = []
        if self.mail_server and self.mail_from:
            channels.append(
                MailChannel(self.mail_server, self.mail_from, self.mail_user, self.mail_password, self.mail_ssl)
            )
        if self.slack_url:
            channels.append(SlackChannel(self.slack_url))
        if self.http_notification_url:
            channels.append(HttpChannel(self.http_notification_url, self.http_notification_credentials))
        return Notifier(channels)

    def framework_config(self) -> FrameworkConfig:
        duration = self.decline_offer_duration_ms
        return FrameworkConfig(
            master=self.master,
            name=self.mesos_framework_name,
            user=self.user,
            role=self.mesos_role,
            hostname=self.advertised_host,
            webui_url=self.webui_url or f"http://{self.leader}",
            checkpoint=self.mesos_checkpoint,
            failover_timeout=self.failover_timeout,
            reconciliation_interval=self.reconciliation_interval,
            decline_offer_duration=duration / 1000.0 if duration else None,
        )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    chronos = subparsers.add_parser("chronos", help="run Chronos (ISO 8601 and dependency jobs) as a framework")
    chronos.add_argument(
        "--master", type=parse_master, required=True, help="HOST:PORT of the master, or zk://hosts/mesos"
    )
    chronos.add_argument("--http_port", type=int, default=4400)
    chronos.add_argument("--http_address", default="127.0.0.1")
    chronos.add_argument("--hostname", help="advertised host (/leader, framework hostname)")
    chronos.add_argument("--work_dir", help="where jobs, runs and history are kept (without --zk)")
    chronos.add_argument(
        "--zk",
        type=parse_zk_url_flag,
        help="zk://host:port[,host:port...]/path: elect a leader, keep state in ZooKeeper",
    )
    chronos.add_argument("--zk_hosts", help="Chronos' form of --zk: host:port[,host:port...] (with --zk_path)")
    chronos.add_argument("--zk_path", default="/chronos/state", help="with --zk_hosts")
    chronos.add_argument("--zk_timeout", type=float, default=10000.0, help="ZooKeeper session timeout, ms")
    chronos.add_argument("--user", default="root", help="default runAsUser of jobs")
    chronos.add_argument("--mesos_framework_name", default="chronos")
    chronos.add_argument("--mesos_role", default="*")
    chronos.add_argument("--mesos_checkpoint", type=parse_bool, default=True)
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
    chronos.add_argument("--mail_server", help="host:port of the SMTP server mailing job owners")
    chronos.add_argument("--mail_user")
    chronos.add_argument("--mail_password")
    chronos.add_argument("--mail_from", help="sender of the notification mails (needed with --mail_server)")
    chronos.add_argument(
        "--mail_ssl",
        nargs="?",
        const=True,
        default=False,
        type=parse_bool,
        help="SSL on connect to --mail_server (a bare flag, as Chronos', or true/false)",
    )
    chronos.add_argument("--slack_url", help="Slack webhook URL for notifications")
    chronos.add_argument("--http_notification_url", help="URL notifications are POSTed to as JSON")
    chronos.add_argument("--http_notification_credentials", help="user:password for --http_notification_url")
    chronos.add_argument("--cluster_name", help="shown as [name] in notification subjects")
    chronos.add_argument("--threads", type=int, default=16)
    return chronos


def from_args(args: argparse.Namespace) -> ChronosConfig:
    zk = zk_url(args.zk, args.zk_hosts, args.zk_path)
    if not zk and not args.work_dir:
        raise FlagError("--work_dir is needed unless the state is in ZooKeeper (--zk)")
    if zk and not args.zk:
        try:
            parse_zk_url(zk)
        except ValueError as exc:
            raise FlagError(f"--zk_hosts/--zk_path: {exc}") from None
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
        mail_server=args.mail_server,
        mail_user=args.mail_user,
        mail_password=args.mail_password,
        mail_from=args.mail_from,
        mail_ssl=args.mail_ssl,
        slack_url=args.slack_url,
        http_notification_url=args.http_notification_url,
        http_notification_credentials=args.http_notification_credentials,
        cluster_name=args.cluster_name,
    )
    if problem := config.notification_problem():
        raise FlagError(problem)
    return config
