"""Answers for the Mesos domain straight from the wire: the path every ordinary query takes.

A reply is the query's header and question with the answer appended, so the only parts that need a record lookup
are the sections after the question. Those depend on the name (case-insensitively), the query type, and, through
name compression, on which of the question's labels are lowercase (a record name can only point at a suffix of the
question that matches it byte for byte). So the sections are packed once per record generation for each
(name, type, lowercase tail) and reused for every casing, id, flags and EDNS option set, while the question is
copied in byte for byte as asked (0x20-encoding resolvers check it). Names that do not exist cost no entry at all:
their NXDOMAIN is a packed SOA chosen by the only thing that changes its compression, the question suffix it can
point at. Every table here is bounded by the record set, not by what clients send.

The packing mirrors the dnslib slow path in ``resolver.py`` record for record (same sections, same order, same
compression), which ``tests/unit/dns/test_fastpath.py`` checks byte for byte.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable, Iterator
from typing import Any

from mesolite.dns.config import DNSConfig
from mesolite.dns.generator import RecordSet
from mesolite.dns.wire import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_NS,
    TYPE_SOA,
    TYPE_SRV,
    Record,
    address,
    counts,
    fitted,
    label_starts,
    name_wire,
    ns_writer,
    orders,
    pack_sections,
    rr_tail,
    soa_writer,
    srv_parts,
    srv_rdata,
)

TCP_MAX = 65535
NOERROR, NXDOMAIN = 0, 3
OTHER = 0  # every query type without records of its own (TXT, MX, …) is answered alike
_KINDS = frozenset((TYPE_A, TYPE_AAAA, TYPE_SRV, TYPE_ANY, TYPE_SOA, TYPE_NS))
_FITTED_LIMIT = 16  # truncated variants per name (one per distinct EDNS size asked)
_MISSING_LIMIT = 4096
_UNLIMITED = 1 << 30  # packing without truncation; each transport's limit is applied when a query asks
CACHE_LIMIT = 20_000  # exact-bytes replies per transport (lowercase questions of existing names)

# A packed reply part: the four header prefixes (flags and counts for each RD/CD combination the query may carry)
# and the records after the question.
Variant = tuple[tuple[bytes, ...], bytes]


@functools.lru_cache(maxsize=4096)
def prefixes(rcode: int, truncated: bool, ra: bool, section_counts: bytes) -> tuple[bytes, ...]:
    """Header bytes 2-11 of a reply: QR, AA, TC as packed; RD and CD echoed (index ``rd | cd >> 3``)."""
    flags2 = 0x84 | (0x02 if truncated else 0)
    flags3 = (0x80 if ra else 0) | rcode
    return tuple(bytes((flags2 | rd, flags3 | cd)) + section_counts for cd in (0, 0x10) for rd in (0, 1))


class Entry:
    """One existing name (with records, or only names below it): its records ready to pack."""

    def __init__(self, fast: FastAnswers, name: str, wire: bytes) -> None:
        self.fast = fast
        self.wire = wire
        self.variants: dict[tuple[int, int], tuple[int, list[Variant]]] = {}
        self.fitted: dict[tuple[int, int, int], list[Variant]] = {}
        rs, ttl = fast.records, fast.config.TTL
        self.a = [rr_tail(TYPE_A, ttl, p) for p in _addresses(rs.As.get(name, ()), socket.AF_INET)]
        self.aaaa = [rr_tail(TYPE_AAAA, ttl, p) for p in _addresses(rs.AAAAs.get(name, ()), socket.AF_INET6)]
        self.srv: list[bytes] = []
        self.extras: list[Record] = []
        seen: set[str] = set()
        weight = fast.config.SRVRecordDefaultWeight
        for value in rs.SRVs.get(name, ()):
            parts = srv_parts(value)
            if parts is None:
                continue
            host, port = parts
            self.srv.append(rr_tail(TYPE_SRV, ttl, srv_rdata(weight, port, host)))
            if host in seen:
                continue
            seen.add(host)
            owner = name_wire(host)
            # ADDITIONAL: the first A and the first AAAA of each target.
            for values, family, rtype in ((rs.As, socket.AF_INET, TYPE_A), (rs.AAAAs, socket.AF_INET6, TYPE_AAAA)):
                first = next(_addresses(values.get(host, ()), family), None)
                if first is not None:
                    self.extras.append((owner, rr_tail(rtype, ttl, first)))

    def plan(self, kind: int) -> tuple[int, list[Record], list[Record], list[Record]]:
        """(rcode, answers, authority, additional) as the slow path's ``_mesos`` builds them."""
        answers: list[Record] = []
        extras: list[Record] = []
        if kind in (TYPE_SRV, TYPE_ANY):
            answers += [(None, srv) for srv in self.srv]
            extras = self.extras
        if kind in (TYPE_A, TYPE_ANY):
            answers += [(self.wire, a) for a in self.a]
        if kind in (TYPE_AAAA, TYPE_ANY):
            answers += [(self.wire, a) for a in self.aaaa]
        rcode, answers, authority = self.fast.authority(kind, answers, True)
        return rcode, answers, authority, extras

    def known(self, tail: int) -> dict[bytes, int]:
        """The question's suffixes a record may point at: those from the lowercase tail on."""
        return {self.wire[s:]: 12 + s for s in label_starts(self.wire) if s >= tail}

    def get(self, kind: int, tail: int, end: int, max_size: int) -> list[Variant]:
        built = self.variants.get((kind, tail))
        if built is None:
            variants = self._build(kind, tail, end)
            built = self.variants[(kind, tail)] = (max(len(body) for _, body in variants), variants)
        if end + built[0] <= max_size:
            return built[1]
        key = (kind, tail, max_size)
        truncated = self.fitted.get(key)
        if truncated is None:
            if len(self.fitted) >= _FITTED_LIMIT:
                self.fitted.clear()
            truncated = self.fitted[key] = self._build(kind, tail, end, max_size)
        return truncated

    def _build(self, kind: int, tail: int, end: int, max_size: int = _UNLIMITED) -> list[Variant]:
        rcode, answers, authority, extras = self.plan(kind)
        known = self.known(tail)
        ra = self.fast.config.RecurseOn
        variants = []
        for order in orders(answers):
            truncated, section_counts, body = fitted(known, end, order, authority, extras, max_size)
            truncated = truncated and self.fast.config.SetTruncateBit
            variants.append((prefixes(rcode, truncated, ra, section_counts), body))
        return variants


