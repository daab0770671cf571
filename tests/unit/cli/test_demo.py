"""``mesolite up``: which services the demo starts, on which ports, with which command lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesolite import demo
from tests.cli_args import parse, refusal


def test_the_demo_runs_every_service_on_its_standard_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.shutil, "which", lambda name: f"/usr/sbin/{name}")
    specs = demo.demo_services(parse("up", "--work_dir", str(tmp_path)))
    assert [name for name, _, _ in specs] == ["master", "agent1", "agent2", "marathon", "chronos", "dns", "haproxy"]
    urls = {name: url.split()[0] for name, _, url in specs}
    assert urls["master"] == "http://127.0.0.1:5050" and urls["agent2"] == "http://127.0.0.1:5052"
    assert (urls["marathon"], urls["chronos"], urls["dns"]) == (
        "http://127.0.0.1:8080",
        "http://127.0.0.1:4400",
        "http://127.0.0.1:8123",
    )
    commands = {name: command for name, command, _ in specs}
    # Each command line is one the real CLI accepts.
    for command in commands.values():
        parse(*command)
    assert commands["agent2"][commands["agent2"].index("--attributes") + 1] == "rack_id:2"
    config = json.loads((tmp_path / "dns" / "config.json").read_text())
    assert config["port"] == 8053 and config["masters"] == ["127.0.0.1:5050"] and config["httpport"] == 8123


def test_the_demo_without_haproxy_and_with_its_own_dns_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    specs = demo.demo_services(parse("up", "--work_dir", str(tmp_path), "--agents", "1", "--dns-port", "5353"))
    assert [name for name, _, _ in specs] == ["master", "agent1", "marathon", "chronos", "dns"]
    assert json.loads((tmp_path / "dns" / "config.json").read_text())["port"] == 5353
    assert "argument --dns-port: invalid port '0'" in refusal("up", "--dns-port", "0")
