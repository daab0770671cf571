"""Mesos-DNS' config.json: the same keys, defaults and validation as upstream (``records/config.go``,
``records/validation.go``), so an existing config file works as written.

Keys match case-insensitively because Go's JSON decoder does (``refreshSeconds``, ``RefreshSeconds`` and
``refreshseconds`` are one key); unknown keys are ignored because old tutorials carry some (``ns``, ``email``).
Invalid values stop the start with a message naming the field, instead of surfacing later as a wrong answer.

``mesolite dns`` takes the file with ``-config`` as Mesos-DNS does, plus a few flags of mesolite's own (the DNS port,
worker processes, change watching); ``add_parser``/``from_args`` at the end turn them into one ``DNSConfig``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from mesolite.core.flags import non_negative_float, non_negative_int, parse_port
from mesolite.dns.netutil import local_addresses

DOMAIN_RE = re.compile(r"^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$")
IP_SOURCES = ("host", "docker", "mesos", "netinfo")
VERSION = "0.6.0-mesolite"


class ConfigError(ValueError):
    """A config.json problem, worded with the offending field's name."""


# (Go field name = the key /v1/config prints, JSON key matched case-insensitively, kind, default)
_FIELDS: list[tuple[str, str, str, Any]] = [
    ("RefreshSeconds", "refreshseconds", "int", 60),
    ("Port", "port", "int", 53),
    ("Timeout", "timeout", "int", 5),
    ("StateTimeoutSeconds", "statetimeoutseconds", "int", 300),
    ("ZkDetectionTimeout", "zkdetectiontimeout", "int", 30),
    ("HttpPort", "httpport", "int", 8123),
    ("TTL", "ttl", "int", 60),
    ("SRVRecordDefaultWeight", "srvrecorddefaultweight", "int", 1),
    ("SOARefresh", "soarefresh", "int", 60),
    ("SOARetry", "soaretry", "int", 600),
    ("SOAExpire", "soaexpire", "int", 86400),
    ("SOAMinttl", "soaminttl", "int", 60),
    ("SOAMname", "soamname", "str", "ns1.mesos"),
    ("SOARname", "soarname", "str", "root.ns1.mesos"),
    ("Masters", "masters", "list", None),
    ("ZoneResolvers", "zoneresolvers", "dict", None),
    ("Resolvers", "resolvers", "list", ["8.8.8.8"]),
    ("IPSources", "ipsources", "list", ["netinfo", "mesos", "host"]),
    ("Zk", "zk", "str", ""),
    ("Domain", "domain", "str", "mesos"),
    ("Listener", "listener", "str", "0.0.0.0"),
    ("HTTPListener", "httplistener", "str", "0.0.0.0"),
    ("RecurseOn", "recurseon", "bool", True),
    ("DnsOn", "dnson", "bool", True),
    ("HttpOn", "httpon", "bool", True),
    ("ExternalOn", "externalon", "bool", True),
    ("EnforceRFC952", "enforcerfc952", "bool", False),
    ("SetTruncateBit", "settruncatebit", "bool", True),
    ("EnumerationOn", "enumerationon", "bool", True),
    ("MesosHTTPSOn", "mesoshttpson", "bool", False),
    ("CACertFile", "cacertfile", "str", ""),
    ("CertFile", "certfile", "str", ""),
    ("KeyFile", "keyfile", "str", ""),
    ("MesosCredentials", "mesoscredentials", "credentials", None),
    ("IAMConfigFile", "iamconfigfile", "str", ""),
    ("MesosAuthentication", "mesosauthentication", "str", ""),
]
_UINT_LIMITS = {
    "SRVRecordDefaultWeight": 0xFFFF,
    "SOARefresh": 0xFFFFFFFF,
    "SOARetry": 0xFFFFFFFF,
    "SOAExpire": 0xFFFFFFFF,
    "SOAMinttl": 0xFFFFFFFF,
    "TTL": 0x7FFFFFFF,
}


