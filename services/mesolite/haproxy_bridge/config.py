"""The bridge's settings, named after the flags of ``mesolite haproxy-bridge`` (marathon-lb's where they exist)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from mesolite.core.flags import FlagError, parse_duration

DEFAULT_WORK_DIR = os.path.join(os.environ.get("TMPDIR", "/tmp"), "mesolite-haproxy-bridge")
# Full re-reads of Marathon: rare when its event stream says what changed, more often when only polling.
RESYNC_WITH_SSE = 300.0
RESYNC_WITHOUT_SSE = 60.0

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


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Flags of ``mesolite haproxy-bridge``: marathon-lb's names (dashes) where it has them."""
    bridge = subparsers.add_parser(
        "haproxy-bridge", help="keep a real HAProxy in step with Marathon's apps (service ports)"
    )
    bridge.add_argument(
        "--marathon", "-m", nargs="+", required=True, help="Marathon URL(s), tried in order (http://HOST:8080)"
    )
    bridge.add_argument("--work_dir", default=DEFAULT_WORK_DIR)
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
    return bridge


def from_args(args: argparse.Namespace) -> BridgeConfig:
    """``--marathon`` and ``--group`` take several values, space- or comma-separated, as marathon-lb's do."""
    marathons = [url for value in args.marathon for url in value.split(",") if url]
    if not marathons:
        raise FlagError("--marathon: no Marathon URL given")
    return BridgeConfig(
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
        resync_interval=args.resync_interval or (RESYNC_WITH_SSE if args.sse else RESYNC_WITHOUT_SSE),
        min_reload_interval=args.min_reload_interval,
        reload_timeout=args.reload_timeout,
        hard_stop_after=args.hard_stop_after,
        max_backoff=args.max_backoff,
        haproxy_log=args.haproxy_log,
    )


def _ssl_certs(value: str | None) -> list[str]:
    """``--ssl-certs``: each a readable PEM file or a directory of them (HAProxy's ``crt`` takes both)."""
    certs = [os.path.abspath(p.strip()) for p in (value or "").split(",") if p.strip()]
    for path in certs:
        if not os.access(path, os.R_OK):
            raise FlagError(f"--ssl-certs: cannot read {path}")
    return certs
