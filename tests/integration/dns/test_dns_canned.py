"""``mesolite dns`` fed by canned state documents, checked with real ``dig`` and the HTTP API, as a user would."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dnslib import QTYPE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from tests.cluster import free_port, wait_until
from tests.dns_fixture import CONFIG, state
from tests.integration.dns.conftest import DNSProcess, FakeMaster, dig


@pytest.fixture(scope="module")
def master() -> Iterator[FakeMaster]:
    fake = FakeMaster(state()).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def mesos_dns(master: FakeMaster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DNSProcess]:
    config = {**CONFIG, "masters": [master.address], "RecurseOn": False, "externalon": False}
    process = DNSProcess(tmp_path_factory.mktemp("dns"), config, "--workers", "2")
    try:
        process.start("/v1/version")
        process.wait_for("leader.mesos")
        yield process
    finally:
        process.stop()


def test_task_a_and_srv_records(mesos_dns: DNSProcess) -> None:
    liquor = mesos_dns.dig("liquor-store.marathon.mesos")
    assert liquor.status == "NOERROR" and {"qr", "aa"} <= liquor.flags and "ra" not in liquor.flags
    assert liquor.values("A") == {"10.3.0.1", "10.3.0.2"}
    assert {r[1] for r in liquor.answer} == {"60"}
    srv = mesos_dns.dig("_liquor-store._tcp.marathon.mesos", "SRV")
    assert srv.values("SRV") == {
        "0 1 80 liquor-store-4dfjd-0.marathon.mesos.",
        "0 1 443 liquor-store-4dfjd-0.marathon.mesos.",
        "0 1 80 liquor-store-zasmd-1.marathon.mesos.",
        "0 1 443 liquor-store-zasmd-1.marathon.mesos.",
    }
    assert {r[4] for r in srv.additional} == {"10.3.0.1", "10.3.0.2"}
    named = mesos_dns.dig("_https._liquor-store._tcp.marathon.mesos", "SRV")
    assert {r[6] for r in named.answer} == {"443"}
    car = mesos_dns.dig("_car-store._udp.marathon.slave.mesos", "SRV")
    assert car.values("SRV") == {
        "0 1 31364 car-store-zinaz-0.marathon.slave.mesos.",
        "0 1 31365 car-store-zinaz-0.marathon.slave.mesos.",
    }
    assert mesos_dns.dig("toy-store.ipv6-framework.mesos", "AAAA").values() == {"fd01:b::1:8000:2"}
    assert mesos_dns.dig("CHRONOS.Marathon.MESOS").values() == {"1.2.3.11"}


def test_leader_master_and_slave_records(mesos_dns: DNSProcess, master: FakeMaster) -> None:
    assert mesos_dns.dig("leader.mesos").values() == {"127.0.0.1"}
    assert mesos_dns.dig("master.mesos").values() == {"127.0.0.1"}
    assert mesos_dns.dig("master0.mesos").values() == {"127.0.0.1"}
    assert mesos_dns.dig("_leader._tcp.mesos", "SRV").values() == {f"0 1 {master.port} leader.mesos."}
    assert mesos_dns.dig("_leader._udp.mesos", "SRV").values() == {f"0 1 {master.port} leader.mesos."}
    assert mesos_dns.dig("slave.mesos").values() == {"1.2.3.10", "1.2.3.11", "1.2.3.12"}
    assert mesos_dns.dig("slave.mesos", "AAAA").values() == {"2001:db8::1"}
    assert mesos_dns.dig("_slave._tcp.mesos", "SRV").values() == {"0 1 5051 slave.mesos."}
    assert mesos_dns.dig("marathon.mesos").values() == {"1.2.3.11"}
    assert mesos_dns.dig("mesos-dns.mesos").values() == {"127.0.0.1"}


def test_nxdomain_vs_nodata(mesos_dns: DNSProcess) -> None:
    missing = mesos_dns.dig("missing.mesos")
    assert missing.status == "NXDOMAIN" and not missing.answer
    assert missing.authority[0][3] == "SOA" and missing.authority[0][4:6] == ["mesos-dns.mesos.", "root.ns1.mesos."]
    # An IPv4-only name asked for AAAA exists: NOERROR with no answer and the SOA (glibc needs this).
    nodata = mesos_dns.dig("chronos.marathon.mesos", "AAAA")
    assert nodata.status == "NOERROR" and not nodata.answer and nodata.authority[0][3] == "SOA"
    assert mesos_dns.dig("_car-store._udp.marathon.mesos", "A").status == "NOERROR"
    assert mesos_dns.dig("poseidon.marathon.mesos").status == "NXDOMAIN"  # killed task: no records
    soa = mesos_dns.dig("mesos", "SOA")
    assert soa.status == "NOERROR" and soa.authority[0][3] == "SOA"


def test_mixed_case_questions_are_echoed_as_asked(mesos_dns: DNSProcess) -> None:
    """0x20-encoding resolvers (Unbound's use-caps-for-id) drop replies whose question differs from theirs."""
    for name, rtype, status in (
        ("_LiQuOr-StOrE._tcp.MaRaThOn.mesos", "SRV", "NOERROR"),
        ("liquor-STORE.marathon.MESOS", "A", "NOERROR"),
        ("CHRONOS.marathon.mesos", "AAAA", "NOERROR"),
        ("NoSuchTask.MARATHON.mesos", "A", "NXDOMAIN"),
        ("Chronos.Marathon.Mesos", "ANY", "NOERROR"),
    ):
        for options in ((), ("+noedns",), ("+tcp",)):
            result = mesos_dns.dig(name, rtype, *options)
            assert result.status == status, result.output
            assert re.search(rf"^;{re.escape(name)}\.\s+IN\s+{rtype}$", result.output, re.M), result.output
    srv = mesos_dns.dig("_LiQuOr-StOrE._tcp.MaRaThOn.mesos", "SRV")
    assert len(srv.answer) == 4 and {r[4] for r in srv.additional} == {"10.3.0.1", "10.3.0.2"}
    any_ = mesos_dns.dig("Chronos.Marathon.Mesos", "ANY")
    assert any_.values("A") == {"1.2.3.11"} and {r[3] for r in any_.authority} == {"SOA", "NS"}


def test_workers_report_their_tables_on_sigusr1(mesos_dns: DNSProcess) -> None:
    assert mesos_dns.process is not None
    for i in range(50):
        mesos_dns.dig(f"flood{i}.marathon.mesos")
    worker = _dns_workers(mesos_dns.process.pid)[0]
    os.kill(worker, signal.SIGUSR1)

    def reported() -> dict[str, Any] | None:
        found = re.findall(rf"dns worker {worker} stats: (\{{.*\}})", mesos_dns.log_path.read_text(errors="replace"))
        return json.loads(found[-1]) if found else None

    stats = wait_until(reported, timeout=10, what="the worker's stats line")
    assert stats["entries"] <= stats["names"] and stats["rss_kb"] > 0 and stats["missing"] < 50


def test_tcp(mesos_dns: DNSProcess) -> None:
    result = mesos_dns.dig("liquor-store.marathon.mesos", "A", "+tcp")
    assert result.status == "NOERROR" and result.values() == {"10.3.0.1", "10.3.0.2"}
    assert "(TCP)" in result.output


def test_external_queries_refused_when_externalon_is_false(mesos_dns: DNSProcess) -> None:
    assert mesos_dns.dig("example.com").status == "REFUSED"


def test_malformed_packets_get_formerr_and_never_crash(mesos_dns: DNSProcess) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f\x01", ("127.0.0.1", mesos_dns.dns_port))
        reply, _ = sock.recvfrom(512)
        assert reply[:2] == b"\xbe\xef" and reply[2] & 0x80 and reply[3] & 0x0F == 1  # FORMERR
        for junk in (b"", b"\x00", b"\xff" * 11, bytes(range(256)) * 4):
            sock.sendto(junk, ("127.0.0.1", mesos_dns.dns_port))
    with socket.create_connection(("127.0.0.1", mesos_dns.dns_port), timeout=3) as conn:
        conn.sendall(struct.pack("!H", 5) + b"\x00\x01\x02\x03\x04")
        conn.recv(512)  # FORMERR or a close: either is fine, as long as the server survives
    assert mesos_dns.dig("leader.mesos").status == "NOERROR"


def test_http_api(mesos_dns: DNSProcess, master: FakeMaster) -> None:
    version = mesos_dns.get("/v1/version")
    assert version.status_code == 200 and version.headers["Content-Type"].startswith("application/json")
    assert version.json()["Service"] == "Mesos-DNS"
    assert mesos_dns.get("/v1/version", headers={"Accept": "application/json"}).status_code == 200
    config = mesos_dns.get("/v1/config").json()
    assert (
        config["Masters"] == [master.address]
        and config["Domain"] == "mesos"
        and config["SOAMname"] == "mesos-dns.mesos."
    )
    hosts = mesos_dns.get("/v1/hosts/liquor-store.marathon.mesos").json()
    assert sorted(hosts, key=lambda h: h["ip"]) == [
        {"host": "liquor-store.marathon.mesos.", "ip": "10.3.0.1"},
        {"host": "liquor-store.marathon.mesos.", "ip": "10.3.0.2"},
    ]
    assert mesos_dns.get("/v1/hosts/slave.mesos.").json()[-1] == {"host": "slave.mesos.", "ip": "2001:db8::1"}
    assert mesos_dns.get("/v1/hosts/nope.mesos").json() == [{"host": "", "ip": ""}]
    ports = mesos_dns.get("/v1/hosts/leader.mesos/ports")
    assert ports.status_code == 501 and ports.text == "To be implemented..."
    services = mesos_dns.get("/v1/services/_leader._tcp.mesos.").json()
    assert services == [
        {"service": "_leader._tcp.mesos.", "host": "leader.mesos.", "ip": "127.0.0.1", "port": str(master.port)}
    ]
    liquor = mesos_dns.get("/v1/services/_liquor-store._tcp.marathon.mesos").json()
    assert len(liquor) == 4 and {row["port"] for row in liquor} == {"80", "443"}
    assert mesos_dns.get("/v1/services/_nope._tcp.mesos").json() == [{"service": "", "host": "", "ip": "", "port": ""}]
    enumerate_ = mesos_dns.get("/v1/enumerate").json()
    assert [f["name"] for f in enumerate_["frameworks"]][-1] == "marathon"
    axfr = mesos_dns.get("/v1/axfr").json()
    assert axfr["Domain"] == "mesos" and "leader.mesos." in axfr["Records"]["As"]
    missing = mesos_dns.get("/v1/nothing")
    assert missing.status_code == 404 and missing.text == "404: Page Not Found"


# Instances with their own config or master.


def _many_tasks(n: int) -> dict[str, Any]:
    doc = state()
    marathon = doc["frameworks"][3]
    for i in range(n):
        marathon["tasks"].append(
            {
                "id": f"web.{i}",
                "name": "web",
                "slave_id": doc["slaves"][1]["id"],
                "state": "TASK_RUNNING",
                "resources": {"ports": f"[{31000 + i}-{31000 + i}]"},
                "statuses": [
                    {
                        "state": "TASK_RUNNING",
                        "timestamp": 1.0,
                        "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": f"10.9.0.{i + 1}"}]}]},
                    }
                ],
            }
        )
    return doc


