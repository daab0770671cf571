"""Mesos-DNS query throughput: ``dnsperf`` (Debian package) against ``mesolite dns`` serving 1,000 tasks.

A canned ``/master/state`` with ``--tasks`` RUNNING tasks (Marathon-style, DiscoveryInfo with a named port, on 20
agents) is served by a small HTTP server in this process; ``mesolite dns`` runs as a real process with
``--workers`` DNS worker processes sharing the port (SO_REUSEPORT). The query file holds every task's A record, its
SRV record and its canonical name, plus leader/slave names and unknown names (about 90 % NOERROR, 10 % NXDOMAIN,
the mix of the upstream measurement). dnsperf runs on the same machine, as in the upstream figure it is compared
with: 4 clients, 100 outstanding queries, ``--seconds`` seconds, after a warm-up pass.

Reported: queries/s, average latency, lost queries, and the ratio to upstream Mesos-DNS measured the same way
(Go 1.19, dnsperf ``-c 4 -l 15`` on a 2-vCPU machine, loopback master, same 90/10 query mix: GOMAXPROCS=1:
29.3K QPS, 2.9 ms; GOMAXPROCS=2: 32.3K QPS; see docs/performance.md).

Usage: ``.venv/bin/python bench/dns.py [--tasks 1000] [--workers 2] [--seconds 15]`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "services"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from tests.cluster import ServiceProcess, free_port, wait_until  # noqa: E402

UPSTREAM_QPS = {1: 29_300, 2: 32_300}
UPSTREAM_LATENCY_MS = 2.9


def canned_state(tasks: int, agents: int, master: str) -> dict[str, Any]:
    slaves = [{"id": f"bench-S{i}", "hostname": f"agent{i}", "pid": f"slave(1)@10.0.{i}.1:5051"} for i in range(agents)]
    infos = []
    for i in range(tasks):
        app = f"app{i % (tasks // 4 or 1)}"  # four instances per app: multi-answer names, as real services have
        port = 31000 + i % 1000
        infos.append(
            {
                "id": f"{app}.{i:08x}-bench",
                "name": f"{app}.group",
                "slave_id": f"bench-S{i % agents}",
                "state": "TASK_RUNNING",
                "resources": {"cpus": 0.1, "mem": 32.0, "ports": f"[{port}-{port}]"},
                "discovery": {
                    "visibility": "FRAMEWORK",
                    "name": f"{app}.group",
                    "ports": {"ports": [{"number": port, "name": "http", "protocol": "tcp"}]},
                },
                "statuses": [
                    {
                        "state": "TASK_RUNNING",
                        "timestamp": 1.0,
                        "container_status": {
                            "network_infos": [{"ip_addresses": [{"ip_address": f"10.1.{i // 250}.{i % 250 + 1}"}]}]
                        },
                    }
                ],
            }
        )
    return {
        "leader": f"master@{master}",
        "slaves": slaves,
        "frameworks": [{"name": "marathon", "pid": f"scheduler(1)@{master.split(':')[0]}:25501", "tasks": infos}],
    }


def query_file(path: Path, tasks: int) -> int:
    apps = sorted({f"app{i % (tasks // 4 or 1)}" for i in range(tasks)})
    lines = []
    for app in apps:
        lines += [f"{app}-group.marathon.mesos A", f"_{app}-group._tcp.marathon.mesos SRV"]
        lines += [f"{app}-group.marathon.slave.mesos A", f"_http._{app}-group._tcp.marathon.mesos SRV"]
        lines += [f"{app}-group.marathon.mesos AAAA"]
    lines += ["leader.mesos A", "master.mesos A", "slave.mesos A", "_leader._tcp.mesos SRV"]
    noerror = len(lines)
    lines += [f"missing{i}.marathon.mesos A" for i in range(noerror // 9)]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def serve_state(doc: dict[str, Any], port: int) -> ThreadingHTTPServer:
    body = json.dumps(doc).encode()
    summary = json.dumps({"slaves": doc["slaves"], "frameworks": [{"id": "m", "name": "marathon"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's naming
            data = summary if "summary" in self.path else body
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def dnsperf(port: int, queries: Path, seconds: float, clients: int) -> dict[str, float]:
    out = subprocess.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-c", str(clients), "-l", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else float("nan")

    return {
        "qps": number(r"Queries per second:\s+([\d.]+)"),
        "latency_ms": number(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        "completed": number(r"Queries completed:\s+(\d+)"),
        "lost": number(r"Queries lost:\s+(\d+)"),
        "noerror": number(r"NOERROR (\d+)"),
        "nxdomain": number(r"NXDOMAIN (\d+)"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("dnsperf") is None:
        print("dnsperf is not installed (apt-get install dnsperf)", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="bench-dns-"))
    master_port = free_port()
    master = f"127.0.0.1:{master_port}"
    server = serve_state(canned_state(args.tasks, args.agents, master), master_port)
    queries = base / "queries.txt"
    count = query_file(queries, args.tasks)
    print(
        f"{args.tasks} tasks on {args.agents} agents; {count} distinct queries; dnsperf -c {args.clients} "
        f"-l {args.seconds:g} on this machine"
    )
    print(f"{'workers':>7} {'QPS':>9} {'avg ms':>7} {'lost':>6} {'NOERROR':>9} {'NXDOMAIN':>9} {'vs upstream':>12}")
    try:
        for workers in args.workers:
            dns_port, http_port = free_port(), free_port()
            config = base / f"config-{workers}.json"
            config.write_text(
                json.dumps(
                    {
                        "masters": [master],
                        "listener": "127.0.0.1",
                        "httpListener": "127.0.0.1",
                        "httpport": http_port,
                        "externalon": False,
                    }
                )
            )
            process = ServiceProcess(
                f"dns-{workers}",
                ["dns", "--config", str(config), "--dns-port", str(dns_port), "--workers", str(workers)],
                http_port,
                base,
            )
            process.start("/v1/version")
            try:
                wait_until(lambda p=process: any(h["ip"] for h in p.get("/v1/hosts/leader.mesos").json()), timeout=30)
                dnsperf(dns_port, queries, 3, args.clients)  # warm-up: every query answered once
                result = dnsperf(dns_port, queries, args.seconds, args.clients)
            finally:
                process.stop()
            upstream = UPSTREAM_QPS.get(workers, UPSTREAM_QPS[2])
            print(
                f"{workers:>7} {result['qps']:>9.0f} {result['latency_ms']:>7.2f} {result['lost']:>6.0f} "
                f"{result['noerror']:>9.0f} {result['nxdomain']:>9.0f} {result['qps'] / upstream:>11.2f}x"
            )
    finally:
        server.shutdown()
    print(
        f"upstream Mesos-DNS (Go), same method: {UPSTREAM_QPS[1]} QPS at GOMAXPROCS=1, {UPSTREAM_QPS[2]} at 2, "
        f"{UPSTREAM_LATENCY_MS} ms avg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
