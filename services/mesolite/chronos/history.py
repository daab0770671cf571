"""Finished runs of each job, under ``history/<name>`` in the state's store: what ``/job/stat`` and ``/stats`` show,
the ``numElementsProcessed`` counters of data-processing jobs (Chronos kept both in Cassandra), and the proof that a
run's end was counted already, so an update delivered again after a failover is not counted twice.

Only the state uses it, under its lock; like the state it writes the store before memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from mesolite.core.store import Store

HISTORY_KEEP = 100
Record = dict[str, Any]


def store_key(kind: str, name: str) -> str:
    """A store key for a job name or task id: escaped into a single path segment (``/``, spaces and the like in a
    run's arguments; ``.`` and ``..`` are not valid ZooKeeper node names)."""
    segment = quote(name, safe=":")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return f"{kind}/{segment}"


def key_name(key: str) -> str:
    return unquote(key.split("/", 1)[1])


class RunHistory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._records: dict[str, list[Record]] = {key_name(k): v for k, v in store.list("history/").items()}

    def of(self, job: str) -> list[Record]:
        return list(self._records.get(job, []))

    def has(self, job: str, task_id: str) -> bool:
        return any(record["taskId"] == task_id for record in self._records.get(job, []))

    def add(self, job: str, record: Record) -> None:
        records = [*self._records.get(job, []), record]
        del records[:-HISTORY_KEEP]
        self._save(job, records)

    def add_elements(self, job: str, task_id: str, elements: int) -> bool:
        """Count a finished run's late progress report; False if the run is not (or no longer) in the history."""
        records = [dict(record) for record in self._records.get(job, [])]
        for record in records:
            if record["taskId"] == task_id:
                record["numElementsProcessed"] = int(record.get("numElementsProcessed") or 0) + elements
                self._save(job, records)
                return True
        return False

    def drop(self, job: str) -> None:
        self.store.delete(store_key("history", job))
        self._records.pop(job, None)

    def _save(self, job: str, records: list[Record]) -> None:
        self.store.put(store_key("history", job), records)
        self._records[job] = records
