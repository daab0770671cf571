"""The fetcher: puts a task's ``CommandInfo.uris`` into its sandbox before the command starts (docs/fetcher.md).

Local paths and ``file://`` are copied, ``http(s)://`` downloaded; archives are extracted unless ``extract`` is
false; ``executable`` files are made executable and never extracted; ``output_file`` renames the result.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import urllib.parse
import zipfile
from typing import Any

import requests

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".zip", ".gz")


class FetchError(Exception):
    pass


def fetch_all(uris: list[dict[str, Any]], sandbox: str) -> list[str]:
    """Fetch every URI in order, as one mesos-fetcher run does; the first failure fails the task."""
    return [fetch(uri, sandbox) for uri in uris]


def fetch(uri: dict[str, Any], sandbox: str) -> str:
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
