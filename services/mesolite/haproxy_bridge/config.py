"""The bridge's settings, named after the flags of ``mesolite haproxy-bridge`` (marathon-lb's where they exist)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# The events that change routing (marathon-lb's ``relevant_events`` plus app removal): anything else would only cost
# a resync. Ordering is not guaranteed, so every one of them triggers a full re-read rather than a patch.
RELEVANT_EVENTS = (
    "api_post_event",
    "status_update_event",
    "health_status_changed_event",
    "app_terminated_event",
    "group_change_success",
)


@dataclass
class BridgeConfig:
    marathon: list[str]
    work_dir: str
    haproxy_config: str | None = None
    haproxy_bin: str = "haproxy"
    groups: list[str] = field(default_factory=lambda: ["*"])
    reload_command: str | None = None
    haproxy_socket: str | None = None
    template_dir: str | None = None
    bind_address: str = "*"
    vhost_port: int = 80
    https_port: int = 443
    ssl_certs: list[str] = field(default_factory=list)
    stats_port: int = 9090
    stats_address: str | None = None
    http_address: str = "127.0.0.1"
    api_port: int = 9091
    source: str = "apps"
    sse: bool = True
    strict_mode: bool = False
    resync_interval: float = 300.0
    min_reload_interval: float = 0.5
    reload_timeout: float = 30.0
    hard_stop_after: str = "5m"
    haproxy_log: str | None = None
    max_backoff: float = 30.0
    marathon_timeout: float = 10.0

    @property
    def config_path(self) -> str:
        return self.haproxy_config or os.path.join(self.work_dir, "haproxy.cfg")

    @property
    def supervised(self) -> bool:
        """Without a reload command the bridge runs HAProxy itself; with one, something else (systemd) does."""
        return not self.reload_command

    @property
    def socket_path(self) -> str:
        """The admin socket HAProxy exposes its listeners on (``expose-fd listeners``) for seamless reloads."""
        if self.haproxy_socket:
            return self.haproxy_socket
        if self.supervised:
            return os.path.join(self.work_dir, "haproxy.sock")
        return "/run/haproxy/admin.sock"