def test_truncation_and_tcp_fallback(start_dns: Callable[..., DNSProcess], tmp_path: Path) -> None:
    fake = FakeMaster(_many_tasks(60)).start()
    try:
        # --workers 0: answered in the service process itself.
        dns = start_dns({"masters": [fake.address], "IPSources": ["netinfo", "host"]}, "--workers", "0")
        udp = dns.dig("web.marathon.mesos", "A", "+noedns", "+ignore")
        assert "tc" in udp.flags and 0 < len(udp.answer) < 60
        edns = dns.dig("web.marathon.mesos", "A", "+bufsize=4096", "+ignore")
        assert "tc" not in edns.flags and len(edns.answer) == 60
        fallback = dns.dig("web.marathon.mesos", "A", "+noedns")
        assert "Truncated, retrying in TCP mode" in fallback.output
        assert len(fallback.values()) == 60 and "(TCP)" in fallback.output
        srv = dns.dig("_web._tcp.marathon.mesos", "SRV", "+noedns", "+ignore")
        assert "tc" in srv.flags and not srv.additional and 0 < len(srv.answer) < 60
    finally:
        fake.stop()


class _Fixed(BaseResolver):
    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        reply.header.aa = 0  # a recursive server's answer: passed through as is, not made authoritative
        if str(request.q.qname) == "www.example.test." and request.q.qtype == QTYPE.A:
            reply.add_answer(RR("www.example.test.", QTYPE.A, ttl=30, rdata=A("192.0.2.99")))
        return reply


