"""The real HAProxy: validating a candidate config, writing it atomically, and reloading without refusing a
connection.

Two ways to run it. :class:`SupervisedHAProxy` (the default) starts ``haproxy -W -db`` itself: master-worker mode,
the master in the foreground as the bridge's child (in the bridge's process group, so whatever stops the bridge
stops it too). A reload is SIGUSR2 to the master: it re-executes itself on the new file and starts a new worker that
takes the listening sockets over from the old one (``expose-fd listeners`` on the stats socket), so no SYN meets a
closed port; the old worker finishes its connections and exits (``hard-stop-after`` caps it). Success is read from
the master CLI (``-S``): ``show proc`` counts reloads and failed ones. A bridge that restarts (gunicorn replacing a
worker, a crash) adopts the HAProxy its pidfile names instead of fighting it for the ports.

:class:`ExternalHAProxy` (``--reload-command``) leaves running HAProxy to something else — Debian's
``haproxy.service`` runs the same master-worker mode and reloads with SIGUSR2 — and only runs the command.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PROC_MASTER = re.compile(r"^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", re.MULTILINE)
_PROC_WORKER = re.compile(r"^(\d+)\s+worker\s+(\d+)", re.MULTILINE)


class ReloadError(Exception):
    pass


@dataclass
class Validation:
    ok: bool
    output: str
    text: str | None = None  # the config checked, to quote the lines HAProxy complains about

    @property
    def reason(self) -> str:
        return alerts(self.output, self.text)


def validate(haproxy_bin: str, path: str, timeout: float = 60.0) -> Validation:
    """``haproxy -c -f path``: the config as HAProxy itself reads it (``-c`` binds nothing)."""
    try:
        done = subprocess.run(
            [haproxy_bin, "-c", "-f", path], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Validation(False, f"{haproxy_bin} -c could not run: {exc}")
    output = (done.stdout + done.stderr).strip()
    return Validation(done.returncode == 0, output)


def has_lua(haproxy_bin: str) -> bool:
    """Whether this HAProxy was built with Lua (Debian's is): the stats-port endpoints need it."""
    try:
        done = subprocess.run([haproxy_bin, "-vv"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Built with Lua" in done.stdout


def pids_running(config_path: str) -> list[int]:
    """``pidof haproxy``, narrowed to the processes running this config (other HAProxies may share the host)."""
    found = []
    wanted = os.path.abspath(config_path).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", "rb") as handle:
                if handle.read().strip() != b"haproxy":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if wanted in argv:
            found.append(int(entry))
    return sorted(found)


_PARSING = re.compile(r"parsing \[([^\]:]+):(\d+)\]")


def alerts(output: str, text: str | None = None) -> str:
    """HAProxy's reasons (ALERT lines, not the NOTICE chatter), each with the config line it names when the text is
    at hand: ``balance only supports ...`` says nothing of which app until its line is quoted."""
    config_lines = text.splitlines() if text is not None else []
    reasons = []
    for line in output.splitlines():
        if "ALERT" not in line or "Fatal errors" in line or "Error(s) found" in line:
            continue
        reason = line.split(" : ", 1)[-1].strip()
        match = _PARSING.search(reason)
        if match is not None:
            number = int(match.group(2))
            reason = reason.replace(match.group(0), f"line {number}")
            if 0 < number <= len(config_lines):
                reason += f' ("{config_lines[number - 1].strip()}")'
        reasons.append(reason)
    return "\n".join(reasons[:10]) or output[-2000:]


def atomic_write(path: str, text: str) -> None:
    """Readers (HAProxy re-executing on reload, an operator's ``cat``) see the old file or the new one, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".haproxy-bridge-", suffix=".cfg", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


class ExternalHAProxy:
    """HAProxy run by something else: a reload is the operator's command (``systemctl reload haproxy``)."""

    supervised = False

    def __init__(self, command: str, timeout: float = 30.0, config_path: str = "/etc/haproxy/haproxy.cfg") -> None:
        self.command = command
        self.timeout = timeout
        self.config_path = config_path

    def pids(self) -> list[int]:
        return pids_running(self.config_path)

    @property
    def pid(self) -> int | None:
        return None

    def running(self) -> bool:
        return True

    def start(self) -> None:
        return None

    def reload(self) -> None:
        try:
            done = subprocess.run(
                self.command, shell=True, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ReloadError(f"reload command timed out after {self.timeout:.0f}s: {self.command}") from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-2000:]
            raise ReloadError(f"reload command exited with {done.returncode}: {output}")

    def stop(self) -> None:
        return None


class SupervisedHAProxy:
    """``haproxy -W -db -f <config> -p <pidfile> -S <master socket>`` as the bridge's child."""

    supervised = True

    def __init__(self, haproxy_bin: str, config_path: str, work_dir: str, timeout: float = 30.0) -> None:
        self.bin = haproxy_bin
        self.config_path = os.path.abspath(config_path)
        self.pidfile = os.path.join(work_dir, "haproxy.pid")
        self.master_socket = os.path.join(work_dir, "haproxy-master.sock")
        self.log_path = os.path.join(work_dir, "haproxy.log")
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self._pid

    # ------------------------------------------------------------------ life cycle

    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._pid is not None and _alive(self._pid)

    def start(self) -> None:
        """Adopt the HAProxy a previous bridge left running on this config, or start one; raise if it does not come
        up (a port already taken, say), with HAProxy's own words."""
        if self.running():
            return
        self._process, self._pid = None, None
        adopted = self._adoptable()
        if adopted is not None:
            self._pid = adopted
            log.info("adopted the running haproxy master %d", adopted)
            return
        if os.path.exists(self.master_socket):
            os.unlink(self.master_socket)
        self._log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as output:
            self._process = subprocess.Popen(
                [
                    self.bin,
                    "-W",
                    "-db",
                    "-f",
                    self.config_path,
                    "-p",
                    self.pidfile,
                    "-S",
                    f"{self.master_socket},mode,600",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._pid = self._process.pid
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process, self._pid = None, None
                raise ReloadError(f"haproxy exited with {code} at start: {alerts(self._log_tail())}")
            proc = self._show_proc()
            if proc is not None and _PROC_WORKER.search(proc):
                log.info("haproxy master %d started", self._pid)
                return
            time.sleep(0.02)
        raise ReloadError(f"haproxy did not start a worker within {self.timeout:.0f}s")

    def reload(self) -> None:
        """SIGUSR2 to the master; done when the master counts one more reload and a worker of the new generation
        runs. A failed reload leaves the previous workers serving: HAProxy never drops what it had."""
        if not self.running():
            self.start()
            return
        self._log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        before = self._master_counts()
        if before is None:
            raise ReloadError("the haproxy master CLI does not answer")
        assert self._pid is not None
        os.kill(self._pid, signal.SIGUSR2)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            time.sleep(0.01)
            if not self.running():
                raise ReloadError(f"haproxy exited during the reload: {alerts(self._log_tail())}")
            proc = self._show_proc()
            counts = _parse_master(proc) if proc else None
            if counts is None or counts[0] <= before[0]:
                continue
            if counts[1] > before[1]:
                raise ReloadError(f"haproxy refused the new configuration: {alerts(self._log_tail())}")
            if any(int(reloads) == 0 for _pid, reloads in _PROC_WORKER.findall(proc or "")):
                return
        raise ReloadError(f"haproxy did not finish reloading within {self.timeout:.0f}s")

    def stop(self) -> None:
        pid = self._pid
        if pid is None or not self.running():
            self._reap()
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.running():
            time.sleep(0.05)
        if self.running():
            os.kill(pid, signal.SIGKILL)
        self._reap()
        self._pid = None

    def _reap(self) -> None:
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._process = None

    # ------------------------------------------------------------------ master CLI

    def _show_proc(self) -> str | None:
        return master_command(self.master_socket, "show proc")

    def _master_counts(self) -> tuple[int, int] | None:
        proc = self._show_proc()
        return _parse_master(proc) if proc else None

    def pids(self) -> list[int]:
        """The master and every worker, old ones still draining included (marathon-lb's ``pidof haproxy``: zdd
        reads more than two as "reloading")."""
        if self._pid is None or not self.running():
            return []
        proc = self._show_proc() or ""
        return [self._pid] + sorted(int(pid) for pid, _reloads in _PROC_WORKER.findall(proc))

    def workers(self) -> list[int]:
        proc = self._show_proc() or ""
        return [int(pid) for pid, _reloads in _PROC_WORKER.findall(proc.split("# old workers")[0])]

    def _adoptable(self) -> int | None:
        try:
            with open(self.pidfile) as handle:
                pid = int(handle.readline().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            return None
        if self.config_path.encode() not in argv or self._show_proc() is None:
            return None
        return pid

    def _log_tail(self) -> str:
        """What HAProxy said since the start or reload in progress."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(max(self._log_offset, os.path.getsize(self.log_path) - 4000))
                return handle.read().decode(errors="replace")
        except OSError:
            return ""


def master_command(path: str, command: str, timeout: float = 5.0) -> str | None:
    """One command on HAProxy's master CLI (or a stats socket); ``None`` when nothing answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(command.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    except OSError:
        return None


def _parse_master(proc: str) -> tuple[int, int] | None:
    match = _PROC_MASTER.search(proc)
    if match is None:
        return None
    return int(match.group(2)), int(match.group(3))


def _alive(pid: int) -> bool:
    """Alive and not a zombie: an adopted master is not our child, so nothing here reaps it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
