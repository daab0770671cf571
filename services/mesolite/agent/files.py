"""The agent's ``/files`` endpoints: read-only, confined access to task sandboxes.

The Mesos web UI (and people with curl) browse sandboxes through ``/files/browse``, tail logs through
``/files/read`` and fetch artefacts through ``/files/download``. Tasks control what is inside their sandbox,
symlinks included, so every request is resolved to a real path and checked against the sandbox roots before
anything is opened, and the opened descriptor is checked again (a task can swap a directory for a symlink
between the two steps).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from collections.abc import Callable
from typing import IO, Any

from flask import Blueprint, Response, request, send_file

from mesolite.core.http import json_response, query_int, text_response

__all__ = ["FilesError", "SandboxFiles", "files_blueprint", "max_read_length"]


class FilesError(Exception):
    """A refused request; ``status`` is the HTTP answer (400 bad params, 403 outside, 404 missing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def max_read_length() -> int:
    """Mesos caps one ``/files/read`` answer at 16 pages so a UI tail cannot pull a whole log in one go."""
    return os.sysconf("SC_PAGE_SIZE") * 16


def _inside(real: str, root: str) -> bool:
    """Component-wise containment: ``/a/bc`` is not inside ``/a/b``."""
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _entry(path: str, st: os.stat_result) -> dict[str, Any]:
    """One ``FileInfo`` as Mesos renders it (``ls -l`` style mode, owner names rather than ids)."""
    return {
        "path": path,
        "nlink": st.st_nlink,
        "size": st.st_size,
        "mtime": int(st.st_mtime),
        "mode": stat.filemode(st.st_mode),
        "uid": _user_name(st.st_uid),
        "gid": _group_name(st.st_gid),
    }


class SandboxFiles:
    """Resolves the paths a user may ask for and reads them, confined to the agent's sandboxes."""

    def __init__(self, work_dir: str, virtual_paths: Callable[[], dict[str, str]]) -> None:
        self._slaves_dir = os.path.join(work_dir, "slaves")
        self._virtual_paths = virtual_paths

    # -- resolution --

    def _normalise(self, path: str) -> str:
        """Validate the raw request and give the canonical form used for matching and for browse entries."""
        if not path:
            raise FilesError(400, "Expecting 'path' to be non-empty")
        if "\x00" in path:
            raise FilesError(400, "Invalid 'path': it contains a NUL byte")
        parts = _components(path)
        if ".." in parts:
            # Refused outright, even when it would stay inside: there is no legitimate need for it.
            raise FilesError(403, f"Access to '{path}' is denied: '..' is not allowed in paths")
        return "/" + "/".join(parts)

    def _roots(self, virtual: dict[str, str]) -> list[str]:
        roots = [os.path.realpath(self._slaves_dir)]
        roots.extend(os.path.realpath(real) for real in virtual.values())
        return roots

    def _resolve(self, path: str) -> tuple[str, str, list[str]]:
        """Return (canonical requested path, real path, allowed roots); raise FilesError when outside."""
        requested = self._normalise(path)
        virtual = self._virtual_paths()
        candidate = requested
        rparts = _components(requested)
        # Longest virtual prefix wins, matched on whole components.
        for vpath in sorted(virtual, key=lambda v: len(_components(v)), reverse=True):
            vparts = _components(vpath)
            if vparts and rparts[: len(vparts)] == vparts:
                candidate = os.path.join(virtual[vpath], *rparts[len(vparts) :])
                break
        roots = self._roots(virtual)
        real = os.path.realpath(candidate)
        if not any(_inside(real, root) for root in roots):
            raise FilesError(403, f"Access to '{path}' is denied: it is outside the agent's sandboxes")
        return requested, real, roots

    def resolve(self, path: str) -> str:
        """The real path behind ``path`` (virtual, real sandbox or ``runs/latest`` form), once known safe."""
        return self._resolve(path)[1]

    def _open(self, path: str) -> tuple[str, str, int, os.stat_result, list[str]]:
        """Resolve and open ``path`` without following a last-moment symlink; re-check the fd target."""
        requested, real, roots = self._resolve(path)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(real, flags)
        except OSError as exc:
            raise self._os_error(exc, path) from None
        try:
            try:
                actual = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                actual = None  # no procfs: the realpath check above is all we can do
            if actual is not None:
                actual = actual.removesuffix(" (deleted)")
                if not any(_inside(actual, root) for root in roots):
                    raise FilesError(403, f"Access to '{path}' is denied: it is outside the agent's sandboxes")
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        return requested, real, fd, st, roots

    @staticmethod
    def _os_error(exc: OSError, path: str) -> FilesError:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return FilesError(404, f"No such file or directory: '{path}'")
        if exc.errno == errno.ELOOP:
            return FilesError(404, f"Cannot resolve '{path}': too many levels of symbolic links")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return FilesError(403, f"Access to '{path}' is denied: permission denied")
        return FilesError(500, f"Failed to open '{path}': {exc.strerror}")

    # -- operations --

    def browse(self, path: str) -> list[dict[str, Any]]:
        """List a directory (entries keep the user's path form), or give a file's own entry as Mesos does."""
        requested, real, fd, st, roots = self._open(path)
        try:
            if not stat.S_ISDIR(st.st_mode):
                return [_entry(requested, st)]
            names = sorted(os.listdir(fd))
        finally:
            os.close(fd)
        base = requested.rstrip("/")
        entries = []
        for name in names:
            child = os.path.join(real, name)
            try:
                child_st = os.lstat(child)
                if stat.S_ISLNK(child_st.st_mode):
                    # Show a link's target only when that is servable itself: never leak outside metadata.
                    target = os.path.realpath(child)
                    if any(_inside(target, root) for root in roots):
                        child_st = os.stat(child)
            except OSError:
                continue  # vanished or dangling between listdir and stat: keep what we can
            entries.append(_entry(f"{base}/{name}", child_st))
        return entries

    def _open_regular(self, path: str, verb: str) -> tuple[str, int, os.stat_result]:
        _, real, fd, st, _ = self._open(path)
        if stat.S_ISREG(st.st_mode):
            return real, fd, st
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FilesError(400, f"Cannot {verb} '{path}': it is a directory")
        raise FilesError(400, f"Cannot {verb} '{path}': it is not a regular file")

    def read(self, path: str, offset: int | None, length: int | None) -> dict[str, Any]:
        """A chunk of a file; no offset (or -1) answers the size: that is how the UI learns where to tail."""
        if offset is not None and offset < -1:
            raise FilesError(400, f"Negative offset provided: {offset}")
        if length is not None and length < 0:
            raise FilesError(400, f"Negative length provided: {length}")
        _, fd, st = self._open_regular(path, "read")
        try:
            if offset is None or offset == -1:
                return {"offset": st.st_size, "data": ""}
            cap = max_read_length()
            want = cap if length is None else min(length, cap)
            chunks: list[bytes] = []
            position, remaining = offset, want
            while remaining > 0:
                chunk = os.pread(fd, remaining, position)
                if not chunk:
                    break
                chunks.append(chunk)
                position += len(chunk)
                remaining -= len(chunk)
        finally:
            os.close(fd)
        return {"offset": offset, "data": b"".join(chunks).decode("utf-8", errors="replace")}

    def open_download(self, path: str) -> tuple[IO[bytes], str]:
        """An open, checked regular file and its name; serving the fd avoids re-opening a swapped path."""
        _, fd, _ = self._open_regular(path, "download")
        name = os.path.basename(self._normalise(path)) or "download"
        return os.fdopen(fd, "rb"), name

    def download_path(self, path: str) -> str:
        """A real regular file path for ``send_file`` (checked the same way as ``read``)."""
        real, fd, _ = self._open_regular(path, "download")
        os.close(fd)
        return real


def files_blueprint(files_factory: Callable[[], SandboxFiles]) -> Blueprint:
    """``/files/{browse,read,download}`` plus the pre-1.8 ``.json`` spellings old tools still request."""
    bp = Blueprint("files", __name__)

    def required_path() -> str:
        if "path" not in request.args:
            raise FilesError(400, "Expecting 'path' to be present in query")
        return request.args["path"]

    def int_arg(name: str) -> int | None:
        try:
            return query_int(name)
        except ValueError as exc:
            raise FilesError(400, str(exc)) from None

    @bp.errorhandler(FilesError)
    def _files_error(exc: FilesError) -> Response:
        return text_response(exc.message, exc.status)

    @bp.get("/files/browse")
    @bp.get("/files/browse.json")
    def browse() -> Response:
        path = required_path()
        return json_response(files_factory().browse(path))

    @bp.get("/files/read")
    @bp.get("/files/read.json")
    def read() -> Response:
        path = required_path()
        offset, length = int_arg("offset"), int_arg("length")
        return json_response(files_factory().read(path, offset, length))

    @bp.get("/files/download")
    @bp.get("/files/download.json")
    def download() -> Response:
        path = required_path()
        handle, name = files_factory().open_download(path)
        return send_file(handle, as_attachment=True, download_name=name)

    return bp