def test_forwarding_to_other_dns_servers(start_dns: Callable[..., DNSProcess], master: FakeMaster) -> None:
    upstream_port, zone_port, dead_port = free_port(), free_port(), free_port()
    servers = [
        DNSServer(_Fixed(), port=p, address="127.0.0.1", tcp=t)
        for p in (upstream_port, zone_port)
        for t in (False, True)
    ]
    for server in servers:
        server.start_thread()
    try:
        dns = start_dns(
            {
                "masters": [master.address],
                "resolvers": [f"127.0.0.1:{dead_port}", f"127.0.0.1:{upstream_port}"],
                "zoneResolvers": {"zone.test": [f"127.0.0.1:{zone_port}"], "broken.test": [f"127.0.0.1:{dead_port}"]},
                "timeout": 2,
            },
            "--workers",
            "1",
        )
        forwarded = dns.dig("www.example.test")
        assert forwarded.status == "NOERROR" and forwarded.values() == {"192.0.2.99"}
        assert "aa" not in forwarded.flags and forwarded.answer[0][1] == "30"
        assert dns.dig("www.example.test", "A", "+tcp").values() == {"192.0.2.99"}
        assert dns.dig("nothing.zone.test").status == "NOERROR"
        assert dns.dig("x.broken.test").status == "SERVFAIL"
        assert dns.dig("leader.mesos").values() == {"127.0.0.1"}
    finally:
        for server in servers:
            server.stop()


