"""Records from a canned state by upstream's rules (records/generator_test.go and observed upstream output)."""

from __future__ import annotations

from typing import Any

import pytest

from mesolite.dns.config import parse_config
from mesolite.dns.generator import RecordSet, StateError, generate, hash_string, parse_ports
from tests.dns_fixture import CONFIG, state


def records(**overrides: Any) -> RecordSet:
    config = parse_config({**CONFIG, **overrides})
    return generate(state(), config, config.Masters, lambda host: ["127.0.0.1"] if host == "localhost" else [])


def values(rrs: dict[str, dict[str, None]], name: str) -> set[str]:
    return set(rrs.get(name, {}))


def test_hash_and_ports() -> None:
    assert hash_string("test") == "iffe9"
    assert hash_string("liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5") == "4dfjd"
    assert hash_string("car-store.43758382-562f-11e4-a088-c20493233aa5") == "zinaz"
    assert parse_ports("[31111-31111, 31115-31117]") == ["31111", "31115", "31116", "31117"]
    assert parse_ports("") == [] and parse_ports("[]") == [] and parse_ports(None) == []


def test_infrastructure_records() -> None:
    rs = records()
    assert values(rs.As, "leader.mesos.") == {"144.76.157.37"}
    assert values(rs.As, "master.mesos.") == {"144.76.157.37"}
    assert values(rs.As, "master0.mesos.") == {"144.76.157.37"}
    assert values(rs.SRVs, "_leader._tcp.mesos.") == {"leader.mesos.:5050"}
    assert values(rs.SRVs, "_leader._udp.mesos.") == {"leader.mesos.:5050"}
    assert values(rs.As, "slave.mesos.") == {"1.2.3.10", "1.2.3.11", "1.2.3.12"}
    assert values(rs.AAAAs, "slave.mesos.") == {"2001:db8::1"}
    assert values(rs.SRVs, "_slave._tcp.mesos.") == {"slave.mesos.:5051"}
    assert values(rs.As, "marathon.mesos.") == {"1.2.3.11"}
    assert values(rs.SRVs, "_framework._tcp.marathon.mesos.") == {"marathon.mesos.:25501"}
    assert values(rs.AAAAs, "ipv6-framework.mesos.") == {"2001:db8::1"}
    assert values(rs.SRVs, "_framework._tcp.ipv6-framework.mesos.") == {"ipv6-framework.mesos.:25501"}
    assert values(rs.As, "chronoswithaspaceandmixe.mesos.") == {"1.2.3.12"}
    assert values(rs.As, "nopid.mesos.") == {"127.0.0.1"}
    assert "_framework._tcp.nopid.mesos." not in rs.SRVs
    assert values(rs.As, "mesos-dns.mesos.") == {"127.0.0.1"}


