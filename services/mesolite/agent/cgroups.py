"""Isolation of containers with Linux control groups (``--isolation=cgroups/cpu,cgroups/mem``), v1 or v2.

Why cgroups and not process groups: a process group is only a naming convention (a task can leave it with
``setsid``), does not limit anything and cannot tell an out-of-memory kill from any other SIGKILL. A cgroup holds
every process the task ever starts, carries the limits Mesos sets (``cpu.shares = max(1024 × cpus, 2)``, an optional
CFS quota, a memory limit) and counts OOM kills, which is how a memory limitation becomes TASK_FAILED with
``REASON_CONTAINER_LIMITATION_MEMORY`` (src/slave/containerizer/mesos/isolators/cgroups/subsystems/).

Each container gets ``<hierarchy>/<cgroups_root>/<container_id>`` in every hierarchy used (cgroups v1: cpu, cpuacct,
memory, each where it is mounted) or one directory in the unified hierarchy (cgroups v2). The task's process joins
them itself before exec (supervisor.py), so not even its first instruction runs unlimited.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
from typing import Any

log = logging.getLogger(__name__)

CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000
MIN_MEMORY_BYTES = 32 * 1024 * 1024
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_shares(cpus: float) -> int:
    return max(int(CPU_SHARES_PER_CPU * cpus), MIN_CPU_SHARES)


def cfs_quota_us(cpus: float) -> int:
    return max(int(CFS_PERIOD_US * cpus), MIN_CFS_QUOTA_US)


def memory_limit_bytes(mem_mb: float) -> int:
    return max(int(mem_mb * 1024 * 1024), MIN_MEMORY_BYTES)


class IsolationError(Exception):
    pass


def _write(path: str, value: str | int) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _keyed(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in _read(path).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out


def _int_file(path: str) -> int | None:
    try:
        text = _read(path).strip()
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def v1_mounts(mountinfo: str = "/proc/self/mountinfo") -> dict[str, str]:
    """Subsystem -> mount point of every cgroups v1 hierarchy (``cpu,cpuacct`` share one when co-mounted)."""
    mounts: dict[str, str] = {}
    try:
        lines = _read(mountinfo).splitlines()
    except OSError:
        return mounts
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] != "cgroup":
            continue
        for option in tail[2].split(","):
            mounts.setdefault(option, fields[4])
    return mounts


class Isolator:
    """No enforcement (``posix/cpu,posix/mem``): limits are only accounted, from /proc."""

    name = "posix"

    def prepare(self, container_id: str, cpus: float, mem_mb: float) -> list[str]:
        """Create the container's cgroups with its limits; answer the ``cgroup.procs`` files its process joins."""
        return []

    def update(self, container_id: str, cpus: float, mem_mb: float) -> None:
        """New limits for a live container (an executor that got another task)."""

    def pids(self, container_id: str) -> list[int]:
        return []

    def oom_killed(self, container_id: str) -> bool:
        return False

    def max_memory_bytes(self, container_id: str) -> int | None:
        return None

    def statistics(self, container_id: str) -> dict[str, Any] | None:
        return None

    def destroy(self, container_id: str) -> None:
        """Kill whatever is left in the container, then remove its cgroups."""

    def containers(self) -> list[str]:
        """Container ids that have cgroups here (orphans are found this way after a restart)."""
        return []


