"""``mesolite zdd`` as a user runs it (the CLI, against a real Marathon and the bridge's HAProxy stats port): a
first deploy creates the blue app; a second one brings green up beside it in the same backend, drains and kills blue
as green turns healthy, and deletes blue, while fresh connections keep arriving on the service port. Not one
request may fail."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.cluster import free_port, wait_until
from tests.integration.haproxy_bridge.conftest import BridgeHarness, echo_app, fetch, wait_healthy

RATE = 50  # requests per second, each on a new connection


class SteadyLoad:
    """Requests at ``RATE`` on a fixed schedule until stopped; every outcome kept with its time."""

    def __init__(self, port: int, senders: int = 4) -> None:
        self.port = port
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(n, senders), daemon=True) for n in range(senders)]
        self.started = 0.0

    def start(self) -> SteadyLoad:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _send(self, n: int, senders: int) -> None:
        i = n
        while not self._stop.is_set():
            delay = self.started + i / RATE - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            try:
                status, body = fetch(self.port, timeout=10)
                outcome = None if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome, body = repr(exc), {}
            at = time.monotonic() - self.started
            with self._lock:
                if outcome is None:
                    self.answers.append((at, str(body.get("task", ""))))
                else:
                    self.failures.append(f"request {i} at {at:.2f}s: {outcome}")
            i += senders


def run_zdd(bridge: BridgeHarness, app_json: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mesolite.cli", "zdd", "-m", bridge.marathon.url]
    command += ["-l", f"http://127.0.0.1:{bridge.stats_port}", "-j", str(app_json), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=240)


def test_blue_green_deploy_under_load_fails_no_request(bridge: BridgeHarness, tmp_path: Path) -> None:
    marathon = bridge.marathon
    port, alt = free_port(), free_port()
    labels = {"HAPROXY_DEPLOYMENT_GROUP": "shop", "HAPROXY_DEPLOYMENT_ALT_PORT": str(alt)}
    app: dict[str, Any] = echo_app("/shop", port, instances=2, labels=labels)
    app["env"] = {"SHOP_VERSION": "1"}
    app_json = tmp_path / "shop.json"
    app_json.write_text(json.dumps(app))

    first = run_zdd(bridge, app_json, "--force")
    assert first.returncode == 0, first.stderr
    blue = wait_healthy(marathon, "/shop-blue", 2)
    bridge.wait_seen(port, blue, timeout=20)
    blue_labels = marathon.app("/shop-blue")["labels"]
    assert blue_labels["HAPROXY_DEPLOYMENT_COLOUR"] == "blue" and blue_labels["HAPROXY_0_PORT"] == str(port)
    assert blue_labels["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"] == "2" and blue_labels["HAPROXY_APP_ID"] == "/shop"
    assert {s["backend"] for s in bridge.get("/routing").json()["services"]} == {f"shop_{port}"}

    # A dry run prints the next colour and changes nothing.
    app["env"] = {"SHOP_VERSION": "2"}
    app_json.write_text(json.dumps(app))
    dry = run_zdd(bridge, app_json, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["id"] == "/shop-green" and planned["portDefinitions"][0]["port"] == alt
    assert planned["labels"]["HAPROXY_0_PORT"] == str(port) and planned["instances"] == 1
    assert marathon.get("/v2/apps/shop-green").status_code == 404

    load = SteadyLoad(port).start()
    try:
        time.sleep(1.0)
        started = time.monotonic()
        second = run_zdd(bridge, app_json, "--force", "--step-delay", "0.5", "--max-wait", "60")
        took = time.monotonic() - started
        time.sleep(1.5)
    finally:
        load.stop()
    assert second.returncode == 0, f"zdd exited with {second.returncode}:\n{second.stderr[-3000:]}"

    green = wait_healthy(marathon, "/shop-green", 2)
    assert marathon.get("/v2/apps/shop-blue").status_code == 404
    assert load.failures == [], f"{len(load.failures)} of {len(load.answers) + len(load.failures)} failed: " + str(
        load.failures[:10]
    )
    answered = {task for _at, task in load.answers}
    assert answered & blue and answered & green, "traffic did not move from blue to green under load"
    assert len(load.answers) > RATE * took * 0.8, f"only {len(load.answers)} requests in {took:.1f}s"
    done_at = load.answers[-1][0] - 1.0
    assert {task for at, task in load.answers if at > done_at} <= green
    wait_until(lambda: bridge.routed("/shop") == green, 15, what="only green in the group's backend")
