"""The container init: the last step before a Mesos-containerizer task execs, the part ``mesos-containerizer launch``
plays upstream (src/slave/containerizer/mesos/launch.cpp).

Run as ``python -m mesolite.agent.container_init SPEC.json`` (as root, in the container's session and cgroups) in
place of the task's command when the task has an image, secrets or volumes. Given a root filesystem, volumes, a user,
an environment and a command, it:

1. resolves the task's secrets (``--secrets_dir``) into memory;
2. unshares a mount namespace (mounts made here never reach the host: ``/`` becomes a recursive slave) and, with
   ``namespaces/pid``, a pid namespace, whose first process (pid 1) it forks;
3. in the rootfs: binds the sandbox at ``/mnt/mesos/sandbox``, mounts ``/proc`` (of the new pid namespace), a
   read-only ``/sys``, a small ``/dev`` (tmpfs with the usual devices, ``pts``, ``shm``), the host's
   ``/etc/{resolv.conf,hosts,hostname}`` (host network, as Mesos' network isolator does), the volumes and the secret
   files (an in-memory tmpfs of this namespace), then ``pivot_root``\\s into it and detaches the old root;
4. drops to the task's user (uid, gid and groups resolved on the host by the agent) and execs the command.

Pid 1 reaps every orphan of the container and ends with the task, taking the namespace's other processes with it.
The process the supervisor started (outside the new pid namespace) waits for pid 1 and ends the way the task ended:
the same exit code, or killed by the same signal. Signals reach the task directly (one process group), and a
SIGKILL of that group kills pid 1's parent, which kills pid 1 (``PR_SET_PDEATHSIG``), which ends the namespace.

Standard library only, and nothing is imported after the ``pivot_root``. A failure before the exec is written to
the task's stderr and to ``error_file`` (which the agent turns into the TASK_FAILED message), and exits 127.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import struct
import sys
from typing import Any

from mesolite.agent.secrets import SecretError, SecretResolver

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
HOST_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/hostname")
EXIT_SETUP_FAILED = 127

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class InitError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise InitError(f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or fstype or ''} on {target}",
    )


def bind(source: str, target: str, readonly: bool = False) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def pivot_root(rootfs: str) -> None:
    """Make ``rootfs`` the root of this mount namespace and detach the old one (pivot_root(".", ".") as runc)."""
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    os.chdir(rootfs)
    if number is None:  # an architecture whose syscall number we do not know: chroot does the same for the task
        mount(rootfs, "/", None, 1 << 13)  # MS_MOVE
        os.chroot(".")
    else:
        _check(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
        _check(_libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "detach the old root")
    os.chdir("/")


# ---------------------------------------------------------------------------------------------- paths in the rootfs


def resolve_in(rootfs: str, path: str) -> str:
    """``path`` inside ``rootfs`` with symlinks resolved as the container will see them (an absolute link is relative
    to the rootfs), so that a mount never lands outside it."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(rootfs, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise InitError(f"too many levels of symbolic links in '{path}'")
            link = os.readlink(candidate)
            if link.startswith("/"):
                resolved = []
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(rootfs, *resolved)


def _mount_point(target: str, directory: bool) -> None:
    """Create what a bind mount needs at ``target``: a directory, or an empty file for a file."""
    if os.path.islink(target):
        os.unlink(target)
    if directory:
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass


# ---------------------------------------------------------------------------------------------- the steps


def resolve_secrets(spec: dict[str, Any]) -> tuple[dict[str, str], list[tuple[bytes, dict[str, Any]]]]:
    resolver = SecretResolver(spec.get("secrets_dir"))
    env: dict[str, str] = {}
    for item in spec.get("secret_env") or []:
        value = resolver.resolve(item["secret"])
        if b"\0" in value:
            raise SecretError(f"Environment variable '{item['name']}' would contain a NUL byte")
        env[str(item["name"])] = value.decode("utf-8", errors="surrogateescape")
    files = [(resolver.resolve(item["secret"]), item) for item in spec.get("secret_files") or []]
    return env, files


