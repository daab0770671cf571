"""The flag value parsers every service's CLI shares: Mesos' forms accepted, anything else refused naming the value."""

from __future__ import annotations

import argparse

import pytest

from mesolite.core.flags import (
    non_negative_float,
    non_negative_int,
    optional_duration,
    parse_attributes,
    parse_bool,
    parse_bytes,
    parse_duration,
    parse_master,
    parse_port,
    parse_resources,
    parse_weights,
    parse_zk_url_flag,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5.0), ("5secs", 5.0), ("1mins", 60.0), ("100ms", 0.1), ("2hrs", 7200.0), ("1weeks", 604800.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_bad_duration_names_the_value() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="5 parsecs"):
        parse_duration("5 parsecs")


def test_optional_duration_can_be_switched_off() -> None:
    assert optional_duration("none") is None and optional_duration("0") is None and optional_duration("") is None
    assert optional_duration("30secs") == 30.0
    with pytest.raises(argparse.ArgumentTypeError, match="soon"):
        optional_duration("soon")


@pytest.mark.parametrize(
    ("text", "size"),
    [("2GB", 2 * 1024**3), ("512MB", 512 * 1024**2), ("100KB", 102400), ("10B", 10), ("4096", 4096), ("1.5KB", 1536)],
)
def test_byte_sizes(text: str, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["2 gigs", "GB", "-1", "-2GB", ""])
def test_bad_byte_sizes_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
        parse_bytes(text)


def test_booleans_take_mesos_forms_and_refuse_typos() -> None:
    assert [parse_bool(v) for v in ("true", "True", "1", "yes")] == [True] * 4
    assert [parse_bool(v) for v in ("false", "FALSE", "0", "no")] == [False] * 4
    with pytest.raises(argparse.ArgumentTypeError, match="'ture'"):
        parse_bool("ture")


def test_resources_inline_and_from_a_file(tmp_path) -> None:
    assert parse_resources("cpus:2;mem:1024").scalar("cpus") == 2.0
    path = tmp_path / "resources.txt"
    path.write_text("cpus:3;mem:512\n")
    assert parse_resources(f"file://{path}").scalar("mem") == 512.0
    with pytest.raises(argparse.ArgumentTypeError, match="mem=128"):
        parse_resources("cpus:2;mem=128")
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
        parse_resources(f"file://{tmp_path}/missing")


def test_attributes() -> None:
    assert parse_attributes("rack:r1;level:10").flatten() == {"rack": "r1", "level": 10.0}
    with pytest.raises(argparse.ArgumentTypeError, match="rack"):
        parse_attributes("rack")


def test_weights() -> None:
    assert parse_weights("prod=2,dev=0.5") == {"prod": 2.0, "dev": 0.5}
    assert parse_weights("") == {}
    for bad in ("prod", "prod=x", "=2", "prod=0", "prod=-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid weight"):
            parse_weights(bad)


def test_zookeeper_urls_are_checked_and_kept_as_written() -> None:
    assert parse_zk_url_flag("zk://h1:2181,h2:2181/mesos") == "zk://h1:2181,h2:2181/mesos"
    assert parse_zk_url_flag("zk://user:secret@h1:2181/mesos") == "zk://user:secret@h1:2181/mesos"
    for bad in ("h1:2181/mesos", "zk://h1:2181", "zk://h1:2181/", "http://h1/mesos"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid ZooKeeper URL"):
            parse_zk_url_flag(bad)


def test_master_is_an_address_or_a_zookeeper_url() -> None:
    assert parse_master("10.0.0.1:5050") == "10.0.0.1:5050"
    assert parse_master("zk://h1:2181/mesos") == "zk://h1:2181/mesos"
    with pytest.raises(argparse.ArgumentTypeError, match="invalid ZooKeeper URL"):
        parse_master("zk://h1:2181")
    with pytest.raises(argparse.ArgumentTypeError, match="empty master"):
        parse_master(" ")


def test_ports_and_counts() -> None:
    assert parse_port("53") == 53 and parse_port("65535") == 65535
    for bad in ("0", "65536", "http", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid port"):
            parse_port(bad)
    assert non_negative_int("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="'-1'"):
        non_negative_int("-1")
    assert non_negative_float("0.5") == 0.5
    for bad in ("-0.1", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid value"):
            non_negative_float(bad)
