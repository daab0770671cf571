"""DNS wire format for the fast path: reading a plain query, packing replies, truncating them.

A resolver spends its time in two places when it goes through a general DNS library: parsing the whole message
into objects and packing a reply from objects. Nearly every query a Mesos-DNS server sees has the same shape (one
question, maybe an EDNS OPT record), so :func:`parse_query` reads just that shape straight from the bytes and
leaves anything else to dnslib. :class:`Packer` writes resource records with the same name compression dnslib
uses (first occurrence of each suffix, case-sensitive, SRV targets uncompressed), so fast and slow replies are
the same bytes and can be tested against each other; it only refuses pointers past 0x3FFF, which dnslib would
write wrongly.
"""

from __future__ import annotations

import functools
import random
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mesolite.dns.config import split_host_port

UDP_MIN = 512
MAX_VARIANTS = 8
TYPE_A, TYPE_NS, TYPE_SOA, TYPE_AAAA, TYPE_SRV, TYPE_OPT, TYPE_ANY = 1, 2, 6, 28, 33, 41, 255
CLASS_IN = 1
_POINTER_LIMIT = 0x4000

T = TypeVar("T")


def parse_query(data: bytes) -> tuple[int, int, int, list[int]] | None:
    """``(end of the question section, qtype, UDP size, label offsets)`` of a plain query, else None.

    Plain means: not a response, opcode QUERY, exactly one question whose name has no compression pointer and at
    most 255 bytes, no answer or authority records, and either nothing more or one EDNS OPT record that ends the
    message. Everything else (and anything malformed) is the slow path's to judge. The label offsets are relative to
    the question name (the first is 0), so the caller can find suffixes without walking the name again.
    """
    if len(data) < 17 or data[2] & 0xF8 or data[4:10] != b"\x00\x01\x00\x00\x00\x00":
        return None
    starts = []
    pos = 12
    try:
        length = data[pos]
        while length:
            if length > 63:
                return None  # a pointer or an extended label type: not from a stub resolver
            starts.append(pos - 12)
            pos += length + 1
            length = data[pos]
    except IndexError:
        return None
    if pos > 266:  # the name, with its final zero byte, is longer than 255 bytes
        return None
    end = pos + 5
    qtype = data[pos + 1] << 8 | data[pos + 2] if len(data) >= end else -1
    additional = data[10:12]
    if additional == b"\x00\x00":
        return (end, qtype, UDP_MIN, starts) if len(data) == end else None
    if additional != b"\x00\x01" or len(data) < end + 11 or data[end : end + 3] != b"\x00\x00\x29":
        return None
    pos = end + 11
    if pos + (data[end + 9] << 8 | data[end + 10]) != len(data):
        return None
    while pos < len(data):  # the options must fill the OPT rdata exactly, or dnslib calls it malformed
        pos += 4 + (data[pos + 2] << 8 | data[pos + 3]) if pos + 4 <= len(data) else len(data) + 1
    if pos != len(data):
        return None
    return end, qtype, max(UDP_MIN, data[end + 3] << 8 | data[end + 4]), starts


@functools.lru_cache(maxsize=65536)
def name_wire(name: str) -> bytes | None:
    """A dotted name as wire labels, or None when it cannot be encoded (empty or long labels, over 255 bytes).
    Cached: SRV targets and their addresses name the same hosts over and over while a generation is packed."""
    parts = [p.encode() for p in name.rstrip(".").split(".")] if name not in (".", "") else []
    if not all(0 < len(p) <= 63 for p in parts) or sum(len(p) + 1 for p in parts) > 254:
        return None
    return b"".join(bytes((len(p),)) + p for p in parts) + b"\x00"


def label_starts(wire: bytes) -> list[int]:
    """Offsets of a wire name's labels (the root's zero byte excluded)."""
    starts = []
    pos = 0
    while wire[pos]:
        starts.append(pos)
        pos += wire[pos] + 1
    return starts


def address(value: str, family: int) -> bytes | None:
    """The packed address of an A (AF_INET) or AAAA (AF_INET6) value, or None when it is not one (an agent
    "address" that is a hostname, mesos-dns#509, is skipped rather than answered)."""
    try:
        return socket.inet_pton(family, value)
    except (OSError, ValueError, TypeError):
        return None


def srv_parts(value: str) -> tuple[str, int] | None:
    """(target, port) of an SRV value ``host:port``, or None when it cannot be answered."""
    try:
        host, port = split_host_port(value)
    except ValueError:
        return None
    if not port.isdigit() or int(port) > 65535 or name_wire(host) is None:
        return None
    return host, int(port)


def orders(answers: Sequence[T]) -> list[list[T]]:
    """Shuffled orders of the answers such that each answer (up to eight) leads one of them: clients use answer
    order for load balancing, so a packed reply is kept in several orders and they are served in turn."""
    if len(answers) <= 1:
        return [list(answers)]
    base = list(answers)
    random.shuffle(base)
    result = []
    for lead in base[:MAX_VARIANTS]:
        rest = [a for a in base if a is not lead]
        random.shuffle(rest)
        result.append([lead, *rest])
    return result


