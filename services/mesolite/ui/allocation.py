"""The master page's allocation chart: a ring of samples over the last hour, kept in memory by the UI.

Mesos has no history endpoint (its UI only shows the present), so the samples start when this master starts (or is
elected) and are lost with it: an hour of 10-second samples is 360 small tuples. A background loop takes them so
that the chart has no holes when nobody is looking; a page view also takes one when the last is stale.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 3600.0
INTERVAL_SECONDS = 10.0


@dataclass(frozen=True)
class Sample:
    time: float
    # Fractions (0..1) of the cluster's total that tasks use, per resource.
    cpus: float
    mem: float
    disk: float


class AllocationHistory:
    def __init__(
        self,
        measure: Callable[[], Sample | None],
        interval: float = INTERVAL_SECONDS,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self._measure = measure
        self.interval = interval
        self.window = window
        self._samples: deque[Sample] = deque(maxlen=int(window / interval) + 2)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ui-allocation-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> Sample | None:
        """Take one measurement now; ``None`` (not leading, no agents) leaves no point rather than a false zero."""
        measured = self._measure()
        if measured is not None:
            with self._lock:
                self._samples.append(measured)
        return measured

    def samples(self, now: float | None = None) -> list[Sample]:
        now = time.time() if now is None else now
        with self._lock:
            stale = not self._samples or now - self._samples[-1].time >= self.interval
        if stale:
            self.sample()
        with self._lock:
            return [s for s in self._samples if now - s.time <= self.window]


def chart_series(samples: list[Sample], now: float, width: int, height: int, window: float) -> dict[str, list[str]]:
    """SVG coordinates (``"x,y"``) per resource: x is time over the window (now at the right), y the fraction used.

    Joined with spaces they are a polyline's ``points``; the last one also gets a dot, so a master that started a
    few seconds ago still shows where it stands."""
    series: dict[str, list[str]] = {"cpus": [], "mem": [], "disk": []}
    for s in samples:
        x = width * (1.0 - min(max(now - s.time, 0.0), window) / window)
        for name in series:
            fraction = min(max(getattr(s, name), 0.0), 1.0)
            series[name].append(f"{x:.1f},{height * (1.0 - fraction):.1f}")
    return series
