"""The cgroups isolators' arithmetic and file layout (v2 on a fake unified hierarchy: this host runs v1)."""

from __future__ import annotations

from pathlib import Path

from mesolite.agent.cgroups import CgroupsV2, cfs_quota_us, cpu_shares, memory_limit_bytes, v1_mounts


def test_mesos_limits() -> None:
    assert cpu_shares(0.5) == 512 and cpu_shares(2) == 2048 and cpu_shares(0.0001) == 2
    assert cfs_quota_us(1.5) == 150_000 and cfs_quota_us(0.001) == 1_000
    assert memory_limit_bytes(128) == 128 * 1024**2 and memory_limit_bytes(1) == 32 * 1024**2


def test_v1_mounts_come_from_mountinfo(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    assert v1_mounts(str(mountinfo)) == {
        "rw": "/sys/fs/cgroup/cpu,cpuacct",
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory",
    }


def test_v2_writes_weight_max_and_reads_oom_kills(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("")
    isolator = CgroupsV2(str(tmp_path), "mesolite", enable_cfs=True)
    assert (tmp_path / "mesolite" / "cgroup.subtree_control").read_text() == "+cpu +memory"
    procs = isolator.prepare("c1", cpus=2.0, mem_mb=64)
    container = tmp_path / "mesolite" / "c1"
    assert procs == [str(container / "cgroup.procs")]
    assert (container / "cpu.weight").read_text() == str(1 + ((2048 - 2) * 9999) // 262142)
    assert (container / "cpu.max").read_text() == "200000 100000"
    assert (container / "memory.max").read_text() == str(64 * 1024**2)
    (container / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not isolator.oom_killed("c1")
    (container / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert isolator.oom_killed("c1")
    assert isolator.containers() == ["c1"]
