"""What HAProxy routes, as the bridge's API shows it: ``/routing`` (JSON) and marathon-lb's two map files
(``/_haproxy_getvhostmap``, ``/_haproxy_getappmap``), rendered from the routing HAProxy runs now."""

from __future__ import annotations

from typing import Any

from mesolite.haproxy_bridge.routing import Routing


def routing_json(routing: Routing) -> list[dict[str, Any]]:
    return [
        {
            "appId": s.app_id,
            "portIndex": s.index,
            "servicePort": s.port,
            "backend": s.backend,
            "mode": s.mode,
            "balance": s.balance,
            "vhosts": list(s.vhosts),
            "servers": [
                {"host": v.host, "address": v.address, "port": v.port, "taskId": v.task_id, "draining": v.draining}
                for v in s.servers
            ],
        }
        for s in routing.services
    ]


def vhost_map(routing: Routing) -> str:
    """marathon-lb's ``domain2backend.map``: ``<vhost> <backend>`` per line."""
    return "".join(f"{host} {s.backend}\n" for s in routing.vhost_services for host in s.vhosts)


def app_map(routing: Routing) -> str:
    """marathon-lb's ``app2backend.map``: ``<app id> <backend>`` per HTTP-mode service port."""
    return "".join(f"{s.app_id} {s.backend}\n" for s in routing.services if s.mode == "http")
