"""Answers built from a record set, checked on the wire bytes (resolver/resolver_test.go TestHandlers and the
truncation tests)."""

from __future__ import annotations

from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from mesolite.dns.config import parse_config
from mesolite.dns.generator import RecordSet, generate
from mesolite.dns.resolver import Forward, Resolver
from tests.dns_fixture import CONFIG, state


def make_resolver(**overrides: Any) -> Resolver:
    config = parse_config({**CONFIG, "RecurseOn": False, "resolvers": ["192.0.2.1"], **overrides})
    resolver = Resolver(config)
    rs = generate(state(), config, config.Masters, lambda host: [])
    rs.serial = 42
    resolver.load(rs)
    return resolver


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return make_resolver()


def ask(resolver: Resolver, name: str, qtype: str = "A", tcp: bool = False, **kwargs: Any) -> DNSRecord:
    query = DNSRecord.question(name, qtype, **kwargs)
    reply = resolver.answer(bytes(query.pack()), tcp)
    assert isinstance(reply, bytes)
    parsed = DNSRecord.parse(reply)
    assert parsed.header.id == query.header.id
    return parsed


def rdatas(reply: DNSRecord, section: str = "rr") -> set[str]:
    return {str(rr.rdata) for rr in getattr(reply, section)}


def test_a_records_are_authoritative_and_case_insensitive(resolver: Resolver) -> None:
    reply = ask(resolver, "chronos.marathon.mesos.")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1 and reply.header.ra == 0
    assert rdatas(reply) == {"1.2.3.11"} and reply.rr[0].ttl == 60
    mixed = ask(resolver, "cHrOnOs.MARATHON.mesoS.")
    assert rdatas(mixed) == {"1.2.3.11"} and str(mixed.rr[0].rname) == "chronos.marathon.mesos."
    assert rdatas(ask(resolver, "toy-store.ipv6-framework.mesos.", "AAAA")) == {"fd01:b::1:8000:2"}
    assert rdatas(ask(resolver, "chronos.*.marathon.mesos.")) == {"1.2.3.11"}  # upstream strips ".*"


def test_srv_answers_with_additional_addresses(resolver: Resolver) -> None:
    reply = ask(resolver, "_liquor-store._tcp.marathon.mesos.", "SRV")
    assert rdatas(reply) == {
        "0 1 80 liquor-store-4dfjd-0.marathon.mesos.",
        "0 1 443 liquor-store-4dfjd-0.marathon.mesos.",
        "0 1 80 liquor-store-zasmd-1.marathon.mesos.",
        "0 1 443 liquor-store-zasmd-1.marathon.mesos.",
    }
    assert rdatas(reply, "ar") == {"10.3.0.1", "10.3.0.2"}
    udp = ask(resolver, "_car-store._udp.marathon.mesos.", "SRV")
    assert rdatas(udp) == {
        "0 1 31364 car-store-zinaz-0.marathon.slave.mesos.",
        "0 1 31365 car-store-zinaz-0.marathon.slave.mesos.",
    }
    assert rdatas(udp, "ar") == {"1.2.3.11"}
    slaves = ask(resolver, "_slave._tcp.mesos.", "SRV")
    assert rdatas(slaves) == {"0 1 5051 slave.mesos."}
    assert {(QTYPE[rr.rtype], str(rr.rdata)) for rr in slaves.ar} in (
        {("A", "1.2.3.10"), ("AAAA", "2001:db8::1")},
        {("A", "1.2.3.11"), ("AAAA", "2001:db8::1")},
        {("A", "1.2.3.12"), ("AAAA", "2001:db8::1")},
    )


