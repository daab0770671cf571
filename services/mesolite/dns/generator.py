"""Records from a master's ``/master/state`` by Mesos-DNS' rules (``records/generator.go``, ``records/chains.go``,
``records/state/state.go``); where its docs and its code disagree, the code wins, because the names clients use
are the ones the code produced.

The generator is a pure function of (state, config, masters): it returns a new :class:`RecordSet` that the caller
swaps in whole, so a query never sees half a reload. Unlike upstream, a malformed field (a pid that does not parse,
a hostname leader) skips that one record instead of failing the reload or crashing the process.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesolite.dns import labels
from mesolite.dns.config import DNSConfig, join_host_port, split_host_port
from mesolite.dns.netutil import local_addresses

log = logging.getLogger(__name__)

A, AAAA, SRV = "A", "AAAA", "SRV"
_ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
_DOCKER_IP_LABEL = "Docker.NetworkSettings.IPAddress"
_MESOS_IP_LABEL = "MesosContainerizer.NetworkSettings.IPAddress"

Lookup = Callable[[str], list[str]]


class StateError(Exception):
    """The state cannot be used at all (no leader): the previous records stay in service."""


# name -> values in insertion order; a dict used as an ordered set, as upstream uses a map as a set.
RRs = dict[str, dict[str, None]]


@dataclass
class RecordSet:
    As: RRs = field(default_factory=dict)
    AAAAs: RRs = field(default_factory=dict)
    SRVs: RRs = field(default_factory=dict)
    frameworks: list[dict[str, Any]] = field(default_factory=list)  # /v1/enumerate
    serial: int = 0

    def by_kind(self, kind: str) -> RRs:
        return {A: self.As, AAAA: self.AAAAs, SRV: self.SRVs}[kind]

    def insert(self, name: str, value: str, kind: str) -> bool:
        """Add (name, value) once; True when it was new (upstream enumerates only new pairs)."""
        if not value:
            return False
        values = self.by_kind(kind).setdefault(name, {})
        if value in values:
            return False
        values[value] = None
        return True

    def first(self, kind: str, name: str) -> str | None:
        return next(iter(self.by_kind(kind).get(name, ())), None)

    def to_wire(self) -> dict[str, Any]:
        """The part DNS worker processes need, as plain JSON."""
        return {
            "serial": self.serial,
            "A": {k: list(v) for k, v in self.As.items()},
            "AAAA": {k: list(v) for k, v in self.AAAAs.items()},
            "SRV": {k: list(v) for k, v in self.SRVs.items()},
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RecordSet:
        def rrs(part: dict[str, list[str]]) -> RRs:
            return {k: dict.fromkeys(v) for k, v in part.items()}

        return cls(As=rrs(data["A"]), AAAAs=rrs(data["AAAA"]), SRVs=rrs(data["SRV"]), serial=int(data["serial"]))


def hash_string(text: str) -> str:
    """Canonical-name hash: the first 25 bits of SHA-1 in z-base-32 (``hash_string("test") == "iffe9"``)."""
    value = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "big") >> 7  # noqa: S324 - a name, not security
    return "".join(_ZBASE32[(value >> shift) & 31] for shift in (20, 15, 10, 5, 0))


def parse_ip(text: Any) -> tuple[str, str] | None:
    """(canonical text, A|AAAA) as Go's ``net.ParseIP`` + ``String()`` would give, or None."""
    if not isinstance(text, str) or "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), A
    return str(ip), (A if ip.version == 4 else AAAA)


def system_lookup(host: str) -> list[str]:
    """Upstream resolves non-IP agent and framework hosts with the system resolver."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in out:
            out.append(address)
    return out


class CachedLookup:
    """System lookups remembered for a while: a framework hostname that does not resolve would otherwise stall every
    reload for the resolver's full timeout."""

    def __init__(self, ttl: float = 60.0, lookup: Lookup = system_lookup) -> None:
        self._ttl = ttl
        self._lookup = lookup
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def __call__(self, host: str) -> list[str]:
        now = time.monotonic()
        hit = self._cache.get(host)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        result = self._lookup(host) if host else []
        self._cache[host] = (now, result)
        return result