def test_discovery_info_tasks() -> None:
    rs = records()
    assert values(rs.As, "liquor-store.marathon.mesos.") == {"10.3.0.1", "10.3.0.2"}
    assert values(rs.As, "liquor-store.marathon.slave.mesos.") == {"1.2.3.11", "1.2.3.12"}
    assert values(rs.As, "liquor-store-4dfjd-0.marathon.mesos.") == {"10.3.0.1"}
    assert values(rs.As, "liquor-store-zasmd-1.marathon.mesos.") == {"10.3.0.2"}
    assert values(rs.SRVs, "_liquor-store._tcp.marathon.mesos.") == {
        "liquor-store-4dfjd-0.marathon.mesos.:80",
        "liquor-store-4dfjd-0.marathon.mesos.:443",
        "liquor-store-zasmd-1.marathon.mesos.:80",
        "liquor-store-zasmd-1.marathon.mesos.:443",
    }
    assert values(rs.SRVs, "_https._liquor-store._tcp.marathon.mesos.") == {
        "liquor-store-4dfjd-0.marathon.mesos.:443",
        "liquor-store-zasmd-1.marathon.mesos.:443",
    }
    assert values(rs.SRVs, "_http._liquor-store._tcp.marathon.mesos.") == {
        "liquor-store-4dfjd-0.marathon.mesos.:80",
        "liquor-store-zasmd-1.marathon.mesos.:80",
    }
    assert "_liquor-store._udp.marathon.mesos." not in rs.SRVs
    assert "_liquor-store.marathon.mesos." not in rs.SRVs
    assert values(rs.SRVs, "_liquor-store._udp.marathon.slave.mesos.") == {
        "liquor-store-4dfjd-0.marathon.slave.mesos.:31354",
        "liquor-store-4dfjd-0.marathon.slave.mesos.:31355",
        "liquor-store-zasmd-1.marathon.slave.mesos.:31737",
        "liquor-store-zasmd-1.marathon.slave.mesos.:31738",
    }
    # The DiscoveryInfo name wins over the task name, and the raw name is served too (upstream's legacy block).
    assert values(rs.As, "big-dog.marathon.mesos.") == {"10.3.0.1"}
    assert values(rs.SRVs, "_big-dog._tcp.marathon.mesos.") == {
        "big-dog-4dfjd-0.marathon.mesos.:80",
        "big-dog-4dfjd-0.marathon.mesos.:443",
    }
    assert "_big-dog._udp.marathon.mesos." not in rs.SRVs
    assert values(rs.As, "liquor.store.marathon.mesos.") == {"10.3.0.1", "10.3.0.2"}
    assert "big-dog2.marathon.mesos." not in rs.As


def test_plain_tasks() -> None:
    rs = records()
    assert values(rs.As, "car-store.marathon.mesos.") == {"1.2.3.11"}  # no container IP: host fallback
    target = {"car-store-zinaz-0.marathon.slave.mesos.:31364", "car-store-zinaz-0.marathon.slave.mesos.:31365"}
    for name in (
        "_car-store._tcp.marathon.mesos.",
        "_car-store._udp.marathon.mesos.",
        "_car-store._tcp.marathon.slave.mesos.",
        "_car-store._udp.marathon.slave.mesos.",
    ):
        assert values(rs.SRVs, name) == target
    assert values(rs.As, "nginx.marathon.mesos.") == {"10.3.0.3"}
    assert not any(name.startswith("_nginx.") for name in rs.SRVs)
    assert values(rs.As, "reviewbot.marathon.mesos.") == {"1.2.3.12"}
    assert values(rs.As, "some-box.chronoswithaspaceandmixe.mesos.") == {"1.2.3.11"}
    assert values(rs.AAAAs, "toy-store.ipv6-framework.mesos.") == {"fd01:b::1:8000:2"}
    assert values(rs.As, "toy-store.ipv6-framework.mesos.") == {"12.0.1.3", "12.0.1.2"}
    assert values(rs.AAAAs, "toy-store.ipv6-framework.slave.mesos.") == {"2001:db8::1"}
    assert values(rs.AAAAs, "toy-store-go588-3.ipv6-framework.mesos.") == {"fd01:b::1:8000:2"}
    for name in ("poseidon.marathon.mesos.", "poseidon.marathon.slave.mesos."):
        assert name not in rs.As
    assert not any("poseidon" in name for name in rs.SRVs)


