"""The wire-level fast path against the dnslib slow path: the same bytes for every query both can answer.

Answer orders are shuffled in both paths; with ``random.shuffle`` a no-op both build the same orders, and asking a
query eight times gives every packed order (at most eight are kept), so the sets of replies must be equal.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord, EDNSOption

from mesolite.dns.config import parse_config
from mesolite.dns.fastpath import CACHE_LIMIT
from mesolite.dns.generator import RecordSet, generate
from mesolite.dns.resolver import Forward, Resolver
from mesolite.dns.wire import name_wire, parse_query
from tests.dns_fixture import CONFIG, state

QTYPES = ("A", "AAAA", "SRV", "ANY", "SOA", "NS", "TXT", "MX")


@pytest.fixture(autouse=True)
def fixed_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "shuffle", lambda items: None)


class Counting(Resolver):
    """A fast resolver that counts what falls through to the slow path."""

    slow_calls = 0

    def _slow(self, *args: Any) -> Any:
        self.slow_calls += 1
        return super()._slow(*args)


def pair(records: RecordSet | None = None, **overrides: Any) -> tuple[Counting, Resolver]:
    config = {**CONFIG, "RecurseOn": False, "resolvers": ["192.0.2.1"], **overrides}
    fast, slow = Counting(parse_config(config)), Resolver(parse_config(config), fast=False)
    if records is None:
        records = generate(state(), fast.config, fast.config.Masters, lambda host: [])
        records.serial = 42
    fast.load(records)
    slow.load(records)
    return fast, slow


def replies(resolver: Resolver, data: bytes, tcp: bool) -> set[Any]:
    return {resolver.answer(data, tcp) for _ in range(8)}


def query(name: str, qtype: str, edns: int | None = None, rd: bool = True, cd: bool = False) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.rd, q.header.cd = int(rd), int(cd)
    if edns is not None:
        cookie = [EDNSOption(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")] if edns > 1000 else []
        q.add_ar(EDNS0(udp_len=edns, opts=cookie))
    return bytes(q.pack())


def question_end(data: bytes) -> int:
    parsed = parse_query(data)
    assert parsed is not None
    return parsed[0]


def casings(name: str, rng: random.Random) -> Iterator[str]:
    yield name
    yield name.upper()
    yield "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def test_every_name_type_and_casing_gives_the_slow_paths_bytes() -> None:
    fast, slow = pair()
    assert fast.zone is not None
    rng = random.Random(24)
    extra = ["missing.mesos.", "a.b.missing.mesos.", "ns1.mesos.", "root.ns1.mesos.", "x.mesos-dns.mesos.", "mesos."]
    names = sorted(fast.zone.names) + extra
    checked = 0
    for name in names:
        for qtype in QTYPES:
            for asked in casings(name, rng):
                edns = rng.choice((None, None, 1232, 100))
                tcp = rng.random() < 0.2
                data = query(asked, qtype, edns, rd=rng.random() < 0.5, cd=rng.random() < 0.5)
                got = replies(fast, data, tcp)
                assert got == replies(slow, data, tcp), (asked, qtype, edns, tcp)
                end = question_end(data)
                assert all(reply[12:end] == data[12:end] for reply in got)  # the question exactly as asked
                checked += 1
    assert checked == len(names) * len(QTYPES) * 3
    assert fast.slow_calls == 0  # every one of them was answered on the fast path


def test_the_question_is_echoed_exactly_as_asked() -> None:
    fast, _ = pair()
    data = query("cHrOnOs.MaRaThOn.MESOS.", "A", edns=4096)
    reply = fast.answer(data, False)
    assert isinstance(reply, bytes)
    end = question_end(data)
    assert reply[12:end] == data[12:end]
    parsed = DNSRecord.parse(reply)
    assert str(parsed.q.qname) == "cHrOnOs.MaRaThOn.MESOS." and str(parsed.rr[0].rname) == "chronos.marathon.mesos."
    assert {str(rr.rdata) for rr in parsed.rr} == {"1.2.3.11"} and not parsed.ar  # no OPT in replies, as before


def _big(n: int) -> RecordSet:
    ips = {f"10.0.{i // 250}.{i % 250 + 1}": None for i in range(n)}
    ip6 = {f"fd00::{i:x}": None for i in range(n)}
    srv = {f"t{i}.marathon.slave.mesos.:{31000 + i}": None for i in range(n)}
    odd = {f"{'x' * (i % 40 + 1)}.marathon.slave.mesos.:{31000 + i}": None for i in range(n)}
    hosts = {f"t{i}.marathon.slave.mesos.": {f"10.1.0.{i % 250 + 1}": None} for i in range(n)}
    return RecordSet(
        As={"big.marathon.mesos.": ips, **hosts},
        AAAAs={"big.marathon.mesos.": ip6, "t1.marathon.slave.mesos.": {"fd00::1": None}},
        SRVs={"_big._tcp.marathon.mesos.": srv, "big.marathon.mesos.": odd},
        serial=7,
    )


@pytest.mark.parametrize("set_tc", [True, False])
def test_truncation_gives_the_slow_paths_bytes(set_tc: bool) -> None:
    for n in (3, 30, 100):
        fast, slow = pair(_big(n), SetTruncateBit=set_tc)
        for name in ("big.marathon.mesos.", "_BIG._tcp.marathon.mesoS."):
            for qtype in ("A", "AAAA", "SRV", "ANY"):
                for edns, tcp in ((None, False), (700, False), (4096, False), (None, True)):
                    data = query(name, qtype, edns)
                    assert replies(fast, data, tcp) == replies(slow, data, tcp), (n, name, qtype, edns, tcp)
        assert fast.slow_calls == 0
    truncated = DNSRecord.parse(fast.answer(query("big.marathon.mesos.", "A"), False))
    assert truncated.header.tc == int(set_tc) and 0 < len(truncated.rr) < 100


def test_messages_past_16k_point_only_backwards_into_the_first_16k() -> None:
    """dnslib writes pointers to offsets past 0x3FFF wrongly; the fast path never points there."""
    fast, _ = pair(_big(2000))
    reply = fast.answer(query("big.marathon.mesos.", "ANY"), True)
    assert isinstance(reply, bytes) and len(reply) > 0x4000
    parsed = DNSRecord.parse(reply)
    assert [str(rr.rdata) for rr in parsed.auth] == [
        "mesos-dns.mesos. root.ns1.mesos. 7 60 600 86400 60",
        "mesos-dns.mesos.",
    ]
    assert {str(rr.rname) for rr in parsed.rr} == {"big.marathon.mesos."}


def test_unusual_messages_take_the_slow_path_with_the_same_result() -> None:
    fast, slow = pair()
    wild = query("chronos.*.marathon.mesos.", "A")
    two = DNSRecord.question("a.mesos.")
    two.add_question(*DNSRecord.question("b.mesos.").questions)
    notify = DNSRecord.question("leader.mesos.")
    notify.header.opcode = 4
    extra = DNSRecord.question("leader.mesos.")
    extra.add_ar(RR("x.mesos.", QTYPE.A, rdata=A("1.2.3.4")))
    for data in (wild, bytes(two.pack()), bytes(notify.pack()), bytes(extra.pack())):
        before = fast.slow_calls
        assert fast.answer(data, False) == slow.answer(data, False)
        assert fast.slow_calls == before + 1
    assert {str(rr.rdata) for rr in DNSRecord.parse(fast.answer(wild, False)).rr} == {"1.2.3.11"}
    assert DNSRecord.parse(fast.answer(bytes(notify.pack()), False)).header.rcode == RCODE.NOTIMP
    forward = fast.answer(query("example.com.", "A"), False)
    assert isinstance(forward, Forward) and forward.resolvers == ["192.0.2.1"]


def test_mutated_queries_get_what_the_slow_path_gives() -> None:
    """Flipped bytes in valid queries: whatever the fast path accepts it must answer as dnslib would, the rest it
    must leave to the slow path."""
    fast, slow = pair()
    rng = random.Random(7)
    seeds = [
        query(n, t, e)
        for n in ("liquor-store.marathon.mesos.", "_slave._tcp.mesos.")
        for t in QTYPES
        for e in (None, 1232)
    ]

    def outcome(resolver: Resolver, data: bytes) -> Any:
        try:
            result = resolver.answer(data, False)
        except Exception as exc:  # noqa: BLE001 - the slow path may raise on garbage; both must agree
            return type(exc)
        if isinstance(result, Forward):
            return result.resolvers, result.max_size
        return replies(resolver, data, False) if result is not None else None

    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        assert outcome(fast, bytes(data)) == outcome(slow, bytes(data)), bytes(data).hex()


def raw(name: str, qtype: int = 1, edns: int | None = None) -> bytes:
    """A query built without dnslib (the flood test sends tens of thousands)."""
    wire = name_wire(name)
    assert wire is not None
    opt = b"" if edns is None else b"\x00\x00\x29" + struct.pack("!HIH", edns, 0, 0)
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, int(bool(opt))) + wire + struct.pack("!HH", qtype, 1) + opt


def test_floods_of_names_and_casings_stay_bounded() -> None:
    fast, _ = pair()
    zone = fast.zone
    assert zone is not None and zone.fast is not None
    rng = random.Random(3)
    known = "liquor-store.marathon.mesos."
    for i in range(20_000):
        fast.answer(raw(f"flood{i}.marathon.mesos.", rng.choice((1, 28, 33, 255, 6, 2, 16))), False)
        fast.answer(raw("".join(c.upper() if rng.random() < 0.5 else c for c in known)), False)
    stats = zone.stats()
    assert stats["entries"] <= len(zone.fast.index)  # one per existing name at most
    assert stats["missing"] <= 50  # keyed by the question suffix the SOA can point at, not by the name
    assert stats["cache_udp"] == 0  # neither missing names nor mixed-case questions are kept by their bytes
    for i in range(CACHE_LIMIT + 10):
        fast.answer(raw("leader.mesos.", edns=1232 + i), False)
    assert 0 < len(zone.udp) <= CACHE_LIMIT
