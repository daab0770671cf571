"""Run a service's Flask app under gunicorn through gunicorn's application API.

One worker with threads: every service holds its state in memory and owns background loops, so several workers
would mean several diverging copies, and ``--preload`` would leave the loops in the arbiter (threads do not survive
``fork``). The app is therefore built inside the worker, its service started there, and stopped on worker exit.
The CLI, the tests and the systemd units all run exactly this.

Signals (sent to the arbiter, the main process; gunicorn forwards them to the worker):

- SIGTERM, SIGINT, SIGQUIT: the service stops (``Service.stop``) and the process exits. For the agent that ends the
  agent process only: checkpointed tasks keep running for the next agent to recover, as in Mesos.
- SIGUSR1: gunicorn reopens its log files, in the arbiter and in the worker. A service that also has a
  ``shutdown()`` (the agent) reads it as Mesos' agent does: the worker runs ``shutdown()`` (the agent kills its
  tasks, tells the master it leaves and stops), then asks the arbiter to stop (SIGTERM to its parent), and the
  process exits. ``kill -USR1 <main pid>`` (``systemctl kill --kill-who=main -s USR1``) is therefore how an operator
  takes an agent and its tasks down; both the arbiter's forwarded signal and one sent to the worker directly lead
  to the same single shutdown. Whichever of a stop and a shutdown begins first is the one that happens.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask
from gunicorn.app.base import BaseApplication


class Service(Protocol):
    """What a service object exposes to the runner: its loops start in the worker and stop with it. A service may
    also have ``shutdown()``, a second way to end on SIGUSR1 that takes down what it runs before it stops."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


SERVICE_KEY = "mesolite.service"
STOPPER_KEY = "mesolite.service-stopper"
# How long a service may take to stop (an agent destroying non-checkpointed containers waits up to 5 s for them).
STOP_TIMEOUT = 12


class ServiceApplication(BaseApplication):
    def __init__(self, factory: Callable[[], Flask], bind: str, threads: int = 32, log_level: str = "info") -> None:
        self._factory = factory
        self._options: dict[str, Any] = {
            "bind": bind,
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            # Room for the service to stop (see _Stopper); its stop ends the long-lived streams (scheduler
            # subscriptions, event streams) that a graceful stop would otherwise wait for.
            "graceful_timeout": STOP_TIMEOUT + 3,
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
            app.extensions[STOPPER_KEY] = _Stopper(service)
        return app


class _Stopper:
    """Stops the service once, starting the moment the worker is told to go.

    gunicorn calls ``worker_exit`` only after its graceful period, and its arbiter kills the worker when that
    period ends, so a service whose stop takes a while (an agent destroying containers) would be killed half way.
    Stopping starts instead in the worker's own SIGTERM/SIGINT/SIGQUIT handlers (chained before gunicorn's), in a
    thread, and ``worker_exit`` waits for it; stopping the service also ends its long-lived streams, which lets the
    worker finish its requests sooner.

    A service with ``shutdown()`` also gets SIGUSR1 (chained after gunicorn's log reopening): the shutdown runs in
    the same thread slot, without any graceful period to fit in (the arbiter is not stopping yet), and then asks
    the arbiter to stop the process."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._thread: threading.Thread | None = None
        self._arbiter = os.getppid()  # built in the worker, whose parent is the arbiter
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            previous = signal.getsignal(sig)
            signal.signal(sig, self._handler(previous, self.begin))
        shutdown = getattr(service, "shutdown", None)
        self._shutdown_service: Callable[[], None] | None = shutdown if callable(shutdown) else None
        if self._shutdown_service is not None:
            previous = signal.getsignal(signal.SIGUSR1)
            signal.signal(signal.SIGUSR1, self._handler(previous, self.begin_shutdown, after=True))

    @staticmethod
    def _handler(previous: Any, begin: Callable[[], None], after: bool = False) -> Callable[[int, Any], None]:
        def handle(signum: int, frame: Any) -> None:
            if not after:
                begin()
            if callable(previous):
                previous(signum, frame)
            if after:
                begin()

        return handle

    def begin(self) -> None:
        # Only the main thread gets here (signal handlers, worker_exit), but a second signal can interrupt the
        # first handler: claim the stop before starting it, and take no lock a re-entered handler would wait on.
        if self._thread is None:
            self._thread = threading.Thread(target=self._stop, name="service-stop")
            self._thread.start()

    def begin_shutdown(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._shutdown, name="service-shutdown")
            self._thread.start()

    def _stop(self) -> None:
        try:
            self._service.stop()
        except Exception:  # shutting down: report, never mask the exit
            logging.getLogger(__name__).exception("error stopping service")

    def _shutdown(self) -> None:
        assert self._shutdown_service is not None
        try:
            self._shutdown_service()
        except Exception:  # whatever happened, the process must still end
            logging.getLogger(__name__).exception("error shutting the service down")
            self._stop()
        # The worker cannot end the process alone (the arbiter would start a new worker): ask the arbiter, unless
        # it is gone already (never signal whoever adopted us).
        os.kill(self._arbiter if os.getppid() == self._arbiter else os.getpid(), signal.SIGTERM)

    def finish(self, timeout: float) -> None:
        self.begin()
        assert self._thread is not None
        self._thread.join(timeout)


def _stop_service(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    stopper = getattr(app, "extensions", {}).get(STOPPER_KEY) if app is not None else None
    if stopper is not None:
        stopper.finish(timeout=STOP_TIMEOUT)


def serve(factory: Callable[[], Flask], host: str, port: int, threads: int = 32, log_level: str = "info") -> None:
    ServiceApplication(factory, f"{host}:{port}", threads=threads, log_level=log_level).run()
