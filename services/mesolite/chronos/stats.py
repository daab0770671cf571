"""Run history and duration statistics for ``/job/stat/{name}`` and ``/stats/{percentile}`` (pure functions).

Chronos kept the histogram in memory (Codahale metrics) and the history in Cassandra; here both come from the run
records the state keeps in its store, so they survive a restart and need no Cassandra. Durations are measured from
the task starting to its end (Chronos counted from the scheduled time, queueing included).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

PERCENTILES = {
    "75thPercentile": 0.75,
    "95thPercentile": 0.95,
    "98thPercentile": 0.98,
    "99thPercentile": 0.99,
    "median": 0.5,
}


def quantile(sorted_values: list[float], q: float) -> float:
    """Codahale's snapshot quantile: linear interpolation at position ``q × (n + 1)``."""
    if not sorted_values:
        return 0.0
    position = q * (len(sorted_values) + 1)
    index = int(position)
    if index < 1:
        return float(sorted_values[0])
    if index >= len(sorted_values):
        return float(sorted_values[-1])
    lower, upper = sorted_values[index - 1], sorted_values[index]
    return float(lower + (position - index) * (upper - lower))


def histogram(durations_ms: list[float]) -> dict[str, float | int]:
    """The ``histogram`` object of ``/job/stat`` (milliseconds).

    ``mean`` is the arithmetic mean; Chronos' serializer printed the median under that key by mistake.
    """
    values = sorted(durations_ms)
    result: dict[str, float | int] = {key: quantile(values, q) for key, q in PERCENTILES.items()}
    result["mean"] = float(sum(values) / len(values)) if values else 0.0
    result["count"] = len(values)
    return {key: result[key] for key in (*PERCENTILES, "mean", "count")}


def _stamp(epoch: float | None) -> str:
    if epoch is None:
        return "N/A"
    return datetime.fromtimestamp(epoch, UTC).strftime("%m/%d/%y %H:%M:%S")


def format_duration(seconds: float) -> str:
    """Joda's period printer as Chronos configured it: days, hours, minutes when non-zero, seconds always."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value)
    return f"{text}{secs}s"


def task_stat(record: dict[str, Any]) -> dict[str, Any]:
    """One ``taskStatHistory`` entry from a run record (``start``/``end`` epoch seconds, ``status``)."""
    entry: dict[str, Any] = {
        "taskId": record["taskId"],
        "jobName": record["jobName"],
        "slaveId": record.get("slaveId") or "",
        "startTime": _stamp(record.get("start")),
        "endTime": _stamp(record.get("end")),
    }
    if record.get("start") is not None and record.get("end") is not None:
        entry["duration"] = format_duration(record["end"] - record["start"])
    entry["status"] = record["status"]
    if record.get("numElementsProcessed") is not None:  # a dataProcessingJobType job's task that reported progress
        entry["numElementsProcessed"] = record["numElementsProcessed"]
    return entry


def durations_ms(records: list[dict[str, Any]]) -> list[float]:
    return [
        (record["end"] - record["start"]) * 1000.0
        for record in records
        if record.get("status") == "Success" and record.get("start") is not None and record.get("end") is not None
    ]


def ranking(per_job: dict[str, dict[str, float | int]], percentile: str) -> list[dict[str, Any]] | None:
    """``/stats/{p}``: every job's value in seconds, slowest first; None for an unknown percentile."""
    if percentile not in (*PERCENTILES, "mean"):
        return None
    rows = [(name, float(hist[percentile]) / 1000.0) for name, hist in per_job.items()]
    rows.sort(key=lambda row: row[1], reverse=True)
    return [{"jobNameLabel": name, "time": time} for name, time in rows]
