"""Seamless reloads: a steady stream of fresh connections through HAProxy while the app is scaled up and down
several times — every scale is a few reloads — and not one request fails (marathon-lb's soft reload lost 0.24 % of
requests at 1,000 requests/s; master-worker mode hands the listening sockets over instead)."""

from __future__ import annotations

import http.client
import threading
import time

from tests.cluster import free_port, wait_until
from tests.integration.haproxy_bridge.conftest import BridgeHarness, deploy, echo_app, fetch, scale, wait_healthy

RATE = 100  # requests per second, on new connections
TOTAL = 2000  # a bounded run: 20 s at RATE
SENDERS = 4


class LoadGenerator:
    """``TOTAL`` requests at ``RATE``, on a fixed schedule (a slow answer delays no other request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self.answered_by: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(SENDERS)]
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=TOTAL / RATE + 60)

    def _send(self, n: int) -> None:
        for i in range(n, TOTAL, SENDERS):
            delay = self.started + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                status, body = fetch(self.port, timeout=10)
                outcome = None if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome, body = repr(exc), {}
            with self._lock:
                if outcome is None:
                    self.ok += 1
                    self.answered_by.add(body.get("task", ""))
                else:
                    self.failures.append(f"request {i} at {time.monotonic() - self.started:.2f}s: {outcome}")


def test_scaling_up_and_down_under_load_fails_no_request(bridge: BridgeHarness) -> None:
    marathon = bridge.marathon
    port = free_port()
    first = deploy(marathon, echo_app("/steady", port, instances=2))
    bridge.wait_seen(port, first, timeout=15)
    reloads_before = bridge.metrics()["reloads_total"]

    load = LoadGenerator(port)
    load.start()
    for _ in range(3):
        scale(marathon, "/steady", 4)
        up = wait_healthy(marathon, "/steady", 4, timeout=30)
        wait_until(lambda u=up: bridge.routed("/steady") == u, 10, what="4 servers in the backend")
        scale(marathon, "/steady", 2)
        wait_until(lambda: len(bridge.routed("/steady")) == 2, 15, what="2 servers in the backend")
    scaled_within = time.monotonic() - load.started
    load.join()

    assert scaled_within < TOTAL / RATE, f"the scaling took {scaled_within:.1f}s, longer than the load"
    reloads = bridge.metrics()["reloads_total"] - reloads_before
    assert reloads >= 6, f"only {reloads} reloads happened under load"
    assert load.failures == [], f"{len(load.failures)} of {TOTAL} requests failed: {load.failures[:10]}"
    assert load.ok == TOTAL
    assert len(load.answered_by) > 2  # the extra instances took traffic in between