def test_follows_task_changes_and_keeps_records_when_the_master_goes(start_dns: Callable[..., DNSProcess]) -> None:
    fake = FakeMaster(state()).start()
    dns = start_dns({"masters": [fake.address], "refreshSeconds": 60}, "--workers", "1")
    assert dns.dig("late.marathon.mesos").status == "NXDOMAIN"

    def add_task(doc: dict[str, Any]) -> None:
        doc["frameworks"][3]["tasks"].append(
            {
                "id": "late.1",
                "name": "late",
                "slave_id": doc["slaves"][1]["id"],
                "state": "TASK_RUNNING",
                "resources": {"ports": "[]"},
                "statuses": [],
            }
        )

    fake.update(add_task)
    started = time.monotonic()
    dns.wait_for("late.marathon.mesos", timeout=10)
    assert time.monotonic() - started < 2.5, "a new task must be served within about a second"
    fake.failing = True
    failed = fake.requests["/master/state"]
    wait_until(lambda: fake.requests["/master/state"] >= failed + 2, timeout=10, what="failed reload attempts")
    kept = dns.dig("late.marathon.mesos")
    assert kept.values() == {"1.2.3.11"}, kept.output + dns.log()
    assert dns.get("/v1/hosts/late.marathon.mesos").json() == [{"host": "late.marathon.mesos.", "ip": "1.2.3.11"}]
    fake.stop()
    time.sleep(1.0)  # connection refused now: still the last good records
    assert dns.dig("late.marathon.mesos").values() == {"1.2.3.11"}


def test_unreachable_master_at_boot_is_retried(start_dns: Callable[..., DNSProcess], tmp_path: Path) -> None:
    port = free_port()
    dns = start_dns({"masters": [f"127.0.0.1:{port}"]}, "--workers", "1", ready=False)
    assert dns.dig("leader.mesos").status == "SERVFAIL"  # never a false NXDOMAIN before the first load
    fake = FakeMaster(state(), port=port).start()
    try:
        dns.wait_for("leader.mesos", timeout=15)
    finally:
        fake.stop()


