"""The HAProxy bridge: a full config rebuild for 1,000 apps, an HAProxy reload with 1,000 frontends, and the
event-to-live latency through a real Marathon.

1. Rebuild: 1,000 apps × 3 tasks as ``/v2/apps?embed=apps.tasks`` returns them (labels, a health check on half of
   them, vhosts on a tenth) → routing → jinja2 render → ``haproxy -c`` on the result, each step timed (median of
   ``--repeat`` runs). marathon-lb's full regeneration "took 21.9 s" (its issue #344).
2. Reload: a supervised ``haproxy -W`` started on that config (1,000 frontends bound on 127.0.0.1), then reloaded
   with one server changed; time from SIGUSR2 to the new worker running. HAProxy 2.x with 834 frontends took 3.9 s
   (haproxy/haproxy#1634). Then 20 reloads in 5 s under as many requests as 4 client threads can send on fresh
   connections, counting failures (marathon-lb's ``-sf`` soft reload lost 0.24 % at 1,000 requests/s).
3. Event to live: a real master, an agent, ``mesolite marathon`` and ``mesolite haproxy-bridge``; an app without
   health checks scaled up one instance at a time, ``--scales`` times. For each new task: the moment its
   ``status_update_event`` TASK_RUNNING reaches a listener of our own on ``/v2/events`` → the moment a request on
   the service port is answered by that task. haproxy-marathon-bridge polled once a minute; marathon-lb re-reads
   everything on each event.

Usage: ``.venv/bin/python bench/haproxy.py [--apps 1000] [--tasks 3] [--repeat 3] [--scales 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "services"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from mesolite.haproxy_bridge.generator import Generator, GlobalSettings  # noqa: E402
from mesolite.haproxy_bridge.haproxy import SupervisedHAProxy, atomic_write, validate  # noqa: E402
from mesolite.haproxy_bridge.routing import RoutingSettings, build_routing  # noqa: E402
from tests.cluster import Cluster, ServiceProcess, free_port, wait_until  # noqa: E402
from tests.integration.haproxy_bridge.conftest import fetch  # noqa: E402
from tests.integration.marathon.conftest import MarathonHarness  # noqa: E402

ECHO_APP = ROOT / "tests" / "integration" / "haproxy_bridge" / "echo_app.py"


def synthetic_apps(count: int, tasks: int, base_port: int) -> list[dict[str, Any]]:
    apps = []
    for i in range(count):
        labels = {"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "leastconn" if i % 3 else "roundrobin"}
        if i % 10 == 0:
            labels["HAPROXY_0_VHOST"] = f"app{i}.example.com"
        app: dict[str, Any] = {
            "id": f"/team{i % 20}/app{i}",
            "labels": labels,
            "portDefinitions": [{"port": base_port + i, "protocol": "tcp"}],
            "tasks": [
                {
                    "id": f"team{i % 20}_app{i}.{t}",
                    "host": f"10.0.{t}.{i % 250 + 1}",
                    "ports": [31000 + (i * tasks + t) % 1000],
                    "state": "TASK_RUNNING",
                    "healthCheckResults": [{"alive": True}] if i % 2 == 0 else [],
                }
                for t in range(tasks)
            ],
        }
        if i % 2 == 0:
            app["healthChecks"] = [{"protocol": "HTTP", "path": "/health", "portIndex": 0}]
        apps.append(app)
    return apps


def rebuild(apps_count: int, tasks: int, repeat: int, work: Path) -> tuple[str, list[dict[str, Any]], int]:
    base_port = _free_range(apps_count)
    apps = synthetic_apps(apps_count, tasks, base_port)
    generator = Generator(
        GlobalSettings(
            marathon="bench",
            bind_address="127.0.0.1",
            vhost_port=free_port(),
            stats_port=free_port(),
            socket_path=str(work / "admin.sock"),
        )
    )
    settings = RoutingSettings(bind_address="127.0.0.1")
    timings: dict[str, list[float]] = {"parse JSON": [], "routing": [], "render": [], "haproxy -c": []}
    payload = json.dumps({"apps": apps})
    text = ""
    for _ in range(repeat):
        started = time.perf_counter()
        parsed = json.loads(payload)["apps"]
        timings["parse JSON"].append(time.perf_counter() - started)
        started = time.perf_counter()
        routing = build_routing(parsed, settings)
        timings["routing"].append(time.perf_counter() - started)
        started = time.perf_counter()
        text = generator.render(routing)
        timings["render"].append(time.perf_counter() - started)
        path = work / "haproxy.cfg"
        atomic_write(str(path), text)
        started = time.perf_counter()
        check = validate("haproxy", str(path))
        timings["haproxy -c"].append(time.perf_counter() - started)
        assert check.ok, check.reason
    total = sum(statistics.median(v) for v in timings.values())
    print(
        f"1. full rebuild, {apps_count} apps x {tasks} tasks ({len(text.splitlines())} config lines, "
        f"{routing.server_count} servers):"
    )
    for step, values in timings.items():
        print(f"   {step:<12} {1000 * statistics.median(values):8.1f} ms")
    print(f"   {'total':<12} {1000 * total:8.1f} ms   (marathon-lb #344: 21.9 s -> {21.9 / total:.0f}x faster)")
    return text, apps, base_port


def reload_time(text: str, work: Path) -> None:
    config = work / "haproxy.cfg"
    atomic_write(str(config), text)
    proxy = SupervisedHAProxy("haproxy", str(config), str(work), timeout=120)
    try:
        started = time.perf_counter()
        proxy.start()
        start_time = time.perf_counter() - started
        times = []
        for n in range(3):
            atomic_write(str(config), text.replace("check inter 2s", f"check inter {2 + n + 1}s", 1))
            started = time.perf_counter()
            proxy.reload()
            times.append(time.perf_counter() - started)
        frontends = text.count("\nfrontend ")
        print(
            f"2. haproxy with {frontends} frontends: start {start_time:.2f} s, reload (SIGUSR2 -> new worker up) "
            f"median {statistics.median(times):.2f} s (haproxy#1634: 3.9 s with 834 frontends)"
        )
    finally:
        proxy.stop()


def reloads_under_load(work: Path, seconds: float = 5.0, reloads: int = 20) -> None:
    """As fast as 4 client threads go (fresh connection per request) through one frontend, reloading all along."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = free_port()
    work.mkdir()
    config = work / "haproxy.cfg"
    text = (
        f"global\n  stats socket {work}/admin.sock mode 600 level admin expose-fd listeners\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
        f"listen web\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{backend.server_address[1]}\n"
    )
    atomic_write(str(config), text)
    proxy = SupervisedHAProxy("haproxy", str(config), str(work), timeout=30)
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:
                status, _ = fetch(port, timeout=5)
                outcome = "ok" if status == 200 else "failed"
            except OSError:
                outcome = "failed"
            with lock:
                counts[outcome] += 1

    try:
        proxy.start()
        clients = [threading.Thread(target=client) for _ in range(4)]
        started = time.monotonic()
        for thread in clients:
            thread.start()
        for n in range(reloads):
            time.sleep(seconds / reloads)
            atomic_write(str(config), text + f"# generation {n}\n")
            proxy.reload()
        done.set()
        for thread in clients:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        done.set()
        proxy.stop()
        backend.shutdown()
        backend.server_close()
    total = counts["ok"] + counts["failed"]
    print(
        f"   {reloads} reloads under {total / elapsed:.0f} requests/s (fresh connections): {total} requests, "
        f"{counts['failed']} failed (marathon-lb's -sf reload: 0.24 % lost at 1,000/s)"
    )