def test_nodata_and_nxdomain(resolver: Resolver) -> None:
    nodata = ask(resolver, "_car-store._udp.marathon.mesos.", "A")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr
    assert [str(rr.rdata) for rr in nodata.auth] == ["mesos-dns.mesos. root.ns1.mesos. 42 60 600 86400 60"]
    aaaa = ask(resolver, "chronos.marathon.mesos.", "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr and len(aaaa.auth) == 1
    for qtype in ("A", "AAAA"):
        missing = ask(resolver, "missing.mesos.", qtype)
        assert missing.header.rcode == RCODE.NXDOMAIN and QTYPE[missing.auth[0].rtype] == "SOA"
    srv = ask(resolver, "missing.mesos.", "SRV")
    assert srv.header.rcode == RCODE.NOERROR and not srv.rr and not srv.auth
    txt = ask(resolver, "chronos.marathon.mesos.", "TXT")
    assert txt.header.rcode == RCODE.NOERROR and QTYPE[txt.auth[0].rtype] == "SOA"
    # An empty non-terminal (names exist below it) is NODATA too.
    assert ask(resolver, "marathon.slave.mesos.").header.rcode == RCODE.NOERROR


def test_soa_ns_and_any(resolver: Resolver) -> None:
    soa = ask(resolver, "non-existing.mesos.", "SOA")
    assert soa.header.rcode == RCODE.NOERROR and not soa.rr
    assert str(soa.auth[0].rname) == "non-existing.mesos." and QTYPE[soa.auth[0].rtype] == "SOA"
    ns = ask(resolver, "non-existing.mesos.", "NS")
    assert [str(rr.rdata) for rr in ns.auth] == ["mesos-dns.mesos."]
    any_reply = ask(resolver, "chronos.marathon.mesos.", "ANY")
    assert rdatas(any_reply) == {"1.2.3.11"}
    assert {QTYPE[rr.rtype] for rr in any_reply.auth} == {"SOA", "NS"}


def test_recursion_available_follows_recurseon() -> None:
    assert ask(make_resolver(RecurseOn=True), "chronos.marathon.mesos.").header.ra == 1


def test_cached_answers_patch_the_id_and_rotate_orders(resolver: Resolver) -> None:
    leads = set()
    for _ in range(20):
        reply = ask(resolver, "liquor-store.marathon.mesos.")
        assert rdatas(reply) == {"10.3.0.1", "10.3.0.2"}
        leads.add(str(reply.rr[0].rdata))
    assert leads == {"10.3.0.1", "10.3.0.2"}


def test_a_reload_replaces_records_and_cache(resolver: Resolver) -> None:
    local = make_resolver()
    assert rdatas(ask(local, "chronos.marathon.mesos.")) == {"1.2.3.11"}
    local.load(RecordSet(As={"chronos.marathon.mesos.": {"9.9.9.9": None}}, serial=43))
    assert rdatas(ask(local, "chronos.marathon.mesos.")) == {"9.9.9.9"}


def _many(n: int) -> Resolver:
    local = make_resolver()
    ips = {f"10.0.{i // 250}.{i % 250 + 1}": None for i in range(n)}
    srv = {f"t{i}.marathon.slave.mesos.:{31000 + i}": None for i in range(n)}
    addresses = {f"t{i}.marathon.slave.mesos.": {f"10.1.0.{i % 250 + 1}": None} for i in range(n)}
    local.load(RecordSet(As={"big.marathon.mesos.": ips, **addresses}, SRVs={"_big._tcp.marathon.mesos.": srv}))
    return local


def test_truncation_over_udp_and_edns() -> None:
    local = _many(100)
    udp = ask(local, "big.marathon.mesos.")
    packed = len(udp.pack())
    assert udp.header.tc == 1 and 0 < len(udp.rr) < 100 and packed < 512
    # Exactly as many answers were dropped as needed: one more would not have fit.
    assert packed + 16 >= 512
    query = DNSRecord.question("big.marathon.mesos.", "A")
    query.add_ar(EDNS0(udp_len=4096))
    big = DNSRecord.parse(local.answer(bytes(query.pack()), False))
    assert big.header.tc == 0 and len(big.rr) == 100
    tcp = ask(local, "big.marathon.mesos.", tcp=True)
    assert tcp.header.tc == 0 and len(tcp.rr) == 100
    # SRV: ADDITIONAL goes first, then trailing answers.
    srv = ask(local, "_big._tcp.marathon.mesos.", "SRV")
    assert srv.header.tc == 1 and not srv.ar and 0 < len(srv.rr) < 100


def test_set_truncate_bit_false_clears_tc() -> None:
    local = _many(100)
    local.config.SetTruncateBit = False
    local.load(local.zone.records)
    reply = ask(local, "big.marathon.mesos.")
    assert reply.header.tc == 0 and 0 < len(reply.rr) < 100


def test_other_zones_are_routed_for_forwarding() -> None:
    local = make_resolver(zoneResolvers={"weave": ["192.0.2.9"]})
    job = local.answer(bytes(DNSRecord.question("example.com.").pack()), False)
    assert isinstance(job, Forward) and job.resolvers == ["192.0.2.1"]
    job = local.answer(bytes(DNSRecord.question("db.weave.").pack()), True)
    assert isinstance(job, Forward) and job.resolvers == ["192.0.2.9"] and job.tcp
    refused = make_resolver(externalon=False).answer(bytes(DNSRecord.question("example.com.").pack()), False)
    assert isinstance(refused, Forward) and refused.resolvers == []


def test_malformed_input_gets_formerr_or_nothing(resolver: Resolver) -> None:
    assert resolver.answer(b"\x12\x34", False) is None  # not even a header
    garbage = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff"
    reply = DNSRecord.parse(resolver.answer(garbage, False))
    assert reply.header.id == 0xABCD and reply.header.rcode == RCODE.FORMERR and reply.header.qr == 1
    response = bytes(DNSRecord.question("chronos.marathon.mesos.").reply().pack())
    assert resolver.answer(response, False) is None  # never answer a response
    two = DNSRecord.question("a.mesos.")
    two.add_question(*DNSRecord.question("b.mesos.").questions)
    assert DNSRecord.parse(resolver.answer(bytes(two.pack()), False)).header.rcode == RCODE.FORMERR
    notify = DNSRecord.question("a.mesos.")
    notify.header.opcode = 4
    assert DNSRecord.parse(resolver.answer(bytes(notify.pack()), False)).header.rcode == RCODE.NOTIMP


def test_servfail_before_the_first_load() -> None:
    config = parse_config({**CONFIG})
    reply = DNSRecord.parse(Resolver(config).answer(bytes(DNSRecord.question("leader.mesos.").pack()), False))
    assert reply.header.rcode == RCODE.SERVFAIL
