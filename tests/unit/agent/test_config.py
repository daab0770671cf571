"""``mesolite agent`` flags: Mesos' names, defaults and forms, turned into an ``AgentConfig``."""

from __future__ import annotations

import pytest

from mesolite.agent.config import AgentConfig, from_args
from mesolite.core.attributes import Attributes
from mesolite.core.resources import Resources
from tests.cli_args import parse, refusal

REQUIRED = ("agent", "--master", "127.0.0.1:5050", "--work_dir", "/var/lib/a")


def test_defaults_are_the_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    args = parse(*REQUIRED)
    assert from_args(args) == AgentConfig(master="127.0.0.1:5050", work_dir="/var/lib/a")
    assert args.threads == 64


def test_flags_in_mesos_forms(tmp_path) -> None:
    (tmp_path / "resources").write_text("cpus:2;mem:512")
    config = from_args(
        parse(
            *REQUIRED,
            f"--resources=file://{tmp_path}/resources",
            "--attributes=rack:r1;level:2",
            "--switch_user=false",
            "--containerizers=docker,mesos",
            "--cgroups_enable_cfs",
            "--executor_reregistration_timeout=1mins",
            "--fetcher_cache_size=512MB",
            "--gc_delay=2days",
        )
    )
    assert config.resources == Resources.parse("cpus:2;mem:512")
    assert config.attributes == Attributes.parse("rack:r1;level:2")
    assert config.switch_user is False and config.cgroups_enable_cfs is True
    assert config.containerizers == ("docker", "mesos")
    assert config.executor_reregistration_timeout == 15.0  # Mesos' cap
    assert config.fetcher_cache_size == 512 * 1024**2 and config.gc_delay == 2 * 86400.0


def test_a_zookeeper_master_is_followed() -> None:
    config = from_args(parse("agent", "--master", "zk://h1:2181/mesos", "--work_dir", "/w"))
    assert config.master == "zk://h1:2181/mesos"


def test_bad_values_are_refused_naming_the_flag() -> None:
    assert "argument --resources:" in refusal(*REQUIRED, "--resources", "cpus:2;mem=128")
    assert "argument --containerizers: unknown containerizer in 'mesos,lxc'" in refusal(
        *REQUIRED, "--containerizers", "mesos,lxc"
    )
    assert "argument --switch_user: invalid boolean 'ture'" in refusal(*REQUIRED, "--switch_user", "ture")
    assert "argument --fetcher_cache_size: invalid size '2 gigs'" in refusal(*REQUIRED, "--fetcher_cache_size=2 gigs")
    assert "argument --recover: invalid choice: 'later'" in refusal(*REQUIRED, "--recover", "later")
    assert "argument --master: invalid ZooKeeper URL" in refusal("agent", "--master", "zk://h1:2181", "--work_dir=/w")
