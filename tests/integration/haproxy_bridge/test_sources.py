"""Where the bridge reads from and what it picks: the legacy ``/v2/tasks`` text/plain list (haproxy-marathon-bridge's
source) with several Marathons given, ``--group`` filtering by ``HAPROXY_GROUP``, a supervised HAProxy that dies
being brought back, and an HAProxy run by someone else (``--reload-command``). Extra bridges bind other loopback
addresses (127.0.0.2-4), so the module's bridge on 127.0.0.1 serves the same service ports without either one taking
the other's clients."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import free_port, wait_until
from tests.integration.haproxy_bridge.conftest import BridgeHarness, deploy, echo_app, fetch


@pytest.fixture
def extra_bridges(bridge: BridgeHarness) -> Iterator[list[BridgeHarness]]:
    started: list[BridgeHarness] = []
    try:
        yield started
    finally:
        for extra in started:
            extra.stop()


def test_legacy_tasks_text_source_and_a_dead_marathon_first(
    bridge: BridgeHarness, extra_bridges: list[BridgeHarness]
) -> None:
    port = free_port()
    tasks = deploy(bridge.marathon, echo_app("/legacy/api", port, instances=2, labels={"HAPROXY_0_MODE": "http"}))
    legacy = BridgeHarness(bridge.marathon, bridge.base.parent, "legacy", address="127.0.0.2")
    extra_bridges.append(legacy)
    dead = f"http://127.0.0.1:{free_port()}"
    legacy.start("--source", "tasks", "--no-sse", "--resync-interval", "0.5", marathon=[dead, bridge.marathon.url])
    legacy.wait_seen(port, tasks, timeout=30)
    services = legacy.get("/routing").json()["services"]
    # No labels in the text format: TCP, and marathon-lb's backend name from the "safe" app id.
    assert [(s["backend"], s["mode"]) for s in services] == [(f"legacy_api_{port}", "tcp")]
    assert legacy.get("/health").json()["marathon"] == bridge.marathon.url


def test_group_filter(bridge: BridgeHarness, extra_bridges: list[BridgeHarness]) -> None:
    marathon = bridge.marathon
    external_port, internal_port = free_port(), free_port()
    external = deploy(marathon, echo_app("/ext", external_port, instances=1, labels={"HAPROXY_GROUP": "external"}))
    internal = deploy(marathon, echo_app("/int", internal_port, instances=1))
    edge = BridgeHarness(marathon, bridge.base.parent, "edge", address="127.0.0.3")
    extra_bridges.append(edge)
    edge.start("--group", "external", vhost_port=0)
    edge.wait_seen(external_port, external, timeout=30)
    with pytest.raises(ConnectionRefusedError):
        fetch(internal_port, address="127.0.0.3")
    # The default group '*' takes every app.
    bridge.wait_seen(external_port, external, timeout=30)
    bridge.wait_seen(internal_port, internal, timeout=30)


def test_a_dead_haproxy_is_restarted(bridge: BridgeHarness) -> None:
    port = free_port()
    tasks = deploy(bridge.marathon, echo_app("/phoenix", port, instances=1))
    bridge.wait_seen(port, tasks, timeout=30)
    health = bridge.get("/health").json()
    starts = bridge.metrics()["haproxy_starts_total"]
    os.kill(health["haproxy"]["pid"], signal.SIGKILL)
    wait_until(lambda: bridge.metrics()["haproxy_starts_total"] > starts, 15, what="haproxy restarted")
    bridge.wait_seen(port, tasks, timeout=30)
    assert bridge.get("/health").json()["haproxy"]["pid"] != health["haproxy"]["pid"]


def test_reload_command_drives_an_haproxy_run_by_someone_else(
    bridge: BridgeHarness, extra_bridges: list[BridgeHarness], tmp_path: Path
) -> None:
    """``--reload-command``: HAProxy run as Debian's haproxy.service runs it (``-Ws``, master-worker), the bridge
    only rewriting its config and asking for a reload (the unit's ExecReload sends SIGUSR2 to the master)."""
    config, pidfile = tmp_path / "haproxy.cfg", tmp_path / "haproxy.pid"
    config.write_text(
        f"global\n  stats socket {tmp_path}/admin.sock mode 600 level admin expose-fd listeners\n"
        "defaults\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
    )
    haproxy = subprocess.Popen(
        ["haproxy", "-Ws", "-f", str(config), "-p", str(pidfile)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 15, what="haproxy's pidfile")
        external = BridgeHarness(bridge.marathon, bridge.base.parent, "external", address="127.0.0.4")
        extra_bridges.append(external)
        external.start(
            "--haproxy-config",
            str(config),
            "--haproxy-socket",
            str(tmp_path / "admin.sock"),
            "--reload-command",
            f"kill -USR2 $(head -1 {pidfile})",
            vhost_port=0,
        )
        port = free_port()
        tasks = deploy(bridge.marathon, echo_app("/outside", port, instances=2))
        external.wait_seen(port, tasks, timeout=30)
        health = external.get("/health").json()
        assert health["haproxy"]["mode"] == "external" and health["last_reload_error"] is None
        assert f"bind 127.0.0.4:{port}" in config.read_text()
        assert haproxy.poll() is None  # reloaded in place, never restarted
    finally:
        os.killpg(haproxy.pid, signal.SIGTERM)
        haproxy.wait(timeout=10)