def event_to_live(scales: int, work: Path) -> None:
    cluster = Cluster(work)
    marathon = MarathonHarness(cluster, work)
    bridge_port = free_port()
    bridge: ServiceProcess | None = None
    running_at: dict[str, float] = {}
    stop = threading.Event()
    try:
        cluster.start_master()
        cluster.start_agent(resources="cpus:4;mem:4096;disk:10000;ports:[31000-31200]")
        marathon.start()
        bridge = ServiceProcess(
            "bridge",
            [
                "--log_level",
                "warning",
                "haproxy-bridge",
                "--marathon",
                marathon.url,
                "--work_dir",
                str(work / "bridge"),
                "--bind-address",
                "127.0.0.1",
                "--http_port",
                str(bridge_port),
                "--stats-port",
                str(free_port()),
                "--vhost-port",
                "0",
            ],
            bridge_port,
            work,
        ).start("/health")

        def listen() -> None:
            with requests.get(
                f"{marathon.url}/v2/events",
                params={"event_type": "status_update_event"},
                headers={"Accept": "text/event-stream"},
                stream=True,
                timeout=(5, 120),
            ) as response:
                for line in response.iter_lines(chunk_size=None):
                    if stop.is_set():
                        return
                    if line.startswith(b"data:"):
                        event = json.loads(line[5:])
                        if event.get("taskStatus") == "TASK_RUNNING":
                            running_at.setdefault(event["taskId"], time.monotonic())

        threading.Thread(target=listen, daemon=True).start()
        port = free_port()
        app = {
            "id": "/latency",
            "cmd": f"{sys.executable} {ECHO_APP} $PORT0",
            "cpus": 0.05,
            "mem": 32,
            "instances": 1,
            "portDefinitions": [{"port": port}],
        }
        assert marathon.request("POST", "/v2/apps", json=app).status_code == 201
        latencies = []
        for n in range(1, scales + 2):
            if n > 1:
                marathon.request("PUT", "/v2/apps/latency?force=true", json={"instances": n})
            known = set(running_at)
            new = wait_until(lambda k=known: set(running_at) - k, 60, interval=0.01, what="a new task running")
            (task_id,) = new
            while True:
                try:
                    status, body = fetch(port, timeout=2)
                except OSError:
                    status, body = 0, {}
                if status == 200 and body.get("task") == task_id:
                    break
            if n > 1:  # the first includes binding the new port; the rest are pure scale-ups
                latencies.append(time.monotonic() - running_at[task_id])
            seen = time.monotonic()
            while time.monotonic() - seen < 0.05:  # let the other tasks answer too before the next scale
                fetch(port, timeout=2)
        metrics = requests.get(f"http://127.0.0.1:{bridge_port}/metrics", timeout=5).json()
        print(
            f"3. event to live ({scales} scale-ups, TASK_RUNNING event -> the new task answers on the service "
            f"port, in ms): median {1000 * statistics.median(latencies):.0f}, max {1000 * max(latencies):.0f}; "
            f"the bridge's own event -> reloaded: {1000 * metrics['last_event_to_live_seconds']:.0f} ms, "
            f"{metrics['reloads_total']} reloads (haproxy-marathon-bridge: up to 60 s, cron)"
        )
    finally:
        stop.set()
        if bridge is not None:
            bridge.stop()
        marathon.stop()
        cluster.stop()


def _free_range(count: int) -> int:
    """A base port with ``count`` free ports after it on 127.0.0.1 (the reload step binds them all)."""
    import socket

    for base in range(20000, 60000 - count, 1000):
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scales", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text, _apps, _base = rebuild(args.apps, args.tasks, args.repeat, work)
        reload_time(text, work)
        reloads_under_load(work / "load")
        (work / "cluster").mkdir()
        event_to_live(args.scales, work / "cluster")


if __name__ == "__main__":
    main()
