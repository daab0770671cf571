"""Several service objects run as one: what ``app.extensions[SERVICE_KEY]`` holds when an app owns more than one
background loop (e.g. a master plus its web UI's sampler), since the runner starts and stops exactly one object."""

from __future__ import annotations

import logging

from mesolite.core.server import Service

log = logging.getLogger(__name__)


class ServiceGroup:
    def __init__(self, *services: Service) -> None:
        self.services = list(services)

    def start(self) -> None:
        for service in self.services:
            service.start()

    def stop(self) -> None:
        """Reverse order, and every member is asked even if an earlier one fails: nothing must be left running."""
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:  # keep stopping the others, report the failure
                log.exception("error stopping %r", service)