@dataclass
class DNSConfig:
    """The parsed, validated config; attribute names are Go's field names so /v1/config is a plain dump."""

    RefreshSeconds: int = 60
    Port: int = 53
    Timeout: int = 5
    StateTimeoutSeconds: int = 300
    ZkDetectionTimeout: int = 30
    HttpPort: int = 8123
    TTL: int = 60
    SRVRecordDefaultWeight: int = 1
    SOASerial: int = 0
    SOARefresh: int = 60
    SOARetry: int = 600
    SOAExpire: int = 86400
    SOAMinttl: int = 60
    SOAMname: str = "ns1.mesos."
    SOARname: str = "root.ns1.mesos."
    Masters: list[str] = field(default_factory=list)
    ZoneResolvers: dict[str, list[str]] = field(default_factory=dict)
    Resolvers: list[str] = field(default_factory=lambda: ["8.8.8.8"])
    IPSources: list[str] = field(default_factory=lambda: ["netinfo", "mesos", "host"])
    Zk: str = ""
    Domain: str = "mesos"
    File: str = ""
    Listener: str = "0.0.0.0"
    HTTPListener: str = "0.0.0.0"
    RecurseOn: bool = True
    DnsOn: bool = True
    HttpOn: bool = True
    ExternalOn: bool = True
    EnforceRFC952: bool = False
    SetTruncateBit: bool = True
    EnumerationOn: bool = True
    MesosHTTPSOn: bool = False
    CACertFile: str = ""
    CertFile: str = ""
    KeyFile: str = ""
    MesosCredentials: dict[str, str] = field(default_factory=lambda: {"Principal": "", "Secret": ""})
    IAMConfigFile: str = ""
    MesosAuthentication: str = ""
    # Not in config.json: mesolite's own knobs (CLI flags), kept here so every process sees one object.
    watch_interval: float = 0.5
    workers: int = 1

    def public_json(self) -> dict[str, Any]:
        """/v1/config: upstream's shape and field order, minus the secret upstream prints in clear."""
        out = {name: value for name, value in self.__dict__.items() if name[0].isupper()}
        creds = dict(self.MesosCredentials)
        if creds.get("Secret"):
            creds["Secret"] = "******"
        out["MesosCredentials"] = creds
        return out

    @property
    def zone(self) -> str:
        """The served zone as an absolute, lowercased name (``mesos.``)."""
        return self.Domain + "."

    def to_dict(self) -> dict[str, Any]:
        """Everything, secret included: the hand-over to DNS worker processes (never served over HTTP)."""
        return {k: v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DNSConfig:
        return cls(**data)


def load_config(path: str) -> DNSConfig:
    """Read and validate ``path``; ``ConfigError`` names the field at fault."""
    file = os.path.abspath(os.path.expanduser(path))
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
    except OSError:
        raise ConfigError(f"missing configuration file: {file!r}") from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"failed to unmarshal config file {file!r}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"failed to unmarshal config file {file!r}: expected a JSON object")
    config = parse_config(doc)
    config.File = file
    return config


def parse_config(doc: dict[str, Any], resolv_conf: str = "/etc/resolv.conf") -> DNSConfig:
    config = DNSConfig()
    known = {json_key: (name, kind) for name, json_key, kind, _ in _FIELDS}
    for key, value in doc.items():
        entry = known.get(str(key).lower())
        if entry is None or value is None:
            continue  # Go ignores unknown keys and leaves a field alone on null
        name, kind = entry
        setattr(config, name, _coerce(name, kind, value))
    _validate(config, resolv_conf)
    return config


def _coerce(name: str, kind: str, value: Any) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{name}: expected an integer, got {json.dumps(value)}")
        value = int(value)
        limit = _UINT_LIMITS.get(name)
        if limit is not None and not 0 <= value <= limit:
            raise ConfigError(f"{name}: {value} is out of range (0-{limit})")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {json.dumps(value)}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {json.dumps(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of strings, got {json.dumps(value)}")
        return list(value)
    if kind == "dict":
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value.values()
        ):
            raise ConfigError(f"{name}: expected an object of string lists, got {json.dumps(value)}")
        return {str(k): list(v) for k, v in value.items()}
    # MesosCredentials: {principal, secret}, keys case-insensitive like the rest.
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected an object with principal and secret")
    creds = {"Principal": "", "Secret": ""}
    for key, item in value.items():
        for wanted in creds:
            if str(key).lower() == wanted.lower():
                if not isinstance(item, str):
                    raise ConfigError(f"{name}.{wanted}: expected a string")
                creds[wanted] = item
    return creds


def split_host_port(text: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``: ``host:port`` or ``[v6]:port``; anything else is an error."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1 :].startswith(":"):
            raise ValueError(f"address {text}: missing port in address")
        return text[1:end], text[end + 2 :]
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"address {text}: missing port in address")
    if ":" in host:
        raise ValueError(f"address {text}: too many colons in address")
    return host, port


def join_host_port(host: str, port: str | int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _valid_port(port: str) -> bool:
    return port.isdigit() and 0 < int(port) <= 65535


def _canonical_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def normalize_master(text: str) -> str:
    try:
        host, port = split_host_port(text)
    except ValueError as exc:
        raise ConfigError(f"masters: illegal host:port specified: {text!r} ({exc})") from None
    if not _valid_port(port):
        raise ConfigError(f"masters: illegal host:port specified: {text!r} (port must be 1-65535)")
    return join_host_port(_canonical_ip(host) or host, int(port))


def normalize_resolver(text: str, field_name: str = "resolvers") -> str:
    try:
        host, port = split_host_port(text)
    except ValueError:
        host, port = text, "53"
    ip = _canonical_ip(host)
    if ip is None:
        raise ConfigError(f"{field_name}: illegal ip specified: {text!r}")
    if not _valid_port(port):
        raise ConfigError(f"{field_name}: illegal host:port specified: {text!r} (port must be 1-65535)")
    return join_host_port(ip, int(port))


def _unique(values: list[str], normalize: Any, field_name: str) -> None:
    seen: set[str] = set()
    for value in values:
        key = normalize(value)
        if key in seen:
            raise ConfigError(f"{field_name}: duplicate found: {value!r}")
        seen.add(key)


def _validate(config: DNSConfig, resolv_conf: str) -> None:
    if not config.DnsOn and not config.HttpOn:
        raise ConfigError("dnson/httpon: either DNS or HTTP server should be on")
    if not config.Masters and not config.Zk:
        raise ConfigError("masters/zk: specify Mesos masters or Zookeeper in config.json")
    _unique(config.Masters, normalize_master, "masters")
    if config.Zk:
        _check_zk(config.Zk)
    for name in ("Port", "HttpPort"):
        if not 0 < getattr(config, name) <= 65535:
            raise ConfigError(f"{name.lower()}: {getattr(config, name)} is not a port (1-65535)")
    if config.RefreshSeconds <= 0:
        raise ConfigError(f"refreshSeconds: must be positive, got {config.RefreshSeconds}")
    if config.StateTimeoutSeconds <= 0:
        raise ConfigError(f"stateTimeoutSeconds: invalid HTTP timeout {config.StateTimeoutSeconds}")
    if config.Timeout < 0:
        raise ConfigError(f"timeout: must not be negative, got {config.Timeout}")
    if config.ZkDetectionTimeout < 0:
        raise ConfigError(f"zkDetectionTimeout: must not be negative, got {config.ZkDetectionTimeout}")
    config.Domain = config.Domain.lower()
    if not DOMAIN_RE.match(config.Domain):
        raise ConfigError(f"domain: {config.Domain!r} is not a valid domain name")
    if config.ExternalOn:
        if not config.Resolvers:
            config.Resolvers = resolv_conf_nameservers(resolv_conf)
        _unique(config.Resolvers, normalize_resolver, "resolvers")
        _validate_zone_resolvers(config.ZoneResolvers, config.Domain)
    if not config.IPSources:
        raise ConfigError("IPSources: empty ip sources")
    if len(set(config.IPSources)) != len(config.IPSources):
        raise ConfigError("IPSources: duplicate ip source specified")
    for source in config.IPSources:
        if source not in IP_SOURCES:
            raise ConfigError(f"IPSources: invalid ip source {source!r}")
    for name in ("Listener", "HTTPListener"):
        if _canonical_ip(getattr(config, name)) is None:
            raise ConfigError(f"{name.lower()}: {getattr(config, name)!r} is not an IP address")
    if bool(config.CertFile) != bool(config.KeyFile):
        raise ConfigError("CertFile/KeyFile: " + ("Missing private key" if config.CertFile else "Missing certificate"))
    if config.MesosAuthentication not in ("", "basic", "iam"):
        raise ConfigError(f"mesosAuthentication: unknown mechanism {config.MesosAuthentication!r}")
    if config.MesosAuthentication == "basic" and not config.MesosCredentials.get("Principal"):
        raise ConfigError("mesosCredentials: basic authentication needs a principal")
    if config.MesosAuthentication == "iam":
        raise ConfigError("mesosAuthentication: 'iam' (DC/OS service accounts) is not supported by mesolite")
    # initSOA: trailing dots, '@' in the mailbox written as a dot; the serial is the load time.
    config.SOARname = config.SOARname.replace("@", ".").rstrip(".") + "."
    config.SOAMname = config.SOAMname.rstrip(".") + "."
    config.SOASerial = int(time.time())


def _check_zk(url: str) -> None:
    if not url.startswith("zk://") or "/" not in url[len("zk://") :] or url.endswith("/"):
        raise ConfigError(f"zk: invalid ZooKeeper URL {url!r} (expected zk://host:port[,host:port...]/path)")


def _validate_zone_resolvers(zones: dict[str, list[str]], domain: str) -> None:
    suffixes = []
    for zone, resolvers in zones.items():
        if not resolvers:
            raise ConfigError(f"zoneResolvers: field ZoneResolver {zone!r} is empty")
        if not DOMAIN_RE.match(zone):
            raise ConfigError(f"zoneResolvers: invalid domain name: {zone!r}")
        _unique(resolvers, lambda r: normalize_resolver(r, "zoneResolvers"), "zoneResolvers")
        if zone == domain:
            raise ConfigError(f"zoneResolvers: can't specify ZoneResolver for Mesos domain ({domain})")
        suffixes.append("." + zone)
    suffixes.append("." + domain)
    for a in suffixes:
        for b in suffixes:
            if a != b and a.endswith(b):
                raise ConfigError(f"zoneResolvers: ambiguous zone resolvers: {a} is masked by {b}")


def resolv_conf_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    """``resolvers: []``: the system's nameservers, minus this host's own addresses (no forwarding loops)."""
    servers: list[str] = []
    try:
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    servers.append(parts[1])
    except OSError:
        return []
    local = set(local_addresses(include_loopback=True))
    return [s for s in servers if (_canonical_ip(s) or s) not in local]


def write_demo_config(directory: str, ip: str, master: str, dns_port: int, http_port: int) -> str:
    """The config.json ``mesolite up`` runs Mesos-DNS with: the demo master, the demo ports, forwarding to this
    host's own nameservers (``resolvers: []``)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.json")
    doc = {
        "masters": [master],
        "refreshSeconds": 60,
        "ttl": 60,
        "domain": "mesos",
        "port": dns_port,
        "resolvers": [],
        "timeout": 5,
        "listener": ip,
        "httpListener": ip,
        "httpport": http_port,
        "IPSources": ["netinfo", "mesos", "host"],
    }
    with open(path, "w") as handle:
        json.dump(doc, handle, indent=2)
    return path


def default_workers() -> int:
    """One DNS worker per core: each is a single-threaded receive loop."""
    return max(1, os.cpu_count() or 1)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    dns = subparsers.add_parser(
        "dns", help="run Mesos-DNS (DNS and HTTP discovery of tasks) from a Mesos-DNS config.json"
    )
    dns.add_argument("--config", "-config", default="config.json", help="path to the Mesos-DNS config.json")
    dns.add_argument(
        "--dns-port", "--dns_port", type=parse_port, help="DNS port (UDP and TCP), overriding the config's port"
    )
    dns.add_argument(
        "--workers",
        type=non_negative_int,
        help="DNS worker processes sharing the port (default: one per core; 0: answer in the service process)",
    )
    dns.add_argument(
        "--watch-interval",
        "--watch_interval",
        type=non_negative_float,
        default=0.5,
        help="seconds between /master/state-summary change checks (0: only poll every refreshSeconds, as upstream)",
    )
    return dns


def from_args(args: argparse.Namespace) -> DNSConfig:
    """The config.json named by ``--config`` with the flags applied; ``ConfigError`` names what is wrong in it."""
    config = load_config(args.config)
    if args.dns_port is not None:
        config.Port = args.dns_port
    config.workers = default_workers() if args.workers is None else args.workers
    config.watch_interval = args.watch_interval
    return config