def rr_tail(rtype: int, ttl: int, rdata: bytes) -> bytes:
    """A resource record after its owner name: type, class IN, TTL, length and an rdata without names to
    compress (addresses, and SRV whose target is written uncompressed, as dnslib and RFC 2782 do)."""
    return struct.pack("!HHIH", rtype, CLASS_IN, ttl, len(rdata)) + rdata


def srv_rdata(weight: int, port: int, target: str) -> bytes:
    wire = name_wire(target)
    assert wire is not None
    return struct.pack("!HHH", 0, weight, port) + wire


# A record to pack: (owner, what follows it). Owner None is the question's name (always a pointer to offset 12);
# otherwise a wire name to compress. What follows is an ``rr_tail`` or, for records whose rdata holds names to
# compress (SOA, NS), a callable that writes them.
Record = tuple[bytes | None, Any]


class Packer:
    """Writes records after the question with dnslib's compression: every name suffix is remembered at its first
    offset and later occurrences become pointers; the question's suffixes are known from the start.

    ``known`` maps the question's suffixes that may be pointed at (the caller leaves out those whose letter case
    differs from the record names, which are all lowercase) to their offsets in the message.
    """

    def __init__(self, known: dict[bytes, int], start: int) -> None:
        self.names = dict(known)
        self.out = bytearray()
        self.start = start

    def name(self, wire: bytes) -> None:
        out, names = self.out, self.names
        pos = 0
        while wire[pos]:
            suffix = wire[pos:] if pos else wire
            pointer = names.get(suffix)
            if pointer is not None:
                out += (0xC000 | pointer).to_bytes(2, "big")
                return
            here = self.start + len(out)
            if here < _POINTER_LIMIT:
                names[suffix] = here
            end = pos + wire[pos] + 1
            out += wire[pos:end]
            pos = end
        out.append(0)

    def record(self, record: Record) -> None:
        owner, rest = record
        if owner is None:
            self.out += b"\xc0\x0c"
        else:
            self.name(owner)
        if callable(rest):
            rest(self)
        else:
            self.out += rest

    def rdata_names(self, rtype: int, ttl: int, names: Sequence[bytes], trailer: bytes = b"") -> None:
        """Type, class, TTL, then an rdata of compressed names plus fixed bytes (SOA, NS), its length filled in
        afterwards."""
        out = self.out
        out += struct.pack("!HHIH", rtype, CLASS_IN, ttl, 0)
        begin = len(out)
        for wire in names:
            self.name(wire)
        out += trailer
        out[begin - 2 : begin] = (len(out) - begin).to_bytes(2, "big")


def soa_writer(mname: bytes, rname: bytes, times: tuple[int, ...], ttl: int) -> Callable[[Packer], None]:
    trailer = struct.pack("!IIIII", *times)
    return lambda packer: packer.rdata_names(TYPE_SOA, ttl, (mname, rname), trailer)


def ns_writer(mname: bytes, ttl: int) -> Callable[[Packer], None]:
    return lambda packer: packer.rdata_names(TYPE_NS, ttl, (mname,))


def pack_sections(
    known: dict[bytes, int],
    start: int,
    answers: Sequence[Record],
    authority: Sequence[Record],
    extras: Sequence[Record],
) -> bytes:
    packer = Packer(known, start)
    for record in answers:
        packer.record(record)
    for record in authority:
        packer.record(record)
    for record in extras:
        packer.record(record)
    return bytes(packer.out)


def counts(answers: int, authority: int, extras: int) -> bytes:
    return struct.pack("!HHHH", 1, answers, authority, extras)


def fitted(
    known: dict[bytes, int],
    start: int,
    answers: Sequence[Record],
    authority: Sequence[Record],
    extras: Sequence[Record],
    max_size: int,
) -> tuple[bool, bytes, bytes]:
    """Upstream's truncation (``truncate``/``truncateAnswers``), as the slow path's ``pack_fitted`` does it: a reply
    that does not fit loses its ADDITIONAL section, then the fewest trailing answers that make it fit (strictly
    below the limit). Returns (truncated, counts, records) for a question section ending at ``start``."""
    body = pack_sections(known, start, answers, authority, extras)
    if start + len(body) <= max_size:
        return False, counts(len(answers), len(authority), len(extras)), body
    body = pack_sections(known, start, answers, authority, ())
    if start + len(body) < max_size:
        return True, counts(len(answers), len(authority), 0), body
    lo, hi = 0, len(answers)  # the smallest number of answers to drop from the end
    while lo < hi:
        mid = (lo + hi) // 2
        if start + len(pack_sections(known, start, answers[: len(answers) - mid], authority, ())) < max_size:
            hi = mid
        else:
            lo = mid + 1
    kept = answers[: len(answers) - lo]
    return True, counts(len(kept), len(authority), 0), pack_sections(known, start, kept, authority, ())
