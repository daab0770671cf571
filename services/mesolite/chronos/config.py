"""``mesolite chronos`` settings, named after Chronos' own flags so operators' command lines carry over."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from mesolite.chronos.jobs import JobDefaults
from mesolite.chronos.notifier import Channel, HttpChannel, MailChannel, Notifier, SlackChannel, parse_mail_server
from mesolite.chronos.scheduler import FrameworkConfig
from mesolite.chronos.state import StateConfig


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
