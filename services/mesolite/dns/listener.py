"""DNS over UDP and TCP, in the service process or in worker processes that share the port.

One Python process answers far fewer packets than the cores it runs on could, so ``mesolite dns`` binds one UDP and
one TCP socket per worker with SO_REUSEPORT (the kernel spreads clients over them) and hands each pair to a worker
process (``python -m mesolite.dns.listener``) with a control socket. Over the control socket the service sends the
config once and every new record set after that; a worker exits when the control socket closes, so workers never
outlive their service. The receive loop stays tight: cached answers are sent inline, forwarding runs on a thread pool
(it may wait ``timeout`` seconds on an upstream), TCP connections get a thread each.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mesolite.dns.config import DNSConfig
from mesolite.dns.forwarder import forward
from mesolite.dns.generator import RecordSet
from mesolite.dns.resolver import Forward, Resolver

log = logging.getLogger(__name__)

_TCP_IDLE = 10.0
_TCP_CONNECTIONS = 256
_DRAIN = 64  # packets read per turn before queued queries get their share
_TURN = 8  # queued queries answered per turn
_PENDING = 4096  # queued queries kept (the newest)


def bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on ``host:port``, both in the port's SO_REUSEPORT group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        for sock in (udp, tcp):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # dnsperf-style bursts overflow the default receive buffer long before the CPU is busy.
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp.bind((host, port))
        tcp.bind((host, port))
        tcp.listen(256)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


class DNSServer:
    """The receive loops over one socket pair, answering with ``resolver``."""

    def __init__(self, resolver: Resolver, udp: socket.socket, tcp: socket.socket) -> None:
        self.resolver = resolver
        self.udp = udp
        self.tcp = tcp
        self.config = resolver.config
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dns-forward")
        self._connections = threading.BoundedSemaphore(_TCP_CONNECTIONS)
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self.serve_udp, "dns-udp"), (self._serve_tcp, "dns-tcp")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopped.set()
        for sock in (self.udp, self.tcp):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recvfrom/accept
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in (self.udp, self.tcp):
            sock.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def serve_udp(self) -> None:
        """Answers exact repeats the moment they are read and queues the rest, so a flood of new names waits in
        this worker's queue instead of in front of the names clients keep asking.

        Each turn reads whatever has arrived (up to ``_DRAIN`` packets, without blocking), answering repeats from
        the cache at once, then answers up to ``_TURN`` queued queries. The queue keeps the newest ``_PENDING``
        queries; older ones are dropped, as the kernel would drop them from a full socket buffer.
        """
        recv, send, resolver = self.udp.recvfrom, self.udp.sendto, self.resolver
        pending: deque[tuple[bytes, Any]] = deque(maxlen=_PENDING)
        while True:
            try:
                if pending:
                    data, addr = recv(65535, socket.MSG_DONTWAIT)
                else:
                    data, addr = recv(65535)
                drained = 0
                while True:
                    zone = resolver.zone
                    hit = zone.udp.get(data[2:]) if zone is not None else None
                    if type(hit) is bytes:
                        send(data[:2] + hit, addr)
                    elif hit is not None:
                        self._answer_udp(data, addr)  # a repeat with rotating orders: still a dict lookup
                    elif data:
                        pending.append((data, addr))
                    drained += 1
                    if drained >= _DRAIN:
                        break
                    data, addr = recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            except OSError:
                if self._stopped.is_set():
                    return
                if not pending:
                    continue
            for _ in range(min(_TURN, len(pending))):
                self._answer_udp(*pending.popleft())
            if not pending and self._stopped.is_set():
                return

    def _answer_udp(self, data: bytes, addr: Any) -> None:
        try:
            reply = self.resolver.answer(data, False)
            if type(reply) is bytes:
                self.udp.sendto(reply, addr)
            elif isinstance(reply, Forward):
                self._pool.submit(self._forward_udp, reply, addr)
        except Exception:  # one bad packet must never stop the loop
            log.exception("error answering a UDP query")

    def _forward_udp(self, job: Forward, addr: Any) -> None:
        try:
            self.udp.sendto(forward(job, self.config.Timeout, self.config.SetTruncateBit), addr)
        except OSError as exc:
            log.info("could not send a forwarded reply: %s", exc)

    def _serve_tcp(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                if self._stopped.is_set():
                    return
                continue
            if not self._connections.acquire(blocking=False):
                conn.close()  # too many open connections: shed load rather than spawn without bound
                continue
            threading.Thread(target=self._tcp_connection, args=(conn,), name="dns-tcp-conn", daemon=True).start()

    def _tcp_connection(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(_TCP_IDLE)
            while not self._stopped.is_set():
                header = _recv_exact(conn, 2)
                if header is None:
                    return
                data = _recv_exact(conn, struct.unpack("!H", header)[0])
                if data is None:
                    return
                reply = self.resolver.answer(data, True)
                if isinstance(reply, Forward):
                    reply = forward(reply, self.config.Timeout, self.config.SetTruncateBit)
                if reply is None:
                    return  # nothing sensible to say: close, as a server does on garbage
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, ValueError):
            return
        except Exception:  # one bad connection must never take the server down
            log.exception("error on a TCP connection")
        finally:
            conn.close()
            self._connections.release()


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


# The control channel: 4-byte big-endian length, then a JSON object.


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack("!I", len(body)) + body)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    header = _recv_exact(sock, 4)
    if header is None:
        return None
    body = _recv_exact(sock, struct.unpack("!I", header)[0])
    return None if body is None else dict(json.loads(body))


class Worker:
    """The service's handle on one worker process and its socket pair (kept, so a dead worker can be replaced)."""

    def __init__(self, udp: socket.socket, tcp: socket.socket, config: DNSConfig) -> None:
        self.udp, self.tcp, self.config = udp, tcp, config
        self.process: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self._lock = threading.Lock()

    def spawn(self, records: RecordSet | None) -> None:
        if self.control is not None:
            self.control.close()  # a replaced worker's channel
        parent, child = socket.socketpair()
        fds = (child.fileno(), self.udp.fileno(), self.tcp.fileno())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mesolite.dns.listener", *map(str, fds)], pass_fds=fds, close_fds=True
        )
        child.close()
        self.control = parent
        # The records travel with the config so that a replacement worker never answers before it has them.
        first: dict[str, Any] = {"config": self.config.to_dict()}
        if records is not None:
            first["records"] = records.to_wire()
        with self._lock:
            send_message(parent, first)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_records(self, records: RecordSet) -> None:
        with self._lock:
            if self.control is None:
                return
            try:
                send_message(self.control, {"records": records.to_wire()})
            except OSError as exc:
                log.warning("DNS worker %s did not take the new records: %s", self.process and self.process.pid, exc)

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()  # the worker exits on EOF
            self.control = None
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def close_sockets(self) -> None:
        self.udp.close()
        self.tcp.close()


