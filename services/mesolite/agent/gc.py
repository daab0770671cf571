"""Sandbox garbage collection: finished executors' run directories go after ``--gc_delay``, sooner when the disk
fills up.

Mesos' rule (src/slave/slave.cpp, docs/sandbox.md): every ``--disk_watch_interval`` the allowed age of a finished
sandbox is ``gc_delay × max(0, 1 − gc_disk_headroom − disk usage)``, so a disk at 90 % used with the default headroom
collects everything finished. Sandboxes are found by walking the work dir, which also covers those a previous agent
process left behind: nothing about them has to be remembered across a restart.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class SandboxGC:
    def __init__(
        self,
        slaves_dir: str,
        live: Callable[[], set[str]],
        gc_delay: float,
        disk_headroom: float = 0.1,
        interval: float = 60.0,
    ) -> None:
        self.slaves_dir = slaves_dir
        self._live = live
        self.gc_delay = gc_delay
        self.disk_headroom = disk_headroom
        self.interval = interval
        self.removed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sandbox-gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.collect()
            except Exception:  # try again next interval
                log.exception("sandbox garbage collection failed")

    def disk_usage(self) -> float:
        try:
            stat = os.statvfs(self.slaves_dir)
        except OSError:
            return 0.0
        return 1.0 - stat.f_bavail / stat.f_blocks if stat.f_blocks else 0.0

    def max_age(self) -> float:
        return self.gc_delay * max(0.0, 1.0 - self.disk_headroom - self.disk_usage())

    def collect(self) -> int:
        """Remove finished run directories older than the allowed age; answers how many went."""
        max_age = self.max_age()
        live = {os.path.realpath(p) for p in self._live()}
        now = time.time()
        removed = 0
        for runs in self._runs_directories():
            for entry in os.listdir(runs):
                path = os.path.join(runs, entry)
                if entry == "latest" or os.path.islink(path) or not os.path.isdir(path):
                    continue
                if os.path.realpath(path) in live:
                    continue
                try:
                    age = now - os.stat(path).st_mtime
                except OSError:
                    continue
                if age >= max_age:
                    shutil.rmtree(path, ignore_errors=True)
                    removed += 1
            self._prune(runs)
        self.removed += removed
        if removed:
            log.info("garbage collected %d sandboxes (max age %.0f s)", removed, max_age)
        return removed

    def _runs_directories(self) -> list[str]:
        out = []
        for agent in _subdirs(self.slaves_dir):
            for framework in _subdirs(os.path.join(agent, "frameworks")):
                for executor in _subdirs(os.path.join(framework, "executors")):
                    runs = os.path.join(executor, "runs")
                    if os.path.isdir(runs):
                        out.append(runs)
        return out

    @staticmethod
    def _prune(runs: str) -> None:
        """An executor directory whose runs are all gone goes too (with its dangling ``latest`` link)."""
        remaining = [e for e in os.listdir(runs) if e != "latest"]
        if remaining:
            return
        executor = os.path.dirname(runs)
        shutil.rmtree(executor, ignore_errors=True)


def _subdirs(path: str) -> list[str]:
    try:
        return [
            os.path.join(path, e)
            for e in os.listdir(path)
            if e != "latest" and os.path.isdir(os.path.join(path, e)) and not os.path.islink(os.path.join(path, e))
        ]
    except OSError:
        return []
