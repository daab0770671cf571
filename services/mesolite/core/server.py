"""Run a service's Flask app under gunicorn through gunicorn's application API.

One worker with threads: every service holds its state in memory and owns background loops, so several workers
would mean several diverging copies, and ``--preload`` would leave the loops in the arbiter (threads do not survive
``fork``). The app is therefore built inside the worker, its service started there, and stopped on worker exit.
The CLI, the tests and the systemd units all run exactly this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask
from gunicorn.app.base import BaseApplication


class Service(Protocol):
    """What a service object exposes to the runner: its loops start in the worker and stop with it."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


SERVICE_KEY = "mesolite.service"


class ServiceApplication(BaseApplication):
    def __init__(self, factory: Callable[[], Flask], bind: str, threads: int = 32, log_level: str = "info") -> None:
        self._factory = factory
        self._options: dict[str, Any] = {
            "bind": bind,
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            # Scheduler subscriptions are long-lived streams: the gthread worker's heartbeat is independent of them,
            # but a graceful stop would otherwise wait for every stream to end.
            "graceful_timeout": 3,
            "timeout": 60,
            "keepalive": 75,
            "loglevel": log_level,
            "errorlog": "-",
            "accesslog": None,
            "worker_exit": _stop_service,
            # gunicorn >= 24 opens one control socket per user by default: several services on a host would fight
            # over it, and nothing here uses it.
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        app = self._factory()
        service = app.extensions.get(SERVICE_KEY)
        if service is not None:
            service.start()
        return app


def _stop_service(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    service = getattr(app, "extensions", {}).get(SERVICE_KEY) if app is not None else None
    if service is not None:
        try:
            service.stop()
        except Exception:  # noqa: BLE001 - shutting down: report, never mask the exit
            logging.getLogger(__name__).exception("error stopping service")


def serve(factory: Callable[[], Flask], host: str, port: int, threads: int = 32, log_level: str = "info") -> None:
    ServiceApplication(factory, f"{host}:{port}", threads=threads, log_level=log_level).run()
