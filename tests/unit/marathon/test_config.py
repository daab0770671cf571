"""``mesolite marathon`` flags: Marathon's names and units (milliseconds), turned into a ``MarathonConfig`` in
seconds."""

from __future__ import annotations

import getpass

import pytest

from mesolite.cli import main
from mesolite.core.flags import FlagError
from mesolite.marathon.config import MarathonConfig, from_args
from tests.cli_args import parse, refusal


def test_defaults_are_the_configs() -> None:
    args = parse("marathon", "--master", "127.0.0.1:5050", "--work_dir", "/var/lib/m")
    expected = MarathonConfig(master="127.0.0.1:5050", work_dir="/var/lib/m", mesos_user=getpass.getuser())
    assert from_args(args) == expected
    assert args.threads == 64


def test_milliseconds_become_seconds_and_hostname_follows_the_address() -> None:
    config = from_args(
        parse(
            "marathon",
            "--master=zk://h1:2181/mesos",
            "--zk=zk://h1:2181/marathon",
            "--http_address=10.0.0.2",
            "--decline_offer_duration=5000",
            "--task_launch_timeout=60000",
            "--zk_session_timeout=3000",
            "--leader_proxy_read_timeout=2500",
            "--mesos_user=nobody",
        )
    )
    assert config.work_dir == "" and config.zk == "zk://h1:2181/marathon"
    assert config.hostname == "10.0.0.2" and config.mesos_user == "nobody"
    assert (config.decline_offer_duration, config.task_launch_timeout) == (5.0, 60.0)
    assert (config.zk_session_timeout, config.leader_proxy_read_timeout) == (3.0, 2.5)


def test_flags_that_cannot_work_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FlagError, match="--work_dir is required without --zk"):
        from_args(parse("marathon", "--master", "127.0.0.1:5050"))
    with pytest.raises(FlagError, match="--local_port_min 30000 is above --local_port_max 20000"):
        from_args(parse("marathon", "--master", "m:5050", "--work_dir=/w", "--local_port_min=30000"))
    assert main(["marathon", "--master", "127.0.0.1:5050"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mesolite marathon") and "mesolite marathon: error: --work_dir is required" in err


def test_bad_values_are_refused_naming_the_flag() -> None:
    required = ("marathon", "--master", "127.0.0.1:5050", "--work_dir", "/w")
    assert "argument --event_subscriber: invalid choice: 'kafka'" in refusal(*required, "--event_subscriber=kafka")
    assert "argument --zk: invalid ZooKeeper URL" in refusal(*required, "--zk=zk://h1:2181")
    assert "argument --decline_offer_duration: invalid float value: '5s'" in refusal(
        *required, "--decline_offer_duration=5s"
    )
