"""The master's background loops: allocation and timeouts, each a thread that starts and stops with the master."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Loop:
    """Runs ``step`` every ``interval`` seconds, and early after ``wake()``.

    ``settle`` delays a woken step a little so that the events that woke it (a framework and several agents
    arriving together) are handled in one step rather than one each. A failing step is logged and the loop goes
    on: one bad cycle must not stop allocation or timeouts for good.
    """

    def __init__(self, name: str, step: Callable[[], object], interval: float, settle: float = 0.0) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._settle = settle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"master-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            if self._settle:
                time.sleep(self._settle)
            try:
                self._step()
            except Exception:  # the loop must survive any bug in one step
                log.exception("master %s step failed", self.name)
