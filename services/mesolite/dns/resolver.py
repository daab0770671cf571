"""Answering DNS messages from a record set, as Mesos-DNS' ``resolver/resolver.go`` does.

Three paths, cheapest first. (1) Exact repeats: a reply depends only on the query's bytes after its 2-byte id and
the transport, so replies to lowercase questions of existing names are kept under those bytes and a repeat costs
one dict lookup with the id patched in. (2) The fast path (``fastpath.py``): any plain query (one question, maybe
EDNS) for the Mesos domain is read from the wire and answered from records packed once per generation, whatever
its letter case, id or options, and whether the name exists or not. (3) The slow path here, with dnslib: every
other message (several questions, other opcodes, malformed bytes, names with ``*``), forwarding, and the reference
the fast path is tested against. Multi-answer names keep several packed orders (each answer leads in one of them),
because clients use answer order for load balancing. Everything packed lives inside the :class:`Zone` it was built
from, so a reload swaps records and packed answers in one assignment and no reply mixes two generations.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA as AAAARecord
from dnslib import NS, QTYPE, RCODE, RR, SOA, DNSHeader, DNSLabel, DNSRecord
from dnslib import SRV as SRVRecord
from dnslib import A as ARecord

from mesolite.dns.config import DNSConfig
from mesolite.dns.fastpath import CACHE_LIMIT, FastAnswers
from mesolite.dns.generator import RecordSet
from mesolite.dns.wire import address, orders, parse_query, srv_parts

log = logging.getLogger(__name__)

TCP_MAX = 65535
UDP_MIN = 512
_OPT = 41


@dataclass
class Forward:
    """A query for another zone: the listener forwards it off its receive loop (it may block for ``timeout``)."""

    request: DNSRecord
    data: bytes
    resolvers: list[str]
    tcp: bool
    max_size: int


@dataclass
class Zone:
    """One generation of records, with the packed answers built from it."""

    records: RecordSet
    names: set[str] = field(default_factory=set)  # every owner name and its ancestors: what "exists"
    udp: dict[bytes, Any] = field(default_factory=dict)
    tcp: dict[bytes, Any] = field(default_factory=dict)
    fast: FastAnswers | None = None

    @classmethod
    def build(cls, records: RecordSet, config: DNSConfig, fast: bool = True) -> Zone:
        zone = config.zone
        names: set[str] = set()
        for rrs in (records.As, records.AAAAs, records.SRVs):
            for name in rrs:
                while (name == zone or name.endswith("." + zone)) and name not in names:
                    names.add(name)
                    name = name.split(".", 1)[1] if "." in name[:-1] else zone
        names.add(zone)
        answers = FastAnswers(records, names, config, zone) if fast else None
        return cls(records=records, names=names, fast=answers if answers is None or answers.usable else None)

    def stats(self) -> dict[str, int]:
        """Sizes of the tables that grow with traffic (all bounded): for the bench and for debugging floods."""
        fast = self.fast
        return {
            "names": len(self.names),
            "cache_udp": len(self.udp),
            "cache_tcp": len(self.tcp),
            "entries": len(fast.entries) if fast else 0,
            "missing": len(fast.missing) if fast else 0,
        }


def dns_name(name: str) -> DNSLabel | None:
    """A record name as wire labels, or None when it cannot be encoded (the raw legacy names can be anything)."""
    parts = tuple(p.encode() for p in name.rstrip(".").split("."))
    if not all(0 < len(p) <= 63 for p in parts) or sum(len(p) + 1 for p in parts) > 254:
        return None
    return DNSLabel(parts)


def query_key(label: DNSLabel) -> str:
    """The lookup form of a question name: lowercased, ``.*`` removed (upstream ``cleanWild``), trailing dot."""
    name = ".".join(p.decode("utf-8", "replace") for p in label.label).lower() + "."
    return name.replace(".*", "") if ".*" in name else name


def rcode_reply(request: DNSRecord, rcode: int, ra: bool = False) -> bytes:
    header = DNSHeader(
        id=request.header.id, qr=1, opcode=request.header.opcode, rd=request.header.rd, cd=request.header.cd
    )
    header.ra = int(ra)
    header.rcode = rcode
    return bytes(DNSRecord(header, questions=request.questions[:1]).pack())


def formerr(data: bytes) -> bytes | None:
    """The reply to bytes that do not parse: header-only FORMERR, or nothing when even the header is missing."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    return data[:2] + bytes([0x80 | (data[2] & 0x79), 0x01]) + b"\x00" * 8