class CgroupsV1(Isolator):
    name = "cgroups"

    def __init__(self, mounts: dict[str, str], root: str = "mesolite", enable_cfs: bool = False) -> None:
        self.root = root
        self.enable_cfs = enable_cfs
        self.mounts = {s: mounts[s] for s in ("cpu", "cpuacct", "memory") if s in mounts}
        if "cpu" not in self.mounts or "memory" not in self.mounts:
            raise IsolationError("cgroups v1 needs the cpu and memory hierarchies mounted")
        for hierarchy in set(self.mounts.values()):
            os.makedirs(os.path.join(hierarchy, root), exist_ok=True)

    def _dirs(self, container_id: str) -> dict[str, str]:
        return {s: os.path.join(m, self.root, container_id) for s, m in self.mounts.items()}

    def prepare(self, container_id: str, cpus: float, mem_mb: float) -> list[str]:
        dirs = self._dirs(container_id)
        for path in set(dirs.values()):
            os.makedirs(path, exist_ok=True)
        self.update(container_id, cpus, mem_mb)
        return sorted({os.path.join(p, "cgroup.procs") for p in dirs.values()})

    def update(self, container_id: str, cpus: float, mem_mb: float) -> None:
        dirs = self._dirs(container_id)
        _write(os.path.join(dirs["cpu"], "cpu.shares"), cpu_shares(cpus))
        if self.enable_cfs:
            _write(os.path.join(dirs["cpu"], "cpu.cfs_period_us"), CFS_PERIOD_US)
            _write(os.path.join(dirs["cpu"], "cpu.cfs_quota_us"), cfs_quota_us(cpus))
        limit = memory_limit_bytes(mem_mb)
        _write(os.path.join(dirs["memory"], "memory.soft_limit_in_bytes"), limit)
        try:
            _write(os.path.join(dirs["memory"], "memory.limit_in_bytes"), limit)
        except OSError as exc:  # lowering below current usage: the kernel refuses with EBUSY
            if exc.errno != errno.EBUSY:
                raise

    def pids(self, container_id: str) -> list[int]:
        try:
            text = _read(os.path.join(self._dirs(container_id)["memory"], "cgroup.procs"))
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def oom_killed(self, container_id: str) -> bool:
        oom = _keyed(os.path.join(self._dirs(container_id)["memory"], "memory.oom_control"))
        return oom.get("oom_kill", 0) > 0

    def max_memory_bytes(self, container_id: str) -> int | None:
        return _int_file(os.path.join(self._dirs(container_id)["memory"], "memory.max_usage_in_bytes"))

    def statistics(self, container_id: str) -> dict[str, Any] | None:
        dirs = self._dirs(container_id)
        if not os.path.isdir(dirs["memory"]):
            return None
        memory = _keyed(os.path.join(dirs["memory"], "memory.stat"))
        stats: dict[str, Any] = {
            "timestamp": time.time(),
            "mem_rss_bytes": memory.get("total_rss", memory.get("rss", 0)),
            "mem_cache_bytes": memory.get("total_cache", memory.get("cache", 0)),
            "mem_total_bytes": _int_file(os.path.join(dirs["memory"], "memory.usage_in_bytes")) or 0,
            "mem_limit_bytes": _int_file(os.path.join(dirs["memory"], "memory.limit_in_bytes")) or 0,
            "processes": len(self.pids(container_id)),
        }
        if "cpuacct" in dirs:
            ticks = _keyed(os.path.join(dirs["cpuacct"], "cpuacct.stat"))
            stats["cpus_user_time_secs"] = ticks.get("user", 0) / _CLOCK_TICKS
            stats["cpus_system_time_secs"] = ticks.get("system", 0) / _CLOCK_TICKS
        throttling = _keyed(os.path.join(dirs["cpu"], "cpu.stat"))
        stats["cpus_nr_periods"] = throttling.get("nr_periods", 0)
        stats["cpus_nr_throttled"] = throttling.get("nr_throttled", 0)
        stats["cpus_throttled_time_secs"] = throttling.get("throttled_time", 0) / 1e9
        return stats

    def destroy(self, container_id: str) -> None:
        _kill_and_remove(self.pids, container_id, sorted(set(self._dirs(container_id).values())))

    def containers(self) -> list[str]:
        base = os.path.join(self.mounts["memory"], self.root)
        try:
            return [e for e in os.listdir(base) if os.path.isdir(os.path.join(base, e))]
        except OSError:
            return []


