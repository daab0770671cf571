"""Applying a routing: render, ``haproxy -c`` (Debian's binary), atomic write, reload only on change; apps HAProxy
refuses are found by bisection and left out; a broken template applies nothing. HAProxy is "run by someone else"
here (``--reload-command`` appending to a file), so only the reloads are counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesolite.haproxy_bridge.config import BridgeConfig
from mesolite.haproxy_bridge.routing import build_routing
from mesolite.haproxy_bridge.state import BridgeService


def make_service(tmp_path: Path, template_dir: Path | None = None) -> BridgeService:
    config = BridgeConfig(
        marathon=["http://127.0.0.1:1"],
        work_dir=str(tmp_path / "work"),
        haproxy_config=str(tmp_path / "etc" / "haproxy.cfg"),
        reload_command=f"echo reload >> {tmp_path / 'reloads'}",
        haproxy_socket=str(tmp_path / "admin.sock"),
        template_dir=str(template_dir) if template_dir else None,
        bind_address="127.0.0.1",
    )
    (tmp_path / "work").mkdir()
    return BridgeService(config)


def reloads(tmp_path: Path) -> int:
    path = tmp_path / "reloads"
    return len(path.read_text().splitlines()) if path.exists() else 0


def apps(count: int, bad: set[int] = frozenset(), balance: str = "roundrobin") -> list[dict[str, Any]]:
    return [
        {
            "id": f"/app{i:03d}",
            "portDefinitions": [{"port": 20000 + i}],
            "labels": {"HAPROXY_0_BALANCE": "no-such-algorithm" if i in bad else balance},
            "tasks": [{"id": f"t{i}", "host": "127.0.0.1", "ports": [30000 + i], "state": "TASK_RUNNING"}],
        }
        for i in range(count)
    ]


def routing_of(service: BridgeService, app_list: list[dict[str, Any]]):
    return build_routing(app_list, service.routing_settings)


def test_reloads_only_when_the_text_changes(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    assert service.apply(routing_of(service, apps(3)))
    config = Path(service.config.config_path).read_text()
    assert "bind 127.0.0.1:20002" in config and "server 127.0.0.1_127.0.0.1_30002 127.0.0.1:30002" in config
    assert reloads(tmp_path) == 1
    assert service.apply(routing_of(service, apps(3)))
    assert reloads(tmp_path) == 1 and service.metrics.unchanged_total == 1
    assert service.apply(routing_of(service, apps(4)))
    assert reloads(tmp_path) == 2
    assert not list(Path(service.config.config_path).parent.glob(".haproxy-bridge-*"))  # no staged leftovers


def test_apps_haproxy_refuses_are_bisected_out_and_retried_when_their_labels_change(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    assert service.apply(routing_of(service, apps(2)))
    assert service.apply(routing_of(service, apps(40, bad={7, 23, 31})))
    assert set(service.snapshot()["rejected_apps"]) == {"/app007", "/app023", "/app031"}
    assert "no-such-algorithm" in service.snapshot()["rejected_apps"]["/app007"]
    config = Path(service.config.config_path).read_text()
    assert "bind 127.0.0.1:20039" in config and "bind 127.0.0.1:20007" not in config
    assert "no-such-algorithm" in (tmp_path / "work" / "rejected.cfg").read_text()
    invalid = service.metrics.invalid_configs_total

    # Known-bad apps are left out up front: no more failed checks while they stay as they are.
    assert service.apply(routing_of(service, apps(41, bad={7, 23, 31})))
    assert service.metrics.invalid_configs_total == invalid
    assert "bind 127.0.0.1:20040" in Path(service.config.config_path).read_text()

    # Fixed labels: tried again, and in.
    assert service.apply(routing_of(service, apps(41)))
    assert service.snapshot()["rejected_apps"] == {}
    assert "bind 127.0.0.1:20007" in Path(service.config.config_path).read_text()


@pytest.mark.parametrize(
    ("name", "text", "counter"),
    [
        ("backend.j2", "backend {{ service.backend \n", "template_errors_total"),
        ("backend.j2", "backend {{ service.backend }}\n  {{ service.no_such_field }}\n", "template_errors_total"),
        ("defaults.j2", "defaults\n  timeout connect 3s\n  no-such-keyword\n", "invalid_configs_total"),
    ],
)
def test_a_broken_template_applies_nothing(tmp_path: Path, name: str, text: str, counter: str) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    service = make_service(tmp_path, templates)
    assert service.apply(routing_of(service, apps(2)))
    before = Path(service.config.config_path).read_text()
    (templates / name).write_text(text)
    assert not service.apply(routing_of(service, apps(3)))
    assert getattr(service.metrics, counter) == 1
    assert Path(service.config.config_path).read_text() == before and reloads(tmp_path) == 1
    assert service.snapshot()["rejected_apps"] == {}  # no app is blamed for the template
    (templates / name).unlink()
    assert service.apply(routing_of(service, apps(3)))
    assert reloads(tmp_path) == 2


def test_a_failing_reload_command_is_retried_on_the_next_sync(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.haproxy.command = "exit 3"  # type: ignore[union-attr]
    assert not service.apply(routing_of(service, apps(1)))
    assert service.metrics.reload_failures_total == 1 and "exited with 3" in service.metrics.last_reload_error
    service.haproxy.command = f"echo reload >> {tmp_path / 'reloads'}"  # type: ignore[union-attr]
    assert service.apply(routing_of(service, apps(1)))
    assert reloads(tmp_path) == 1
