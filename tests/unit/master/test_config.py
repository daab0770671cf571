"""``mesolite master`` flags: Mesos' names, defaults and forms, turned into a ``MasterConfig``."""

from __future__ import annotations

from mesolite.master.config import MasterConfig, from_args
from tests.cli_args import parse, refusal


def test_defaults_are_the_configs() -> None:
    args = parse("master", "--work_dir", "/var/lib/m")
    assert from_args(args) == MasterConfig(work_dir="/var/lib/m")
    assert args.threads == 128


def test_flags_in_mesos_forms() -> None:
    config = from_args(
        parse(
            "master",
            "--work_dir=/w",
            "--ip=10.0.0.1",
            "--port=5055",
            "--offer_timeout=none",
            "--agent_ping_timeout=1mins",
            "--allocation_interval=500ms",
            "--weights=prod=2,dev=0.5",
            "--zk=zk://h1:2181,h2:2181/mesos",
            "--quorum=2",
        )
    )
    assert (config.ip, config.port, config.advertised_hostname) == ("10.0.0.1", 5055, "10.0.0.1")
    assert config.offer_timeout is None and config.agent_ping_timeout == 60.0 and config.allocation_interval == 0.5
    assert config.weights == {"prod": 2.0, "dev": 0.5}
    assert config.zk == "zk://h1:2181,h2:2181/mesos" and config.quorum == 2


def test_bad_values_are_refused_naming_the_flag() -> None:
    assert "argument --offer_timeout: invalid duration 'soon'" in refusal(
        "master", "--work_dir=/w", "--offer_timeout=soon"
    )
    assert "argument --zk: invalid ZooKeeper URL 'h1:2181'" in refusal("master", "--work_dir=/w", "--zk=h1:2181")
    assert "argument --weights: invalid weight 'prod'" in refusal("master", "--work_dir=/w", "--weights=prod")
    assert "argument --port: invalid int value: 'http'" in refusal("master", "--work_dir=/w", "--port=http")
    assert "the following arguments are required: --work_dir" in refusal("master")