def test_invalid_config_is_rejected_at_start_naming_the_field(tmp_path: Path) -> None:
    for doc, field in (
        ({"masters": ["10.0.0.1"]}, "masters"),
        ({"masters": ["10.0.0.1:5050"], "port": 0}, "port"),
        ({"masters": ["10.0.0.1:5050"], "port": 70000}, "port"),
        ({"masters": ["10.0.0.1:5050"], "resolvers": ["8.8.8.8", "8.8.8.8"]}, "resolvers"),
    ):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        result = subprocess.run(
            [sys.executable, "-m", "mesolite.cli", "dns", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1 and f"mesolite dns: {field}:" in result.stderr, result.stderr


def test_seed_config_starts_as_written(start_dns: Callable[..., DNSProcess], tmp_path: Path) -> None:
    """The ApacheCon demo's config.json (seed 004): its master is unreachable here, so the process must keep
    running, serve the HTTP API on the default 8123 and answer DNS (here on a free port) without crashing."""
    # "As written" includes upstream's fixed HTTP port. On a machine where something else holds 8123 (a developer's
    # `mesolite up`) this part cannot run; the file itself is accepted by tests/unit/dns/test_config.py regardless.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8123)) == 0:
            pytest.skip("port 8123 is busy (another process serves it); the seed config's HTTP port")
    seed = (
        '{"masters": ["10.141.141.10:5050"], "refreshSeconds": 10, "ttl": 20, "domain": "mesos", "port": 53, '
        '"resolvers": ["8.8.8.8"], "timeout": 5}'
    )
    path = tmp_path / "config.json"
    path.write_text(seed)
    dns_port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mesolite.cli",
            "dns",
            "--config",
            str(path),
            "--dns-port",
            str(dns_port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        config = wait_until(lambda: requests.get("http://127.0.0.1:8123/v1/config", timeout=1).json(), timeout=20)
        assert config["Masters"] == ["10.141.141.10:5050"] and config["TTL"] == 20 and config["Port"] == dns_port
        assert dig(dns_port, "leader.mesos").status == "SERVFAIL"
        assert process.poll() is None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def _dns_workers(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"mesolite.dns.listener" in cmdline and os.getpgid(int(entry.name)) == group:
                found.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return found


def test_a_dead_dns_worker_is_replaced(mesos_dns: DNSProcess) -> None:
    assert mesos_dns.process is not None
    workers = _dns_workers(mesos_dns.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    group = mesos_dns.process.pid

    def replacement() -> list[int] | None:
        now = _dns_workers(group)
        return now if len(now) == 2 and workers[0] not in now else None

    replaced = wait_until(replacement, timeout=15, what="a replacement DNS worker")
    assert workers[1] in replaced
    # Queries that were hashed to the dead worker's socket are answered by its replacement.
    assert all(mesos_dns.dig("leader.mesos").status == "NOERROR" for _ in range(10))
    assert mesos_dns.dig("liquor-store.marathon.mesos").values() == {"10.3.0.1", "10.3.0.2"}


def test_dns_only_without_http(master: FakeMaster, tmp_path: Path) -> None:
    """``httpon: false``: no HTTP port, the service runs alone and stops cleanly on SIGTERM."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"masters": [master.address], "httpon": False, "listener": "127.0.0.1"}))
    dns_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mesolite.cli", "dns", "--config", str(config), "--dns-port", str(dns_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: dig(dns_port, "leader.mesos").values() == {"127.0.0.1"}, timeout=20)
        assert dig(dns_port, "leader.mesos", "A", "+tcp").values() == {"127.0.0.1"}
        assert len(_dns_workers(process.pid)) == (os.cpu_count() or 1)  # one per core by default
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        wait_until(lambda: not _dns_workers(process.pid), timeout=10, what="the DNS workers to exit with the service")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