class CgroupsV2(Isolator):
    """The unified hierarchy: one directory, ``cpu.weight`` (shares mapped as systemd does), ``cpu.max``,
    ``memory.max``, OOM kills counted in ``memory.events``."""

    name = "cgroups"

    def __init__(self, mount: str = "/sys/fs/cgroup", root: str = "mesolite", enable_cfs: bool = False) -> None:
        self.base = os.path.join(mount, root)
        self.enable_cfs = enable_cfs
        os.makedirs(self.base, exist_ok=True)
        for parent in (mount, self.base):
            try:
                _write(os.path.join(parent, "cgroup.subtree_control"), "+cpu +memory")
            except OSError as exc:
                raise IsolationError(f"cannot enable the cpu and memory controllers in {parent}: {exc}") from None

    def _dir(self, container_id: str) -> str:
        return os.path.join(self.base, container_id)

    def prepare(self, container_id: str, cpus: float, mem_mb: float) -> list[str]:
        os.makedirs(self._dir(container_id), exist_ok=True)
        self.update(container_id, cpus, mem_mb)
        return [os.path.join(self._dir(container_id), "cgroup.procs")]

    def update(self, container_id: str, cpus: float, mem_mb: float) -> None:
        path = self._dir(container_id)
        shares = cpu_shares(cpus)
        _write(os.path.join(path, "cpu.weight"), 1 + ((shares - 2) * 9999) // 262142)
        if self.enable_cfs:
            _write(os.path.join(path, "cpu.max"), f"{cfs_quota_us(cpus)} {CFS_PERIOD_US}")
        limit = memory_limit_bytes(mem_mb)
        _write(os.path.join(path, "memory.low"), limit)
        _write(os.path.join(path, "memory.max"), limit)

    def pids(self, container_id: str) -> list[int]:
        try:
            return [int(p) for p in _read(os.path.join(self._dir(container_id), "cgroup.procs")).split()]
        except OSError:
            return []

    def oom_killed(self, container_id: str) -> bool:
        return _keyed(os.path.join(self._dir(container_id), "memory.events")).get("oom_kill", 0) > 0

    def max_memory_bytes(self, container_id: str) -> int | None:
        return _int_file(os.path.join(self._dir(container_id), "memory.peak")) or _int_file(
            os.path.join(self._dir(container_id), "memory.current")
        )

    def statistics(self, container_id: str) -> dict[str, Any] | None:
        path = self._dir(container_id)
        if not os.path.isdir(path):
            return None
        cpu = _keyed(os.path.join(path, "cpu.stat"))
        memory = _keyed(os.path.join(path, "memory.stat"))
        limit = (
            _read(os.path.join(path, "memory.max")).strip() if os.path.exists(os.path.join(path, "memory.max")) else ""
        )
        return {
            "timestamp": time.time(),
            "cpus_user_time_secs": cpu.get("user_usec", 0) / 1e6,
            "cpus_system_time_secs": cpu.get("system_usec", 0) / 1e6,
            "cpus_nr_periods": cpu.get("nr_periods", 0),
            "cpus_nr_throttled": cpu.get("nr_throttled", 0),
            "cpus_throttled_time_secs": cpu.get("throttled_usec", 0) / 1e6,
            "mem_rss_bytes": memory.get("anon", 0),
            "mem_cache_bytes": memory.get("file", 0),
            "mem_total_bytes": _int_file(os.path.join(path, "memory.current")) or 0,
            "mem_limit_bytes": int(limit) if limit.isdigit() else 0,
            "processes": len(self.pids(container_id)),
        }

    def destroy(self, container_id: str) -> None:
        _kill_and_remove(self.pids, container_id, [self._dir(container_id)])

    def containers(self) -> list[str]:
        try:
            return [e for e in os.listdir(self.base) if os.path.isdir(os.path.join(self.base, e))]
        except OSError:
            return []


def _kill_and_remove(pids: Any, container_id: str, directories: list[str]) -> None:
    """SIGKILL until the cgroup is empty (a fork bomb refills it), then rmdir; an empty cgroup is removable."""
    deadline = time.monotonic() + 10
    while True:
        alive = pids(container_id)
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            log.warning("container %s still has processes %s after 10 s of SIGKILL", container_id, alive)
            break
        time.sleep(0.02)
    for path in directories:
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    log.warning("could not remove cgroup %s: %s", path, exc)
                    break
                time.sleep(0.02)  # the last process is exiting


def create_isolator(isolation: str, cgroups_root: str = "mesolite", enable_cfs: bool = False) -> Isolator:
    """The isolator ``--isolation`` asks for; ``auto`` means cgroups where they are writable, posix otherwise."""
    # Only the resource isolators are this module's; filesystem/linux, docker/runtime, namespaces/pid, volume/* and
    # the like are the pre-exec step's (images/runtime.py).
    wanted = {part.strip() for part in isolation.split(",") if part.strip().startswith("cgroups/")}
    if not wanted and isolation != "auto":
        return Isolator()
    try:
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            return CgroupsV2("/sys/fs/cgroup", cgroups_root, enable_cfs)
        return CgroupsV1(v1_mounts(), cgroups_root, enable_cfs)
    except (OSError, IsolationError) as exc:
        if isolation == "auto":
            log.warning("cgroups are not usable here (%s): --isolation=posix/cpu,posix/mem, limits not enforced", exc)
            return Isolator()
        raise IsolationError(f"--isolation={isolation} needs writable cgroups: {exc}") from None
