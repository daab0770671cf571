"""The fetcher: puts a task's ``CommandInfo.uris`` into its sandbox before the command starts (docs/fetcher.md).

Local paths and ``file://`` are copied, ``http(s)://`` downloaded; archives are extracted unless ``extract`` is
false; ``executable`` files are made executable and never extracted; ``output_file`` renames the result.
URIs with ``cache: true`` go through the agent's fetcher cache (``--fetcher_cache_dir``, at most
``--fetcher_cache_size`` bytes, least recently used evicted first): an artefact a thousand tasks use is downloaded
once per agent, not once per task.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import threading
import urllib.parse
import zipfile
from typing import Any

import requests

DEFAULT_CACHE_SIZE = 2 * 1024**3

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".zip", ".gz")


class FetchError(Exception):
    pass


class FetcherCache:
    """Per-agent cache keyed by URI. A per-key lock makes concurrent tasks wanting the same URI share one download."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_CACHE_SIZE) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.hits = 0
        self.misses = 0

    def path_for(self, value: str) -> str:
        return os.path.join(self.directory, hashlib.sha256(value.encode()).hexdigest())

    def get(self, value: str, parsed: urllib.parse.ParseResult) -> str:
        """The cached copy of ``value``, downloading it first when it is not cached yet."""
        entry = self.path_for(value)
        with self._guard:
            lock = self._locks.setdefault(entry, threading.Lock())
        with lock:
            if os.path.isfile(entry):
                self.hits += 1
                os.utime(entry)  # most recently used
                return entry
            self.misses += 1
            os.makedirs(self.directory, exist_ok=True)
            partial = f"{entry}.partial"
            _download(value, parsed, partial)
            os.replace(partial, entry)
        self._evict(keep=entry)
        return entry

    def _evict(self, keep: str) -> None:
        entries = []
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if name.endswith(".partial") or path == keep:
                continue
            try:
                info = os.stat(path)
            except OSError:
                continue
            entries.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in entries) + os.path.getsize(keep)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
                total -= size
            except OSError:
                pass


def fetch_all(uris: list[dict[str, Any]], sandbox: str, cache: FetcherCache | None = None) -> list[str]:
    """Fetch every URI in order, as one mesos-fetcher run does; the first failure fails the task."""
    return [fetch(uri, sandbox, cache) for uri in uris]


def _download(value: str, parsed: urllib.parse.ParseResult, target: str) -> None:
    try:
        if parsed.scheme in ("http", "https"):
            with requests.get(value, stream=True, timeout=60) as response:
                if response.status_code != 200:
                    raise FetchError(f"Failed to fetch '{value}': HTTP {response.status_code}")
                with open(target, "wb") as out:
                    for chunk in response.iter_content(1 << 16):
                        out.write(chunk)
        elif parsed.scheme in ("", "file"):
            source = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else value
            if not os.path.isfile(source):
                raise FetchError(f"Failed to fetch '{value}': no such file")
            shutil.copyfile(source, target)
        else:
            raise FetchError(f"Failed to fetch '{value}': unsupported scheme '{parsed.scheme}'")
    except (OSError, requests.RequestException) as exc:
        raise FetchError(f"Failed to fetch '{value}': {exc}") from None


def fetch(uri: dict[str, Any], sandbox: str, cache: FetcherCache | None = None) -> str:
    value = uri.get("value")
    if not isinstance(value, str) or not value:
        raise FetchError("URI without a 'value'")
    parsed = urllib.parse.urlparse(value)
    basename = os.path.basename(parsed.path.rstrip("/")) or "download"
    output = uri.get("output_file") or basename
    if os.path.isabs(output) or ".." in output.split("/"):
        raise FetchError(f"Invalid output_file '{output}' for {value}")
    target = os.path.join(sandbox, output)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if uri.get("cache") and cache is not None:
        try:
            shutil.copyfile(cache.get(value, parsed), target)
        except OSError as exc:
            raise FetchError(f"Failed to fetch '{value}' through the cache: {exc}") from None
    else:
        _download(value, parsed, target)
    if uri.get("executable"):
        os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    elif uri.get("extract", True) and target.endswith(ARCHIVE_SUFFIXES):
        _extract(target, sandbox)
    return target


def _extract(path: str, sandbox: str) -> None:
    try:
        if path.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    _check_member(name, path)
                archive.extractall(sandbox)
        elif path.endswith(".gz") and not path.endswith((".tar.gz",)):
            import gzip

            with gzip.open(path, "rb") as source, open(path[: -len(".gz")], "wb") as out:
                shutil.copyfileobj(source, out)
        else:
            with tarfile.open(path) as archive:
                archive.extractall(sandbox, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise FetchError(f"Failed to extract '{os.path.basename(path)}': {exc}") from None


def _check_member(name: str, archive: str) -> None:
    if os.path.isabs(name) or ".." in name.split("/"):
        raise FetchError(f"Refusing to extract '{name}' from {os.path.basename(archive)}: it leaves the sandbox")
