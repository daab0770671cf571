"""Marathon's metrics (1.7+ names): ``/metrics`` as Dropwizard JSON and ``/metrics/prometheus`` as Prometheus text.

Names are Marathon's (``docs/metrics.md``): ``marathon.<name>.<type>[.<unit>]`` — ``marathon.apps.active.gauge``,
``marathon.tasks.launched.counter``, ``marathon.http.requests.duration.timer.seconds`` — so dashboards and alert
rules written for Marathon work unchanged. Counters count since this instance became leader, as upstream's do.

The Prometheus text is Marathon's ``PrometheusReporter``'s: every character outside ``[A-Za-z0-9_]`` becomes ``_``;
gauges and counters keep their types; timers are summaries in seconds followed by ``_min``/``_mean``/``_max``/
``_stddev`` gauges and the meter rates; meters are a ``_count`` and ``_m1_rate``... gauges. Every family also gets a
``# HELP`` line (upstream has none). ``promtool check metrics`` parses it; its linter's only remarks are about the
names themselves (Marathon puts the type in the name, ``..._gauge``, ``..._counter``, has no ``_total`` suffix and
reports a meter's count as the gauge ``..._meter_count``), which stay as they are because every dashboard and alert
rule written for Marathon queries them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

PREFIX = "marathon"
TICK = 5.0
_ALPHAS = {f"m{m}_rate": 1 - math.exp(-TICK / 60.0 / m) for m in (1, 5, 15)}
QUANTILES = (("p50", "0.5"), ("p75", "0.75"), ("p95", "0.95"), ("p98", "0.98"), ("p99", "0.99"), ("p999", "0.999"))


class Meter:
    """Dropwizard's meter: a count and exponentially weighted 1/5/15-minute rates, ticked every 5 s."""

    def __init__(self) -> None:
        self.count = 0
        self._uncounted = 0
        self._rates = {name: 0.0 for name in _ALPHAS}
        self._started = time.monotonic()
        self._last_tick = self._started
        self._initialized = False
        self._lock = threading.Lock()

    def mark(self, n: int = 1) -> None:
        with self._lock:
            self._tick()
            self.count += n
            self._uncounted += n

    def _tick(self) -> None:
        now = time.monotonic()
        while now - self._last_tick >= TICK:
            instant = self._uncounted / TICK
            self._uncounted = 0
            for name, alpha in _ALPHAS.items():
                if self._initialized:
                    self._rates[name] += alpha * (instant - self._rates[name])
                else:
                    self._rates[name] = instant
            self._initialized = True
            self._last_tick += TICK

    def json(self) -> dict[str, Any]:
        with self._lock:
            self._tick()
            elapsed = max(time.monotonic() - self._started, 1e-9)
            return {"count": self.count, **self._rates, "mean_rate": self.count / elapsed}


class Timer:
    """A meter plus the distribution of the last durations (seconds)."""

    def __init__(self, size: int = 1028) -> None:
        self.meter = Meter()
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def update(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)
        self.meter.mark()

    def json(self) -> dict[str, Any]:
        with self._lock:
            samples = sorted(self._samples)
        out: dict[str, Any] = {"count": self.meter.count}
        if samples:
            mean = sum(samples) / len(samples)
            out.update(
                min=samples[0],
                mean=mean,
                max=samples[-1],
                stddev=math.sqrt(sum((s - mean) ** 2 for s in samples) / len(samples)),
            )
            for key, q in QUANTILES:
                out[key] = samples[min(len(samples) - 1, int(math.ceil(float(q) * len(samples))) - 1)]
        else:
            out.update(min=0.0, mean=0.0, max=0.0, stddev=0.0, **{key: 0.0 for key, _ in QUANTILES})
        rates = self.meter.json()
        out.update({k: v for k, v in rates.items() if k != "count"})
        return out