def worker_stats(resolver: Resolver) -> str:
    """What a worker holds (its tables' sizes, its memory), logged on SIGUSR1: ``bench/dns.py`` reads it to show
    that floods of names leave both bounded."""
    stats: dict[str, Any] = resolver.zone.stats() if resolver.zone is not None else {}
    stats["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        status = Path("/proc/self/status").read_text()
        stats["rss_kb"] = int(status.split("VmRSS:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return json.dumps(stats, separators=(",", ":"))


def worker_main(argv: list[str]) -> int:
    """A worker process: serve the inherited sockets, take record sets from the control socket, exit on its EOF."""
    control_fd, udp_fd, tcp_fd = (int(a) for a in argv)
    control = socket.socket(fileno=control_fd)
    udp = socket.socket(fileno=udp_fd)
    tcp = socket.socket(fileno=tcp_fd)
    first = recv_message(control)
    if first is None or "config" not in first:
        return 1
    config = DNSConfig.from_dict(first["config"])
    logging.basicConfig(level=os.environ.get("MESOLITE_LOG_LEVEL", "WARNING").upper())
    resolver = Resolver(config)
    signal.signal(
        signal.SIGUSR1, lambda *_: log.warning("dns worker %d stats: %s", os.getpid(), worker_stats(resolver))
    )
    message: dict[str, Any] | None = first
    server = DNSServer(resolver, udp, tcp)
    while message is not None:
        if "records" in message:
            resolver.load(RecordSet.from_wire(message["records"]))
        if message is first:
            server.start()
        message = recv_message(control)
    # No server.stop(): the sockets are shared with the service, which may hand them to a new worker.
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