@pytest.mark.parametrize(
    ("sources", "liquor", "nginx", "toy_a", "toy_aaaa"),
    [
        (["host"], {"1.2.3.11", "1.2.3.12"}, {"1.2.3.11"}, set(), {"2001:db8::1"}),
        (["mesos", "host"], {"1.2.3.11", "1.2.3.12"}, {"10.3.0.3"}, set(), {"2001:db8::1"}),
        (["docker", "host"], {"10.3.0.1", "10.3.0.2"}, {"1.2.3.11"}, set(), {"2001:db8::1"}),
        (["netinfo"], set(), set(), {"12.0.1.3", "12.0.1.2"}, {"fd01:b::1:8000:2"}),
    ],
)
def test_ip_sources_first_populated_wins(sources, liquor, nginx, toy_a, toy_aaaa) -> None:
    rs = records(IPSources=sources)
    assert values(rs.As, "liquor-store.marathon.mesos.") == liquor
    assert values(rs.As, "nginx.marathon.mesos.") == nginx
    assert values(rs.As, "toy-store.ipv6-framework.mesos.") == toy_a
    assert values(rs.AAAAs, "toy-store.ipv6-framework.mesos.") == toy_aaaa
    assert values(rs.As, "nginx.marathon.slave.mesos.") == {"1.2.3.11"}  # agent records always exist


def test_rfc1123_default_keeps_framework_dots_and_long_names() -> None:
    rs = records(EnforceRFC952=False, IPSources=["netinfo", "mesos", "host"])
    assert values(rs.As, "chronoswithaspaceandmixedcase-2.0.1.mesos.") == {"1.2.3.12"}
    assert values(rs.As, "some-box.chronoswithaspaceandmixedcase-2.0.1.mesos.") == {"1.2.3.11"}
    assert values(rs.As, "liquor-store.marathon.mesos.") == {"1.2.3.11", "1.2.3.12"}


def _master_records(masters: list[str], leader: str) -> RecordSet:
    config = parse_config({"masters": ["x:1"], "domain": "foo.com", "listener": "127.0.0.1"})
    return generate({"leader": leader}, config, masters)


@pytest.mark.parametrize("leader", ["@", "1@", "@2", "3@4"])
def test_invalid_leaders_make_no_master_records(leader: str) -> None:
    rs = _master_records([], leader)
    assert not any(name.startswith(("leader.", "master")) for name in rs.As)


@pytest.mark.parametrize(
    ("masters", "leader", "expected"),
    [
        ([], "5@0.0.0.6:7", {"master0": "0.0.0.6"}),
        (["0.0.0.6:7"], "5@0.0.0.6:7", {"master0": "0.0.0.6"}),
        (["0.0.0.8:9"], "5@0.0.0.6:7", {"master0": "0.0.0.8", "master1": "0.0.0.6"}),
        (["0.0.0.8:9", "0.0.0.8:9"], "5@0.0.0.6:7", {"master0": "0.0.0.8", "master1": "0.0.0.6"}),
        (["0.0.0.8:9", "0.0.0.6:7"], "5@0.0.0.6:7", {"master0": "0.0.0.8", "master1": "0.0.0.6"}),
        (["0.0.0.8:9", "0.0.0.6:7", "0.0.0.6:7"], "5@0.0.0.6:7", {"master0": "0.0.0.8", "master1": "0.0.0.6"}),
        (
            ["0.0.0.8:9", "0.0.0.6:7", "0.0.0.7:0"],
            "5@0.0.0.6:7",
            {"master0": "0.0.0.8", "master1": "0.0.0.6", "master2": "0.0.0.7"},
        ),
    ],
)
def test_master_records(masters: list[str], leader: str, expected: dict[str, str]) -> None:
    rs = _master_records(masters, leader)
    assert values(rs.As, "leader.foo.com.") == {"0.0.0.6"}
    assert values(rs.SRVs, "_leader._tcp.foo.com.") == {"leader.foo.com.:7"}
    assert values(rs.SRVs, "_leader._udp.foo.com.") == {"leader.foo.com.:7"}
    numbered = {name.split(".")[0]: set(v) for name, v in rs.As.items() if name[:6] == "master" and name[6].isdigit()}
    assert numbered == {name: {ip} for name, ip in expected.items()}
    assert values(rs.As, "master.foo.com.") == set(expected.values())