def _host_ips(host: str, lookup: Lookup) -> list[tuple[str, str]]:
    parsed = parse_ip(host)
    if parsed is not None:
        return [parsed]
    return [p for p in (parse_ip(a) for a in lookup(host)) if p is not None] if host else []


def parse_upid(pid: Any) -> tuple[str, str] | None:
    """``name@host:port`` → (host, port); anything else → None (upstream: the whole reload fails)."""
    if not isinstance(pid, str):
        return None
    parts = pid.split("@")
    if len(parts) != 2:
        return None
    try:
        host, port = split_host_port(parts[1])
    except ValueError:
        return None
    if not port.isdigit():
        return None
    return host, port


def parse_ports(ports: Any) -> list[str]:
    """``"[31111-31111, 31115-31117]"`` → each port, as ``resources.ports`` is printed by the master."""
    if not isinstance(ports, str) or ports in ("", "[]") or "[" not in ports:
        return []
    inner = ports.split("[", 1)[1].split("]", 1)[0]
    out: list[str] = []
    for item in inner.split(","):
        bounds = item.strip().split("-")
        if len(bounds) != 2 or not bounds[0].isdigit() or not bounds[1].isdigit():
            continue
        out.extend(str(p) for p in range(int(bounds[0]), int(bounds[1]) + 1))
    return out


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _latest_running(statuses: list[Any]) -> dict[str, Any] | None:
    # The master makes no promise about status order, so upstream picks the latest RUNNING status by timestamp.
    best, best_ts = None, -1.0
    for status in statuses:
        status = _d(status)
        ts = status.get("timestamp")
        if status.get("state") == "TASK_RUNNING" and isinstance(ts, int | float) and ts > best_ts:
            best, best_ts = status, float(ts)
    return best


def _label_values(status: dict[str, Any], key: str) -> list[str]:
    found = _d(status.get("labels")).get("labels") if isinstance(status.get("labels"), dict) else status.get("labels")
    return [_s(_d(label).get("value")) for label in _l(found) if _d(label).get("key") == key]