class HttpMetrics:
    """What the HTTP layer measures: requests in flight, bytes in and out, responses per status class, durations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.event_stream_bytes = 0
        self.responses = {f"{n}xx": Meter() for n in range(1, 6)}
        self.durations = {m: Timer() for m in ("all", "get", "post", "put", "delete")}

    def started(self, request_bytes: int) -> None:
        with self._lock:
            self.active += 1
            self.request_bytes += request_bytes

    def finished(self) -> None:
        with self._lock:
            self.active = max(0, self.active - 1)

    def answered(self, method: str, status: int, response_bytes: int, seconds: float) -> None:
        with self._lock:
            self.response_bytes += response_bytes
        meter = self.responses.get(f"{status // 100}xx")
        if meter is not None:
            meter.mark()
        self.durations["all"].update(seconds)
        timer = self.durations.get(method.lower())
        if timer is not None:
            timer.update(seconds)

    def streamed(self, n: int) -> None:
        with self._lock:
            self.event_stream_bytes += n


def snapshot(gauges: dict[str, float], counters: dict[str, int], http: HttpMetrics) -> dict[str, Any]:
    """Dropwizard's JSON (``newMetrics.raml``): metric name -> value objects, per type. ``gauges``/``counters`` are
    keyed by Marathon's short names (``apps.active``, ``uptime.seconds``); type and unit go in the full name."""

    def name(short: str, kind: str) -> str:
        base, unit = (short[: -len(".seconds")], ".seconds") if short.endswith(".seconds") else (short, "")
        if short.endswith(".bytes"):
            base, unit = short[: -len(".bytes")], ".bytes"
        return f"{PREFIX}.{base}.{kind}{unit}"

    all_gauges = {**gauges, "http.requests.active": http.active}
    all_counters = {
        **counters,
        "http.requests.size.bytes": http.request_bytes,
        "http.responses.size.bytes": http.response_bytes,
        "http.responses.event-stream.size.bytes": http.event_stream_bytes,
    }
    timers = {
        "http.requests.duration" if method == "all" else f"http.requests.{method}.duration": timer
        for method, timer in http.durations.items()
    }
    return {
        "version": "4.0.0",
        "gauges": {name(k, "gauge"): {"value": v} for k, v in sorted(all_gauges.items())},
        "counters": {name(k, "counter"): {"count": v} for k, v in sorted(all_counters.items())},
        "histograms": {},
        "meters": {
            f"{PREFIX}.http.responses.{cls}.rate.meter": {**m.json(), "units": "events/second"}
            for cls, m in http.responses.items()
        },
        "timers": {
            f"{PREFIX}.{k}.timer.seconds": {**t.json(), "duration_units": "seconds", "rate_units": "calls/second"}
            for k, t in sorted(timers.items())
        },
    }


def prometheus(data: dict[str, Any]) -> str:
    """The Prometheus text exposition of a :func:`snapshot` (see the module's note on HELP and types)."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{sample} {_number(value)}" for sample, value in samples)

    for raw, value in data["gauges"].items():
        name = _sanitize(raw)
        family(name, "gauge", f"Marathon gauge {raw}", [(name, value["value"])])
    for raw, value in data["counters"].items():
        name = _sanitize(raw)
        family(name, "counter", f"Marathon counter {raw}", [(name, value["count"])])
    for raw, value in data["meters"].items():
        name = _sanitize(raw)
        family(f"{name}_count", "gauge", f"Marathon meter {raw}: events", [(f"{name}_count", value["count"])])
        _rates(family, name, raw, value)
    for raw, value in data["timers"].items():
        name = _sanitize(raw)
        quantiles = [(f'{name}{{quantile="{q}"}}', value[key]) for key, q in QUANTILES]
        family(name, "summary", f"Marathon timer {raw}", [*quantiles, (f"{name}_count", value["count"])])
        for stat in ("min", "mean", "max", "stddev"):
            family(f"{name}_{stat}", "gauge", f"Marathon timer {raw}: {stat}", [(f"{name}_{stat}", value[stat])])
        _rates(family, name, raw, value)
    return "\n".join(lines) + "\n"


def _rates(family: Any, name: str, raw: str, value: dict[str, Any]) -> None:
    for rate in ("mean_rate", "m1_rate", "m5_rate", "m15_rate"):
        family(f"{name}_{rate}", "gauge", f"Marathon {raw}: {rate} per second", [(f"{name}_{rate}", value[rate])])


def _sanitize(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name)


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "0.0"
    return repr(float(value))
