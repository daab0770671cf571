"""``mesolite chronos`` flags: Chronos' names and units, turned into a ``ChronosConfig``."""

from __future__ import annotations

import pytest

from mesolite.chronos.config import ChronosConfig, from_args
from mesolite.core.flags import FlagError
from tests.cli_args import parse, refusal


def test_defaults_are_the_configs() -> None:
    args = parse("chronos", "--master", "127.0.0.1:5050", "--work_dir", "/var/lib/c")
    assert from_args(args) == ChronosConfig(master="127.0.0.1:5050", work_dir="/var/lib/c")
    assert args.threads == 16


def test_chronos_zookeeper_flags_make_the_url() -> None:
    config = from_args(parse("chronos", "--master=m:5050", "--zk_hosts=h1:2181,h2:2181", "--mesos_checkpoint=false"))
    assert config.zk == "zk://h1:2181,h2:2181/chronos/state" and config.work_dir == ""
    assert config.mesos_checkpoint is False
    config = from_args(parse("chronos", "--master=m:5050", "--zk=zk://h1:2181/c", "--failure_retry=5000"))
    assert config.zk == "zk://h1:2181/c" and config.state_config().failure_retry == 5.0


def test_flags_that_cannot_work_together_are_refused() -> None:
    with pytest.raises(FlagError, match="--work_dir is needed"):
        from_args(parse("chronos", "--master", "m:5050"))
    with pytest.raises(FlagError, match="--zk_hosts/--zk_path: invalid ZooKeeper URL"):
        from_args(parse("chronos", "--master", "m:5050", "--zk_hosts=h1:2181", "--zk_path=/"))


def test_bad_values_are_refused_naming_the_flag() -> None:
    required = ("chronos", "--master", "m:5050", "--work_dir", "/w")
    assert "argument --mesos_checkpoint: invalid boolean 'maybe'" in refusal(*required, "--mesos_checkpoint=maybe")
    assert "argument --task_epsilon: invalid int value: '1m'" in refusal(*required, "--task_epsilon=1m")
    assert "argument --zk: invalid ZooKeeper URL" in refusal(*required, "--zk=h1:2181")
