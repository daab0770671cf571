"""config.json as upstream reads it: defaults, case-insensitive keys, validation naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesolite.dns.config import ConfigError, default_workers, from_args, load_config, parse_config
from tests.cli_args import parse, refusal

# The config.json of seed 004 (ApacheCon demo), verbatim.
SEED_004 = """{
"masters": ["10.141.141.10:5050"],
"refreshSeconds": 10,
"ttl": 20,
"domain": "mesos",
"port": 53,
"resolvers": ["8.8.8.8"],
"timeout": 5
}"""


def test_seed_config_works_as_written(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(SEED_004)
    config = load_config(str(path))
    assert config.Masters == ["10.141.141.10:5050"]
    assert (config.RefreshSeconds, config.TTL, config.Port, config.Timeout) == (10, 20, 53, 5)
    assert config.Resolvers == ["8.8.8.8"]
    # Everything else keeps upstream's defaults.
    assert config.HttpPort == 8123 and config.StateTimeoutSeconds == 300 and config.Listener == "0.0.0.0"
    assert config.IPSources == ["netinfo", "mesos", "host"]
    assert (config.SOAMname, config.SOARname) == ("ns1.mesos.", "root.ns1.mesos.")
    assert (config.SOARefresh, config.SOARetry, config.SOAExpire, config.SOAMinttl) == (60, 600, 86400, 60)
    assert config.DnsOn and config.HttpOn and config.ExternalOn and config.RecurseOn and config.SetTruncateBit
    assert config.EnumerationOn and not config.EnforceRFC952
    assert config.File == str(path)


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored() -> None:
    config = parse_config(
        {"MASTERS": ["m:1"], "RefreshSeconds": 7, "HTTPPORT": 9000, "dnsOn": False, "ns": "ns1", "email": "x@y"}
    )
    assert (config.Masters, config.RefreshSeconds, config.HttpPort, config.DnsOn) == (["m:1"], 7, 9000, False)


def test_soa_names_get_trailing_dots_and_the_mailbox_at_becomes_a_dot() -> None:
    config = parse_config({"masters": ["m:1"], "SOAMname": "ns9.example", "SOARname": "admin@example.com"})
    assert (config.SOAMname, config.SOARname) == ("ns9.example.", "admin.example.com.")
    assert parse_config({"zk": "zk://h:2181/mesos", "domain": "MeSoS"}).Domain == "mesos"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"masters": ["10.0.0.1"]}, "masters"),
        ({"masters": ["a:0"]}, "masters"),
        ({"masters": ["a:65536"]}, "masters"),
        ({"masters": [""]}, "masters"),
        ({"masters": ["1.2.3.4:5", "1.2.3.4:5"]}, "masters"),
        ({"masters": ["[2001:db8::1]:5", "[2001:db8:0:0:0:0:0:1]:5"]}, "masters"),
        ({"masters": []}, "masters/zk"),
        ({"masters": ["a:1"], "port": 0}, "port"),
        ({"masters": ["a:1"], "port": 65536}, "port"),
        ({"masters": ["a:1"], "httpport": 0}, "httpport"),
        ({"masters": ["a:1"], "port": "53"}, "Port"),
        ({"masters": ["a:1"], "resolvers": ["8.8.8.8", "8.8.8.8:53"]}, "resolvers"),
        ({"masters": ["a:1"], "resolvers": ["a"]}, "resolvers"),
        ({"masters": ["a:1"], "resolvers": ["1.2.3.4.5"]}, "resolvers"),
        ({"masters": ["a:1"], "resolvers": ["1.2.3.4:65536"]}, "resolvers"),
        ({"masters": ["a:1"], "resolvers": ["1.2.3.4:abc"]}, "resolvers"),
        ({"masters": ["a:1"], "IPSources": []}, "IPSources"),
        ({"masters": ["a:1"], "IPSources": ["host", "host"]}, "IPSources"),
        ({"masters": ["a:1"], "IPSources": ["rkt"]}, "IPSources"),
        ({"masters": ["a:1"], "domain": "dc.mesos", "zoneResolvers": {"mesos": ["1.1.1.1"]}}, "zoneResolvers"),
        ({"masters": ["a:1"], "domain": "dc.mesos", "zoneResolvers": {"dc.mesos": ["1.1.1.1"]}}, "zoneResolvers"),
        ({"masters": ["a:1"], "domain": "dc.mesos", "zoneResolvers": {"site.dc.mesos": ["1.1.1.1"]}}, "zoneResolvers"),
        ({"masters": ["a:1"], "zoneResolvers": {"": ["1.1.1.1"]}}, "zoneResolvers"),
        ({"masters": ["a:1"], "zoneResolvers": {"abc.com": ["1.1.1.1"], "com": ["1.1.1.2"]}}, "zoneResolvers"),
        ({"masters": ["a:1"], "zoneResolvers": {"weave": []}}, "zoneResolvers"),
        ({"masters": ["a:1"], "stateTimeoutSeconds": 0}, "stateTimeoutSeconds"),
        ({"masters": ["a:1"], "domain": "bad_domain"}, "domain"),
        ({"masters": ["a:1"], "dnson": False, "httpon": False}, "dnson/httpon"),
        ({"masters": ["a:1"], "dnson": "yes"}, "DnsOn"),
        ({"masters": ["a:1"], "CertFile": "c.pem"}, "CertFile/KeyFile"),
        ({"zk": "http://h:2181/mesos"}, "zk"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(doc)
    assert str(error.value).startswith(field + ":"), error.value


def test_valid_address_forms() -> None:
    masters = ["a:1234", "1.2.3.4:5", "[2001:db8::1]:1", "1.2.3.4.5:6"]
    resolvers = ["1.2.3.4", "1.2.3.5:53", "2001:db8::1", "[2001:db8::2]:55", "5.6.7.8:65535"]
    zones = {"weave": ["1.1.1.1"], "acdc.mesos": ["1.1.1.1"], "abc.com": ["1.1.1.1"], "bc.com": ["1.1.1.1"]}
    config = parse_config({"masters": masters, "resolvers": resolvers, "zoneResolvers": zones, "domain": "dc.mesos"})
    assert config.Masters == masters and config.Resolvers == resolvers


def test_empty_resolvers_come_from_resolv_conf_without_local_addresses(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example\nnameserver 127.0.0.1\nnameserver 192.0.2.53\n")
    assert parse_config({"masters": ["a:1"], "resolvers": []}, str(resolv)).Resolvers == ["192.0.2.53"]


def test_public_json_has_go_field_names_and_hides_the_secret() -> None:
    config = parse_config(
        {
            "masters": ["a:1"],
            "mesosAuthentication": "basic",
            "mesosCredentials": {"principal": "dns", "secret": "s3cr3t"},
        }
    )
    shown = config.public_json()
    assert shown["MesosCredentials"] == {"Principal": "dns", "Secret": "******"}
    assert "s3cr3t" not in json.dumps(shown)
    for key in (
        "RefreshSeconds",
        "HttpPort",
        "TTL",
        "SOASerial",
        "SOAMname",
        "Masters",
        "ZoneResolvers",
        "IPSources",
        "Zk",
        "Domain",
        "File",
        "Listener",
        "HTTPListener",
        "RecurseOn",
        "DnsOn",
        "HttpOn",
        "ExternalOn",
        "EnforceRFC952",
        "SetTruncateBit",
        "EnumerationOn",
        "MesosHTTPSOn",
        "IAMConfigFile",
    ):
        assert key in shown
    assert "watch_interval" not in shown and "workers" not in shown


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing configuration file"):
        load_config(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="failed to unmarshal"):
        load_config(str(bad))


def test_cli_flags_apply_over_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(SEED_004)
    args = parse("dns", "-config", str(path))
    config = from_args(args)
    assert (config.Port, config.workers, config.watch_interval) == (53, default_workers(), 0.5)
    assert config.File == str(path)
    config = from_args(parse("dns", "--config", str(path), "--dns-port=8053", "--workers=0", "--watch-interval=0"))
    assert (config.Port, config.workers, config.watch_interval) == (8053, 0, 0.0)


def test_cli_refuses_bad_flags_and_a_missing_file(tmp_path: Path) -> None:
    assert "argument --dns-port/--dns_port: invalid port '70000'" in refusal("dns", "--dns-port=70000")
    assert "argument --workers: invalid count '-1'" in refusal("dns", "--workers=-1")
    assert "argument --watch-interval/--watch_interval: invalid value '-1'" in refusal("dns", "--watch-interval=-1")
    with pytest.raises(ConfigError, match="missing configuration file"):
        from_args(parse("dns", "--config", str(tmp_path / "nope.json")))