def _netinfo_values(status: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for info in _l(_d(status.get("container_status")).get("network_infos")):
        info = _d(info)
        addresses = _l(info.get("ip_addresses"))
        if addresses:
            out.extend(_s(_d(a).get("ip_address")) for a in addresses)
        elif _s(info.get("ip_address")):
            out.append(_s(info.get("ip_address")))
    return out


def task_ips(task: dict[str, Any], sources: list[str], agent_ips: list[str]) -> list[tuple[str, str]]:
    """IPs from the first configured source that yields any (``records/state/state.go`` Task.IPs)."""
    status = _latest_running(_l(task.get("statuses")))
    for source in sources:
        if source == "host":
            raw = agent_ips
        elif status is None:
            raw = []
        elif source == "netinfo":
            raw = _netinfo_values(status)
        elif source == "mesos":
            raw = _label_values(status, _MESOS_IP_LABEL)
        elif source == "docker":
            raw = _label_values(status, _DOCKER_IP_LABEL)
        else:
            raw = []
        ips = [p for p in (parse_ip(r) for r in raw) if p is not None]
        if ips:
            return ips
    return []


class _Generator:
    def __init__(self, config: DNSConfig, lookup: Lookup) -> None:
        self.config = config
        self.lookup = lookup
        self.label = labels.rfc952 if config.EnforceRFC952 else labels.rfc1123
        self.tail = "." + config.Domain + "."
        self.rs = RecordSet()
        self.agent_ips: dict[str, list[str]] = {}

    def frag(self, name: str) -> str:
        return labels.domain_frag(name, self.label)

    def frameworks(self, state: dict[str, Any]) -> None:
        for framework in _l(state.get("frameworks")):
            framework = _d(framework)
            pid = parse_upid(framework.get("pid"))
            host, port = pid if pid else (_s(framework.get("hostname")), "")
            ips = _host_ips(host, self.lookup)
            if not ips:
                continue
            name = self.frag(_s(framework.get("name"))) + self.tail
            for ip, kind in ips:
                self.rs.insert(name, ip, kind)
            if port:
                self.rs.insert("_framework._tcp." + name, join_host_port(name, port), SRV)

    def agents(self, state: dict[str, Any]) -> None:
        name = "slave" + self.tail
        for agent in _l(state.get("slaves")):
            agent = _d(agent)
            pid = parse_upid(agent.get("pid"))
            host, port = pid if pid else (_s(agent.get("hostname")), "")
            ips = _host_ips(host, self.lookup)
            for ip, kind in ips:
                self.rs.insert(name, ip, kind)
            if ips and port:
                self.rs.insert("_slave._tcp" + self.tail, join_host_port(name, port), SRV)
            # No IP: upstream keeps the sanitised hostname as the agent "address" (mesos-dns#509).
            self.agent_ips[_s(agent.get("id"))] = [ip for ip, _ in ips] or [self.frag(host)]

    def listener(self) -> None:
        ns, listener = self.config.SOAMname, self.config.Listener
        if listener == "0.0.0.0":
            for address in local_addresses():
                parsed = parse_ip(address)
                if parsed:
                    self.rs.insert(ns, parsed[0], parsed[1])
        else:
            parsed = parse_ip(listener)
            if parsed:
                self.rs.insert(ns, parsed[0], parsed[1])

    def _ip_of(self, host: str) -> tuple[str, str] | None:
        ips = _host_ips(host, self.lookup)
        return ips[0] if ips else None

    def masters(self, masters: list[str], leader: str) -> None:
        parts = leader.split("@")
        if len(parts) < 2:
            return
        leader_address = parts[1]
        try:
            host, port = _split_loose(leader_address)
        except ValueError:
            return
        leader_ip = self._ip_of(host)
        if leader_ip is None:
            return
        ip, kind = leader_ip
        all_masters = "master" + self.tail
        self.rs.insert("leader" + self.tail, ip, kind)
        self.rs.insert(all_masters, ip, kind)
        target = "leader" + self.tail + ":" + port
        self.rs.insert("_leader._tcp" + self.tail, target, SRV)
        self.rs.insert("_leader._udp" + self.tail, target, SRV)
        # masterN follows the configured order so names stay put across elections; a leader missing from the list
        # gets the next index.
        leader_indexed = False
        index = 0
        for master in masters:
            try:
                master_host, _ = _split_loose(master)
            except ValueError:
                continue
            master_ip = self._ip_of(master_host)
            if master_ip is None:
                continue
            if master != leader_address and not self.rs.insert(all_masters, master_ip[0], master_ip[1]):
                continue  # a duplicate master
            if master == leader_address and leader_indexed:
                continue
            self.rs.insert(f"master{index}{self.tail}", master_ip[0], master_ip[1])
            index += 1
            leader_indexed = leader_indexed or master == leader_address
        if not leader_indexed:
            self.rs.insert(f"master{index}{self.tail}", ip, kind)

    def tasks(self, state: dict[str, Any]) -> None:
        for framework in _l(state.get("frameworks")):
            framework = _d(framework)
            entry: dict[str, Any] = {"tasks": [], "name": _s(framework.get("name"))}
            self.rs.frameworks.append(entry)
            fname = self.frag(_s(framework.get("name")))
            for task in _l(framework.get("tasks")):
                task = _d(task)
                agent_ips = self.agent_ips.get(_s(task.get("slave_id")))
                if agent_ips is None or task.get("state") != "TASK_RUNNING":
                    continue
                enum_task: dict[str, Any] = {"name": _s(task.get("name")), "id": _s(task.get("id")), "records": []}
                entry["tasks"].append(enum_task)
                self.task(task, fname, agent_ips, enum_task["records"])

    def task(self, task: dict[str, Any], fname: str, agent_ips: list[str], enum: list[dict[str, str]]) -> None:
        discovery = _d(task.get("discovery"))
        di_name = _s(discovery.get("name"))
        ips = task_ips(task, self.config.IPSources, agent_ips)
        hashed = hash_string(_s(task.get("id")))
        agent_tail = _s(task.get("slave_id")).split("-")[-1].lower()
        if di_name:
            # Upstream emits every record twice when DiscoveryInfo names the task: with the raw name (its
            # "LEGACY, TODO: REMOVE" block, which clients found and use) and with the sanitised one.
            for name in (di_name, self.label(di_name)):
                self.task_records(task, name, hashed, agent_tail, fname, ips, agent_ips, discovery, enum)
        else:
            name = self.label(_s(task.get("name")))
            self.task_records(task, name, hashed, agent_tail, fname, ips, agent_ips, None, enum)

    def task_records(
        self,
        task: dict[str, Any],
        name: str,
        hashed: str,
        agent_tail: str,
        fname: str,
        ips: list[tuple[str, str]],
        agent_ips: list[str],
        discovery: dict[str, Any] | None,
        enum: list[dict[str, str]],
    ) -> None:
        tail = self.tail

        def insert(record: str, value: str, kind: str) -> None:
            if self.rs.insert(record, value, kind):
                enum.append({"name": record, "host": value, "rtype": kind})

        canonical = f"{name}-{hashed}-{agent_tail}.{fname}"
        arec = f"{name}.{fname}"
        for ip, kind in ips:
            insert(arec + tail, ip, kind)
            insert(canonical + tail, ip, kind)
        for value in agent_ips:
            parsed = parse_ip(value)
            ip, kind = parsed if parsed else (value, A)
            insert(arec + ".slave" + tail, ip, kind)
            insert(canonical + ".slave" + tail, ip, kind)

        service = "_" + name
        # Host ports: under .slave always; at the framework's own name only when DiscoveryInfo does not say
        # which ports the task publishes.
        subdomains = ["slave"] if discovery is not None else ["slave", ""]
        slave_target = canonical + ".slave" + tail
        for port in parse_ports(_d(task.get("resources")).get("ports")):
            for sub in subdomains:
                for proto in ("tcp", "udp"):
                    record = f"{service}._{proto}.{fname}" + (f".{sub}" if sub else "")
                    insert(record + tail, f"{slave_target}:{port}", SRV)
        if discovery is None:
            return
        for raw_port in _l(_d(discovery.get("ports")).get("ports")):
            dport = _d(raw_port)
            number = dport.get("number")
            if not isinstance(number, int) or isinstance(number, bool):
                continue
            target = f"{canonical}{tail}:{number}"
            proto = self.label(_s(dport.get("protocol")))
            records = (
                [f"{service}._{proto}.{fname}"] if proto else [f"{service}._tcp.{fname}", f"{service}._udp.{fname}"]
            )
            port_name = self.label(_s(dport.get("name")))
            for record in records:
                insert(record + tail, target, SRV)
            if port_name:
                for record in records:
                    insert(f"_{port_name}.{record}{tail}", target, SRV)


def _split_loose(pair: str) -> tuple[str, str]:
    """upstream ``urls.SplitHostPort``: Go's split, else everything after the first colon is the port."""
    try:
        return split_host_port(pair)
    except ValueError:
        host, sep, port = pair.partition(":")
        if not sep:
            raise
        return host, port


def generate(state: dict[str, Any], config: DNSConfig, masters: list[str], lookup: Lookup = system_lookup) -> RecordSet:
    """All records for one master state; ``StateError`` when it names no leader."""
    leader = state.get("leader") if isinstance(state, dict) else None
    if not isinstance(leader, str) or not leader:
        raise StateError("empty master")
    gen = _Generator(config, lookup)
    gen.frameworks(state)
    gen.agents(state)
    gen.listener()
    gen.masters(masters, leader)
    gen.tasks(state)
    return gen.rs
