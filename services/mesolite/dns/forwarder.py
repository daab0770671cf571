"""Forwarding queries outside the Mesos domain (upstream ``exchanger/forwarder.go``): resolvers tried in order over
the client's own transport, the first reply passed back unchanged (a truncated one included, mesos-dns#457), REFUSED
when there is nowhere to forward, SERVFAIL when every resolver failed. No cache, as upstream.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import time

from dnslib import RCODE, DNSRecord

from mesolite.dns.config import normalize_resolver, split_host_port
from mesolite.dns.resolver import Forward, pack_fitted, rcode_reply

log = logging.getLogger(__name__)


def forward(job: Forward, timeout: float, set_tc: bool) -> bytes:
    if not job.resolvers:
        return rcode_reply(job.request, RCODE.REFUSED)
    timeout = timeout or 5.0
    for resolver in job.resolvers:
        host, port = split_host_port(normalize_resolver(resolver))
        try:
            reply = exchange(job.data, host, int(port), job.tcp, timeout)
        except (OSError, ValueError) as exc:
            log.info("forwarding %s to %s failed: %s", job.request.q.qname, resolver, exc)
            continue
        return fit(reply, job.max_size, set_tc) or rcode_reply(job.request, RCODE.SERVFAIL)
    return rcode_reply(job.request, RCODE.SERVFAIL)


def exchange(data: bytes, host: str, port: int, tcp: bool, timeout: float) -> bytes:
    """One query to one server; a fresh id upstream (the client's is restored) so a stray reply cannot match."""
    query_id = random.getrandbits(16).to_bytes(2, "big")
    query = query_id + data[2:]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    if tcp:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!H", len(query)) + query)
            length = struct.unpack("!H", _read_exact(sock, 2, deadline))[0]
            reply = _read_exact(sock, length, deadline)
        if reply[:2] != query_id:
            raise ValueError("reply id mismatch")
        return data[:2] + reply[2:]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.send(query)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(remaining)
            reply = sock.recv(65535)
            if len(reply) >= 12 and reply[:2] == query_id and reply[2] & 0x80:
                return data[:2] + reply[2:]


def _read_exact(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)


def fit(reply: bytes, max_size: int, set_tc: bool) -> bytes | None:
    """Upstream truncates forwarded replies to the client's limit too; None when such a reply does not parse."""
    if len(reply) <= max_size:
        if not set_tc and reply[2] & 0x02:
            reply = reply[:2] + bytes([reply[2] & ~0x02 & 0xFF]) + reply[3:]
        return reply
    try:
        record = DNSRecord.parse(reply)
    except Exception:  # noqa: BLE001 - dnslib raises several types on malformed input
        return None
    return pack_fitted(record, max_size, set_tc)
