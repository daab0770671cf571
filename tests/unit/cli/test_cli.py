"""The ``mesolite`` command: one subcommand per service, each parsed by the service's own ``config.py``."""

from __future__ import annotations

import pytest

from mesolite import cli
from tests.cli_args import parse, refusal


def test_every_service_and_the_demo_are_subcommands() -> None:
    assert parse("master", "--work_dir=/w").command == "master"
    assert "invalid choice: 'mesos-master'" in refusal("mesos-master")
    assert "{master,agent,chronos,dns,marathon,haproxy-bridge,zdd,up}" in cli.build_parser().format_usage()


def test_flags_that_cannot_work_together_exit_2_with_the_subcommands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["chronos", "--master", "127.0.0.1:5050"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mesolite chronos ")
    assert err.rstrip().endswith(
        "mesolite chronos: error: --work_dir is needed unless the state is in ZooKeeper (--zk)"
    )


def test_a_bad_dns_config_file_exits_1_naming_the_problem(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"masters": ["10.0.0.1:5050"], "ttl": "long"}')
    assert cli.main(["dns", "--config", str(path)]) == 1
    assert capsys.readouterr().err.strip() == 'mesolite dns: TTL: expected an integer, got "long"'