def edns_size(request: DNSRecord) -> int:
    for rr in request.ar:
        if rr.rtype == _OPT:
            return max(UDP_MIN, int(rr.rclass))
    return UDP_MIN


def pack_fitted(record: DNSRecord, max_size: int, set_tc: bool) -> bytes:
    """Upstream's truncation: too big → drop ADDITIONAL, then the fewest trailing answers so the message is below
    the limit; TC marks any truncation unless ``SetTruncateBit`` is off."""
    if not set_tc:
        record.header.tc = 0
    data = bytes(record.pack())  # dnslib packs into a bytearray; cached answers must be immutable bytes
    if len(data) <= max_size:
        return data
    record.header.tc = int(set_tc)
    record.ar = []
    data = bytes(record.pack())
    if len(data) < max_size:
        return data
    answers = list(record.rr)
    lo, hi = 0, len(answers)  # smallest number of answers to drop from the end
    while lo < hi:
        mid = (lo + hi) // 2
        record.rr = answers[: len(answers) - mid]
        if len(record.pack()) < max_size:
            hi = mid
        else:
            lo = mid + 1
    record.rr = answers[: len(answers) - lo]
    return bytes(record.pack())


class Resolver:
    """Answers for the Mesos domain from the current :class:`Zone`; everything else is routed for forwarding."""

    def __init__(self, config: DNSConfig, fast: bool = True) -> None:
        self.config = config
        self.fast = fast  # False: dnslib for everything (the reference the fast path is tested and benched against)
        self.zone_name = config.zone
        self.zone: Zone | None = None  # None until the first successful load: SERVFAIL, never a false NXDOMAIN
        self._tick = itertools.count()
        self._routes: list[tuple[str, list[str]]] = []
        if config.ExternalOn:
            zones = sorted(config.ZoneResolvers.items(), key=lambda item: -len(item[0]))
            self._routes = [(zone.lower().rstrip(".") + ".", list(addrs)) for zone, addrs in zones]
        self._default = list(config.Resolvers) if config.ExternalOn else []

    def load(self, records: RecordSet) -> None:
        self.zone = Zone.build(records, self.config, self.fast)

    def answer(self, data: bytes, tcp: bool) -> bytes | Forward | None:
        """The reply to ``data``, a :class:`Forward` to run, or None to drop it (responses, runt packets)."""
        zone = self.zone
        if zone is not None:
            cache = zone.tcp if tcp else zone.udp
            hit = cache.get(data[2:])
            if hit is not None:
                if type(hit) is bytes:
                    return data[:2] + hit
                return data[:2] + hit[next(self._tick) % len(hit)]
            fast = zone.fast
            if fast is not None:
                parsed = parse_query(data)
                if parsed is not None:
                    reply = fast.reply(data, tcp, parsed, next(self._tick), cache)
                    if reply is not None:
                        return reply
        return self._slow(data, tcp, zone)

    def _slow(self, data: bytes, tcp: bool, zone: Zone | None) -> bytes | Forward | None:
        if len(data) < 12 or data[2] & 0x80:
            return None  # too short to answer, or a response (answering those makes loops)
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - dnslib raises several types on malformed input
            return formerr(data)
        if request.header.opcode != 0:
            return rcode_reply(request, RCODE.NOTIMP)
        if len(request.questions) != 1:
            return rcode_reply(request, RCODE.FORMERR)
        max_size = TCP_MAX if tcp else edns_size(request)
        key = query_key(request.q.qname)
        if not (key == self.zone_name or key.endswith("." + self.zone_name)):
            return Forward(request, data, self._route(key), tcp, max_size)
        if zone is None:
            return rcode_reply(request, RCODE.SERVFAIL, self.config.RecurseOn)
        variants = self._mesos(request, key, zone, max_size)
        cache = zone.tcp if tcp else zone.udp
        if len(cache) >= CACHE_LIMIT:
            cache.clear()  # bounded: odd casings and EDNS sizes must not grow it without limit
        cache[data[2:]] = variants[0] if len(variants) == 1 else tuple(variants)
        return data[:2] + variants[next(self._tick) % len(variants)]

    def _route(self, key: str) -> list[str]:
        for zone, resolvers in self._routes:
            if key == zone or key.endswith("." + zone):
                return resolvers
        return self._default

    def _mesos(self, request: DNSRecord, name: str, zone: Zone, max_size: int) -> list[bytes]:
        """Packed reply variants (without the id) for an in-domain question (``HandleMesos``)."""
        rs, config = zone.records, self.config
        qtype = request.q.qtype
        answers: list[RR] = []
        extras: list[RR] = []
        authority: list[RR] = []
        if qtype in (QTYPE.SRV, QTYPE.ANY):
            self._srv(rs, name, request.q.qname, answers, extras)
        if qtype in (QTYPE.A, QTYPE.ANY):
            answers.extend(self._addresses(rs.As, name, QTYPE.A))
        if qtype in (QTYPE.AAAA, QTYPE.ANY):
            answers.extend(self._addresses(rs.AAAAs, name, QTYPE.AAAA))
        if qtype in (QTYPE.SOA, QTYPE.ANY):
            authority.append(self._soa(request.q.qname, rs.serial))
        if qtype in (QTYPE.NS, QTYPE.ANY):
            authority.append(RR(request.q.qname, QTYPE.NS, ttl=config.TTL, rdata=NS(config.SOAMname)))
        rcode = RCODE.NOERROR
        if not answers and qtype not in (QTYPE.SOA, QTYPE.NS, QTYPE.SRV):
            # NXDOMAIN only for names that do not exist at all: a name with other types, or with names below it,
            # gets NODATA (an NXDOMAIN for AAAA broke glibc lookups of IPv4-only names, mesos-dns#94/#338).
            if name not in zone.names:
                rcode = RCODE.NXDOMAIN
            authority.append(self._soa(request.q.qname, rs.serial))
        header = DNSHeader(id=0, qr=1, opcode=0, aa=1, rd=request.header.rd, cd=request.header.cd)
        header.ra = int(config.RecurseOn)
        header.rcode = rcode
        variants = []
        for order in orders(answers):
            reply = DNSRecord(DNSHeader(id=0, bitmap=header.bitmap), questions=[request.q])
            reply.rr, reply.auth, reply.ar = order, list(authority), list(extras)
            variants.append(pack_fitted(reply, max_size, config.SetTruncateBit)[2:])
        return variants

    def _addresses(self, rrs: dict[str, dict[str, None]], name: str, qtype: int) -> Iterable[RR]:
        owner = dns_name(name)
        if owner is None:
            return
        rdata, family = (ARecord, socket.AF_INET) if qtype == QTYPE.A else (AAAARecord, socket.AF_INET6)
        for value in rrs.get(name, ()):
            # A non-IP agent "address" (mesos-dns#509) is skipped, as upstream does.
            if address(value, family) is not None:
                yield RR(owner, qtype, ttl=self.config.TTL, rdata=rdata(value))

    def _srv(self, rs: RecordSet, name: str, qname: DNSLabel, answers: list[RR], extras: list[RR]) -> None:
        seen: set[str] = set()
        for value in rs.SRVs.get(name, ()):
            parts = srv_parts(value)
            if parts is None:
                continue
            host, port = parts
            target = dns_name(host)
            srv = SRVRecord(priority=0, weight=self.config.SRVRecordDefaultWeight, port=port, target=target)
            answers.append(RR(qname, QTYPE.SRV, ttl=self.config.TTL, rdata=srv))
            if host in seen:
                continue
            seen.add(host)
            # ADDITIONAL: the first A and the first AAAA of each target.
            for rrs, qtype in ((rs.As, QTYPE.A), (rs.AAAAs, QTYPE.AAAA)):
                first = next(iter(self._addresses(rrs, host, qtype)), None)
                if first is not None:
                    extras.append(first)

    def _soa(self, owner: DNSLabel, serial: int) -> RR:
        c = self.config
        times = (serial, c.SOARefresh, c.SOARetry, c.SOAExpire, c.TTL)  # MINIMUM is the ttl; SOAMinttl is unused
        return RR(owner, QTYPE.SOA, ttl=c.TTL, rdata=SOA(c.SOAMname, c.SOARname, times))
