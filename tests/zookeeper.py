"""A real ZooKeeper (Debian's package) for tests: single node or a small ensemble on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from tests.cluster import free_port

# Debian's zookeeper package (scripts/install-system-deps.sh); ZOOKEEPER_CLASSPATH points elsewhere.
CLASSPATH = os.environ.get("ZOOKEEPER_CLASSPATH", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar")
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


class ZooKeeperNode:
    def __init__(self, base: Path, myid: int, client_port: int, ensemble: list[tuple[int, int, int]]) -> None:
        self.dir = base / f"zk{myid}"
        self.myid = myid
        self.port = client_port
        self.process: subprocess.Popen[bytes] | None = None
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(f"{myid}\n")
        lines = [
            "tickTime=500",
            "initLimit=20",
            "syncLimit=10",
            "minSessionTimeout=1000",
            f"dataDir={data}",
            f"clientPort={client_port}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,stat",
        ]
        if len(ensemble) > 1:
            lines += [f"server.{i + 1}=127.0.0.1:{peer}:{election}" for i, (_, peer, election) in enumerate(ensemble)]
        self.config = self.dir / "zoo.cfg"
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        log = open(self.dir / "zookeeper.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                "-cp",
                CLASSPATH,
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-Dzookeeper.admin.enableServer=false",
                MAIN,
                str(self.config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def check_running(self) -> None:
        """A node that exited while starting (a bad config, a busy port) fails the start at once, with its log."""
        if self.process is not None and self.process.poll() is not None:
            tail = (self.dir / "zookeeper.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"ZooKeeper node {self.myid} exited with {self.process.returncode}:\n{tail}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=20)


class ZooKeeper:
    """``hosts`` is the connect string; ``url(path)`` the ``zk://`` URL services take."""

    def __init__(self, base: Path, size: int = 1) -> None:
        ensemble = [(free_port(), free_port(), free_port()) for _ in range(size)]
        self.nodes = [ZooKeeperNode(base, i + 1, client, ensemble) for i, (client, _, _) in enumerate(ensemble)]
        self.hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def url(self, path: str) -> str:
        return f"zk://{self.hosts}/{path.strip('/')}"

    def start(self, timeout: float = 60.0) -> ZooKeeper:
        for node in self.nodes:
            node.start()
        client = KazooClient(hosts=self.hosts, timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                node.check_running()
            try:
                client.start(timeout=5)
                client.ensure_path("/ready-check")
                break
            except (KazooException, KazooTimeoutError) as exc:
                if time.monotonic() > deadline:
                    log = self.nodes[0].dir / "zookeeper.log"
                    raise TimeoutError(f"ZooKeeper did not start in {timeout:g}s ({exc!r}); see {log}") from None
                time.sleep(0.5)
        client.stop()
        client.close()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
