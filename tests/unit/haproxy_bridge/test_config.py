"""``mesolite haproxy-bridge`` flags: marathon-lb's names, turned into a ``BridgeConfig``."""

from __future__ import annotations

import pytest

from mesolite.core.flags import FlagError
from mesolite.haproxy_bridge.config import DEFAULT_WORK_DIR, BridgeConfig, from_args
from tests.cli_args import parse, refusal


def test_defaults_are_the_configs() -> None:
    args = parse("haproxy-bridge", "--marathon", "http://m:8080")
    assert from_args(args) == BridgeConfig(marathon=["http://m:8080"], work_dir=DEFAULT_WORK_DIR)
    assert args.threads == 8


def test_lists_and_polling_without_events() -> None:
    config = from_args(
        parse(
            "haproxy-bridge",
            "-m",
            "http://m1:8080,http://m2:8080",
            "http://m3:8080",
            "--group=external,internal",
            "--group=edge",
            "--no-sse",
            "--min-reload-interval=2secs",
        )
    )
    assert config.marathon == ["http://m1:8080", "http://m2:8080", "http://m3:8080"]
    assert config.groups == ["external", "internal", "edge"]
    assert config.sse is False and config.resync_interval == 60.0 and config.min_reload_interval == 2.0
    assert from_args(parse("haproxy-bridge", "-m", "http://m", "--resync-interval=10mins")).resync_interval == 600.0


def test_bad_values_are_refused() -> None:
    with pytest.raises(FlagError, match="no Marathon URL"):
        from_args(parse("haproxy-bridge", "--marathon", ","))
    assert "argument --source: invalid choice: 'dns'" in refusal("haproxy-bridge", "-m", "http://m", "--source=dns")
    assert "argument --resync-interval: invalid duration 'often'" in refusal(
        "haproxy-bridge", "-m", "http://m", "--resync-interval=often"
    )
    assert "the following arguments are required: --marathon/-m" in refusal("haproxy-bridge")
