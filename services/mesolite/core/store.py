"""The registry store: what must survive a restart (admitted agents, frameworks, and later apps and jobs).

Callers see a small key/value interface with hierarchical keys (``agents/<id>``); the embedded default is SQLite in the
work dir, and a ZooKeeper backend can implement the same four methods without touching callers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any, Protocol


class Store(Protocol):
    def get(self, key: str) -> Any | None: ...
    def put(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> dict[str, Any]: ...


class SQLiteStore:
    """Single-node store; WAL mode so a crash never leaves a half-written registry."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: Any) -> None:
        data = json.dumps(value, separators=(",", ":"))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, data))

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def list(self, prefix: str) -> dict[str, Any]:
        upper = prefix + "\uffff"
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key", (prefix, upper)
            ).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class MemoryStore:
    """For unit tests of components that persist: same interface, nothing on disk."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            raw = self._data.get(key)
        return json.loads(raw) if raw is not None else None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def list(self, prefix: str) -> dict[str, Any]:
        with self._lock:
            return {k: json.loads(v) for k, v in sorted(self._data.items()) if k.startswith(prefix)}