def prepare_rootfs(spec: dict[str, Any], files: list[tuple[bytes, dict[str, Any]]]) -> None:
    rootfs = os.path.realpath(spec["rootfs"])
    if not os.path.ismount(rootfs):
        bind(rootfs, rootfs)  # pivot_root needs a mount point (the copy backend's rootfs is a directory)
    sandbox = resolve_in(rootfs, spec["sandbox_path"])
    _mount_point(sandbox, directory=True)
    bind(spec["sandbox"], sandbox)
    proc = resolve_in(rootfs, "/proc")
    _mount_point(proc, directory=True)
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    sys_dir = resolve_in(rootfs, "/sys")
    _mount_point(sys_dir, directory=True)
    mount("sysfs", sys_dir, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _prepare_dev(resolve_in(rootfs, "/dev"))
    tmp = resolve_in(rootfs, "/tmp")
    if not os.path.exists(tmp):
        os.makedirs(tmp)
        os.chmod(tmp, 0o1777)
    for host_file in HOST_FILES:
        if os.path.isfile(host_file):
            target = resolve_in(rootfs, host_file)
            _mount_point(target, directory=False)
            bind(host_file, target)
    for volume in spec.get("mounts") or []:
        target = resolve_in(rootfs, _container_path(volume["target"], spec["sandbox_path"]))
        _mount_point(target, directory=os.path.isdir(volume["source"]))
        bind(volume["source"], target, readonly=bool(volume.get("readonly")))
    _secret_files(files, lambda path: resolve_in(rootfs, _container_path(path, spec["sandbox_path"])), sandbox, spec)


def prepare_host(spec: dict[str, Any], files: list[tuple[bytes, dict[str, Any]]], pid_namespace: bool) -> None:
    """No image: the task keeps the host's filesystem, with its own /proc (pid namespace), volumes and secrets."""
    if pid_namespace:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    sandbox = spec["sandbox"]
    for volume in spec.get("mounts") or []:
        target = volume["target"] if volume["target"].startswith("/") else os.path.join(sandbox, volume["target"])
        _mount_point(target, directory=os.path.isdir(volume["source"]))
        bind(volume["source"], target, readonly=bool(volume.get("readonly")))
    _secret_files(files, lambda path: path if path.startswith("/") else os.path.join(sandbox, path), sandbox, spec)


def _container_path(path: str, sandbox_path: str) -> str:
    return path if path.startswith("/") else os.path.join(sandbox_path, path)


def _prepare_dev(dev: str) -> None:
    _mount_point(dev, directory=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _mount_point(os.path.join(dev, name), directory=False)
            bind(f"/dev/{name}", os.path.join(dev, name))
    os.makedirs(os.path.join(dev, "pts"))
    mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.makedirs(os.path.join(dev, "shm"))
    mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, os.path.join(dev, name))
    os.symlink("/proc/self/fd/1", os.path.join(dev, "stdout"))
    os.symlink("/proc/self/fd/2", os.path.join(dev, "stderr"))


def _secret_files(files: list[tuple[bytes, dict[str, Any]]], where: Any, sandbox: str, spec: dict[str, Any]) -> None:
    """Secret files live in a tmpfs of this mount namespace only (Mesos: a ramfs ``.secret-<uuid>`` in the sandbox)
    and are bind-mounted onto their targets, owned by the task's user."""
    if not files:
        return
    store = os.path.join(sandbox, f".secret-{os.urandom(8).hex()}")
    os.makedirs(store, mode=0o700)
    mount("tmpfs", store, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1024k")
    user = spec.get("user")
    for index, (data, item) in enumerate(files):
        path = os.path.join(store, str(index))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        if user:
            os.chown(path, int(user["uid"]), int(user["gid"]))
        target = where(item["target"])
        _mount_point(target, directory=False)
        bind(path, target, readonly=bool(item.get("readonly", True)))
    if user:
        os.chown(store, int(user["uid"]), int(user["gid"]))


def exec_task(spec: dict[str, Any], env: dict[str, str]) -> None:
    """Become the task: default signal dispositions, the task's user, its working directory, its command."""
    for sig in FORWARDED + (signal.SIGPIPE,):
        signal.signal(sig, signal.SIG_DFL)
    user = spec.get("user")
    if user:
        os.setgroups([int(g) for g in user.get("groups") or [user["gid"]]])
        os.setgid(int(user["gid"]))
        os.setuid(int(user["uid"]))
    cwd = spec.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise InitError(f"Failed to chdir into the working directory '{cwd}': {exc.strerror}") from None
    argv = [str(a) for a in spec["argv"]]
    executable = str(spec.get("executable") or argv[0])
    try:
        if "/" in executable:
            os.execve(executable, argv, env)
        os.execvpe(executable, argv, env)
    except OSError as exc:
        raise InitError(f"Failed to execute '{executable}': {exc.strerror}") from None


# ---------------------------------------------------------------------------------------------- processes


def _fail(error_fd: int | None, message: str) -> None:
    text = f"Failed to launch container: {message}"
    try:
        os.write(2, f"mesolite container init: {text}\n".encode())
    except OSError:
        pass
    if error_fd is not None:
        try:
            os.write(error_fd, text.encode())
        except OSError:
            pass
    os._exit(EXIT_SETUP_FAILED)


def _setup_and_exec(spec: dict[str, Any], env: dict[str, str], files: list[tuple[bytes, dict[str, Any]]]) -> None:
    if spec.get("rootfs"):
        prepare_rootfs(spec, files)
        pivot_root(os.path.realpath(spec["rootfs"]))
    elif spec.get("mount_namespace"):
        prepare_host(spec, files, bool(spec.get("pid_namespace")))
    exec_task(spec, env)


def _pid1(spec: dict[str, Any], env: dict[str, str], files: list[tuple[bytes, dict[str, Any]]], report: int) -> None:
    """Pid 1 of the container: set it up, start the task, reap everything, report how the task ended."""
    error_fd = spec.get("_error_fd")
    try:
        if spec.get("rootfs"):
            prepare_rootfs(spec, files)
            pivot_root(os.path.realpath(spec["rootfs"]))
        elif spec.get("mount_namespace"):
            prepare_host(spec, files, True)
    except (InitError, OSError) as exc:
        _fail(error_fd, str(exc))
    task = os.fork()
    if task == 0:
        try:
            exec_task(spec, env)
        except (InitError, OSError) as exc:
            _fail(error_fd, str(exc))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(EXIT_SETUP_FAILED)
        except InterruptedError:
            continue
        if pid == task:
            os.write(report, struct.pack("i", status))
            os._exit(0)  # the kernel ends whatever else runs in the namespace


def run(spec: dict[str, Any]) -> None:
    error_fd = None
    if spec.get("error_file"):
        error_fd = os.open(spec["error_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        spec["_error_fd"] = error_fd
    try:
        secret_env, files = resolve_secrets(spec)
        env = {**{str(k): str(v) for k, v in spec["env"].items()}, **secret_env}
        flags = CLONE_NEWNS if spec.get("mount_namespace") or spec.get("rootfs") else 0
        if spec.get("pid_namespace"):
            flags |= CLONE_NEWPID | CLONE_NEWNS
            spec["mount_namespace"] = True
        if flags:
            unshare(flags)
            mount(None, "/", None, MS_REC | MS_SLAVE)
    except (InitError, SecretError, OSError, KeyError, ValueError) as exc:
        _fail(error_fd, str(exc))
        return
    if not spec.get("pid_namespace"):
        try:
            _setup_and_exec(spec, env, files)
        except (InitError, OSError) as exc:
            _fail(error_fd, str(exc))
        return
    _outer(spec, env, files, error_fd)


def _outer(
    spec: dict[str, Any], env: dict[str, str], files: list[tuple[bytes, dict[str, Any]]], error_fd: int | None
) -> None:
    """Fork pid 1 of the new pid namespace, wait for it, and end the way the task ended."""
    report_r, report_w = os.pipe()
    sync_r, sync_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(report_r)
        os.close(sync_w)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.read(sync_r, 1) != b"x":  # our parent died before the death signal was armed
            os._exit(EXIT_SETUP_FAILED)
        os.close(sync_r)
        _pid1(spec, env, files, report_w)
        os._exit(EXIT_SETUP_FAILED)
    os.close(report_w)
    os.close(sync_r)
    for sig in FORWARDED:  # the task gets these itself (same process group); we must outlive it to report it
        signal.signal(sig, signal.SIG_IGN)
    os.write(sync_w, b"x")
    os.close(sync_w)
    data = b""
    while len(data) < 4:
        chunk = os.read(report_r, 4 - len(data))
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(child, 0)
    if len(data) == 4:
        status = struct.unpack("i", data)[0]
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else EXIT_SETUP_FAILED)


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        spec = json.load(handle)
    if not isinstance(spec, dict):
        return EXIT_SETUP_FAILED
    run(spec)
    return EXIT_SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