def _addresses(values: Iterable[str], family: int) -> Iterator[bytes]:
    for value in values:
        packed = address(value, family)
        if packed is not None:
            yield packed


class FastAnswers:
    """The fast path's tables for one record generation (built with the generation, filled as names are asked)."""

    def __init__(self, records: RecordSet, names: set[str], config: DNSConfig, zone: str) -> None:
        self.records = records
        self.config = config
        self.index: dict[bytes, str] = {}  # lowercase wire name -> record name, for every name that exists
        for name in names:
            wire = name_wire(name)
            if wire is not None:
                self.index[wire] = name
        self.entries: dict[bytes, Entry] = {}
        self.missing: dict[tuple[int, bytes, int], Variant] = {}
        zone_wire = name_wire(zone)
        mname, rname = name_wire(config.SOAMname), name_wire(config.SOARname)
        # Unencodable zone or SOA names: every query takes the slow path, which reports them as dnslib does.
        self.usable = zone_wire is not None and mname is not None and rname is not None
        self.zone_wire = zone_wire or b""
        self.mname, self.rname = mname or b"", rname or b""
        # The record names are lowercase; an SOA name with capitals could point into a mixed-case question, which
        # the per-tail tables do not model: such configs answer mixed-case questions on the slow path.
        self.mixed_case = self.mname == self.mname.lower() and self.rname == self.rname.lower()
        self.soa_suffixes = {w[s:] for w in (self.mname, self.rname) if w for s in label_starts(w)}
        ttl = config.TTL
        times = (records.serial, config.SOARefresh, config.SOARetry, config.SOAExpire, ttl)  # MINIMUM is the ttl
        self.soa: Record = (None, soa_writer(self.mname, self.rname, times, ttl))
        self.ns: Record = (None, ns_writer(self.mname, ttl))

    def authority(self, kind: int, answers: list[Record], exists: bool) -> tuple[int, list[Record], list[Record]]:
        authority: list[Record] = []
        if kind in (TYPE_SOA, TYPE_ANY):
            authority.append(self.soa)
        if kind in (TYPE_NS, TYPE_ANY):
            authority.append(self.ns)
        rcode = NOERROR
        if not answers and kind not in (TYPE_SOA, TYPE_NS, TYPE_SRV):
            # NXDOMAIN only for names that do not exist at all (NODATA otherwise: mesos-dns#94/#338).
            if not exists:
                rcode = NXDOMAIN
            authority.append(self.soa)
        return rcode, answers, authority

    def reply(
        self, data: bytes, tcp: bool, parsed: tuple[int, int, int, list[int]], tick: int, cache: dict[bytes, Any]
    ) -> bytes | None:
        """The reply to a plain query (``wire.parse_query``) for this zone, or None for the slow path.

        Replies to lowercase questions of existing names also go into ``cache`` under the query's bytes after the
        id: those are what clients repeat. Mixed-case questions (0x20 encoding) and names that do not exist rarely
        come twice, so they are not kept: a flood of them cannot push the repeated answers out."""
        end, qtype, size, starts = parsed
        qwire = data[12 : end - 4]
        if not qwire.isascii() or b"." in qwire or b"*" in qwire:
            return None  # bytes the slow path's name handling treats specially (".*" stripping, UTF-8)
        kwire = qwire.lower()
        zone = self.zone_wire
        cut = len(kwire) - len(zone)
        if cut < 0 or not kwire.endswith(zone) or cut not in starts:
            return None  # another zone: forwarding is the slow path's
        if qwire == kwire:
            tail = 0
        elif not self.mixed_case:
            return None
        else:
            tail = len(qwire) - 1
            for s in starts:
                if qwire[s:] == kwire[s:]:
                    tail = s
                    break
        kind = qtype if qtype in _KINDS else OTHER
        max_size = TCP_MAX if tcp else size
        entry = self.entries.get(kwire)
        if entry is None:
            name = self.index.get(kwire)
            if name is None:
                return self._missing(data, qwire, starts, kind, end, max_size)
            entry = self.entries[kwire] = Entry(self, name, kwire)
        variants = entry.get(kind, tail, end, max_size)
        flags = (data[2] & 1) | (data[3] & 0x10) >> 3
        if tail:
            head, body = variants[tick % len(variants)]
            return b"".join((data[:2], head[flags], data[12:end], body))
        question = data[12:end]
        replies = [head[flags] + question + body for head, body in variants]
        if len(cache) >= CACHE_LIMIT:
            cache.clear()  # bounded: EDNS options and ids of other clients must not grow it without limit
        cache[data[2:]] = replies[0] if len(replies) == 1 else tuple(replies)
        return data[:2] + replies[tick % len(replies)]

    def _missing(
        self, data: bytes, qwire: bytes, starts: list[int], kind: int, end: int, max_size: int
    ) -> bytes | None:
        """NXDOMAIN (or the NOERROR SOA/NS/SRV replies) for a name with no records and nothing below it."""
        key = (kind, b"", end)
        for s in starts:
            if qwire[s:] in self.soa_suffixes:
                key = (kind, qwire[s:], 12 + s)  # its offset also fixes the question's length
                break
        variant = self.missing.get(key)
        if variant is None:
            _, suffix, offset = key
            known = {suffix[s:]: offset + s for s in label_starts(suffix)} if suffix else {}
            rcode, answers, authority = self.authority(kind, [], False)
            body = pack_sections(known, end, (), authority, ())
            section_counts = counts(0, len(authority), 0)
            variant = (prefixes(rcode, False, self.config.RecurseOn, section_counts), body)
            if len(self.missing) >= _MISSING_LIMIT:
                self.missing.clear()
            self.missing[key] = variant
        head, body = variant
        if end + len(body) > max_size:
            return None  # a long name with long SOA names over plain UDP: let the slow path truncate it
        return b"".join((data[:2], head[(data[2] & 1) | (data[3] & 0x10) >> 3], data[12:end], body))
