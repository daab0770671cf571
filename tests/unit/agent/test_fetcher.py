"""Fetcher: archive kinds, executable and output_file, the cache, and refusals."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from mesolite.agent.fetcher import FetcherCache, FetchError, fetch


def _tar(path: Path, mode: str) -> None:
    with tarfile.open(path, mode) as archive:
        data = b"inside\n"
        info = tarfile.TarInfo("dir/file.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name,mode", [("a.tar", "w"), ("a.tgz", "w:gz"), ("a.tar.bz2", "w:bz2"), ("a.tar.xz", "w:xz")])
def test_tarballs_are_extracted(tmp_path: Path, name: str, mode: str) -> None:
    source = tmp_path / name
    _tar(source, mode)
    sandbox = tmp_path / "sandbox"
    fetch({"value": f"file://{source}"}, str(sandbox))
    assert (sandbox / "dir" / "file.txt").read_text() == "inside\n"


def test_zip_gz_executable_and_output_file(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("z.txt", "zipped")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"gunzipped"))
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    fetch({"value": str(tmp_path / "a.zip")}, str(sandbox))
    fetch({"value": str(tmp_path / "b.txt.gz")}, str(sandbox))
    fetch({"value": str(tmp_path / "tool"), "executable": True, "output_file": "bin/run"}, str(sandbox))
    fetch({"value": str(tmp_path / "a.zip"), "extract": False, "output_file": "kept.zip"}, str(sandbox))
    assert (sandbox / "z.txt").read_text() == "zipped"
    assert (sandbox / "b.txt").read_text() == "gunzipped"
    assert (sandbox / "bin" / "run").stat().st_mode & 0o111
    assert zipfile.is_zipfile(sandbox / "kept.zip")


def test_refusals_are_fetch_errors(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no such file"):
        fetch({"value": str(tmp_path / "missing")}, str(tmp_path))
    with pytest.raises(FetchError, match="unsupported scheme"):
        fetch({"value": "gopher://x/y"}, str(tmp_path))
    with pytest.raises(FetchError, match="Invalid output_file"):
        fetch({"value": str(tmp_path), "output_file": "../x"}, str(tmp_path))
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.txt", "x")
    with pytest.raises(FetchError, match="leaves the sandbox"):
        fetch({"value": str(evil)}, str(tmp_path / "sandbox"))


def test_cache_downloads_once_and_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = FetcherCache(str(tmp_path / "cache"), max_bytes=10)
    for name in ("one", "two"):
        (tmp_path / name).write_bytes(b"x" * 6)
    fetch({"value": str(tmp_path / "one"), "cache": True}, str(tmp_path / "s1"), cache)
    (tmp_path / "one").unlink()  # from now on only the cache has it
    fetch({"value": str(tmp_path / "one"), "cache": True}, str(tmp_path / "s2"), cache)
    assert (tmp_path / "s2" / "one").read_bytes() == b"x" * 6
    assert (cache.hits, cache.misses) == (1, 1)
    fetch({"value": str(tmp_path / "two"), "cache": True}, str(tmp_path / "s3"), cache)
    assert not Path(cache.path_for(str(tmp_path / "one"))).exists()  # 12 bytes > 10: the older entry went