def test_ipv6_masters() -> None:
    rs = _master_records([], "5@[2001:db8::1]:7")
    assert values(rs.AAAAs, "leader.foo.com.") == {"2001:db8::1"}
    assert values(rs.AAAAs, "master0.foo.com.") == {"2001:db8::1"}
    rs = _master_records(["0.0.0.8:9", "0.0.0.6:7", "[2001:db8::1]:0"], "5@0.0.0.6:7")
    assert values(rs.AAAAs, "master2.foo.com.") == {"2001:db8::1"}
    assert values(rs.AAAAs, "master.foo.com.") == {"2001:db8::1"}


@pytest.mark.parametrize(
    ("listener", "kind", "ip"), [("4.5.6.7", "As", "4.5.6.7"), ("2001:db8::1", "AAAAs", "2001:db8::1")]
)
def test_nameserver_record_follows_the_listener(listener: str, kind: str, ip: str) -> None:
    config = parse_config({"masters": ["x:1"], "listener": listener, "SOAMname": "jdef123.mesos."})
    rs = generate({"leader": "master@1.2.3.4:5050"}, config, [])
    assert values(getattr(rs, kind), "jdef123.mesos.") == {ip}


def test_marathon_group_ids_come_out_reversed() -> None:
    """Marathon names a task (and its DiscoveryInfo) ``mongo.db.product`` for the app ``/product/db/mongo``."""
    doc = {
        "leader": "master@10.0.0.1:5050",
        "slaves": [{"id": "S-0", "pid": "slave(1)@10.0.0.2:5051"}],
        "frameworks": [
            {
                "name": "marathon",
                "tasks": [
                    {
                        "id": "product_db_mongo.1",
                        "name": "mongo.db.product",
                        "slave_id": "S-0",
                        "state": "TASK_RUNNING",
                        "resources": {"ports": "[31000-31000]"},
                        "discovery": {"name": "mongo.db.product", "ports": {"ports": [{"number": 31000}]}},
                        "statuses": [],
                    }
                ],
            }
        ],
    }
    config = parse_config({"masters": ["10.0.0.1:5050"]})
    rs = generate(doc, config, config.Masters)
    assert values(rs.As, "mongo-db-product.marathon.mesos.") == {"10.0.0.2"}
    canonical = f"mongo-db-product-{hash_string('product_db_mongo.1')}-0.marathon.mesos."
    assert values(rs.SRVs, "_mongo-db-product._tcp.marathon.mesos.") == {canonical + ":31000"}
    assert values(rs.SRVs, "_mongo-db-product._udp.marathon.mesos.") == {canonical + ":31000"}


def test_enumeration_lists_every_framework_and_task_records() -> None:
    rs = records()
    names = [f["name"] for f in rs.frameworks]
    assert names == ["ipv6-framework", "chronos with a space AND MIXED CASE-2.0.1", "no pid", "marathon"]
    nopid = rs.frameworks[2]
    assert nopid["tasks"] == []
    marathon = {t["name"]: t for t in rs.frameworks[3]["tasks"]}
    assert "poseidon" not in marathon
    nginx = marathon["nginx"]
    assert nginx["id"].startswith("nginx.")
    assert {"name": "nginx.marathon.mesos.", "host": "10.3.0.3", "rtype": "A"} in nginx["records"]


def test_a_state_without_leader_is_an_error_and_bad_fields_are_skipped() -> None:
    config = parse_config({"masters": ["x:1"]})
    with pytest.raises(StateError):
        generate({"frameworks": []}, config, [])
    doc = {
        "leader": "master@10.0.0.1:5050",
        "slaves": [{"id": "S-0", "pid": 12}, "junk", {"id": "S-1", "pid": "slave(1)@10.0.0.3:5051"}],
        "frameworks": [{"name": 5, "pid": "nonsense", "tasks": [None, {"state": "TASK_RUNNING", "slave_id": "S-1"}]}],
    }
    rs = generate(doc, config, [])
    assert values(rs.As, "slave.mesos.") == {"10.0.0.3"}
