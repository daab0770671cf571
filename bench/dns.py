"""Mesos-DNS query throughput: ``dnsperf`` against ``mesolite dns`` and upstream Mesos-DNS, side by side.

A canned ``/master/state`` with ``--tasks`` RUNNING tasks (Marathon-style, DiscoveryInfo with a named port, four
instances per app, on 20 agents) is served by a small HTTP server in this process. ``mesolite dns --workers 1`` and,
when it is built (``--upstream``, see docs/performance.md), upstream Mesos-DNS with ``GOMAXPROCS=1`` both run on
CPU ``--server-cpu``; dnsperf (4 clients, 100 outstanding queries) runs on ``--client-cpu``. The two servers are
measured in turn, set after set, round after round, so a busy shared machine slows both alike and the ratios hold.

Query sets (every set is answered by both servers; the NOERROR share printed beside each figure shows they agree):
- ``repeated``: the 1,393 queries of every app's A, AAAA (NODATA), ``.slave`` A, SRV and named-port SRV, the
  leader/master/slave names and 10 % unknown names, all lowercase: after the first pass every one is a repeat.
- ``random-case``: the same queries with every letter's case drawn at random (what 0x20-encoding resolvers send),
  20 casings of each: practically no query repeats byte for byte.
- ``distinct``: 100,000 distinct names in the domain, 90 % unknown (NXDOMAIN), 10 % existing apps, random case.
- ``type-mix``: existing names asked as A, AAAA, SRV or ANY at random, random case.
Then a flood of each server: ``--flood-names`` (1,000,000) distinct unknown names sent once, as fast as dnsperf
can, while a second dnsperf asks known names (lowercase, as stub resolvers repeat them) at a fixed 1,000 QPS;
reported: that known-name latency with and without the flood, and memory before and after (for mesolite each
worker's RSS and table sizes, from the worker itself on SIGUSR1; for upstream its RSS).

Usage: ``.venv/bin/python bench/dns.py [--upstream PATH] [--seconds 8] [--rounds 2]`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "services"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from tests.cluster import ServiceProcess, free_port, wait_until  # noqa: E402

SETS = ("repeated", "random-case", "distinct", "type-mix")


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


def app_names(tasks: int) -> list[str]:
    return sorted({f"app{i % (tasks // 4 or 1)}" for i in range(tasks)})


def repeated_queries(tasks: int) -> list[str]:
    lines = []
    for app in app_names(tasks):
        lines += [f"{app}-group.marathon.mesos A", f"_{app}-group._tcp.marathon.mesos SRV"]
        lines += [f"{app}-group.marathon.slave.mesos A", f"_http._{app}-group._tcp.marathon.mesos SRV"]
        lines += [f"{app}-group.marathon.mesos AAAA"]
    lines += ["leader.mesos A", "master.mesos A", "slave.mesos A", "_leader._tcp.mesos SRV"]
    noerror = len(lines)
    lines += [f"missing{i}.marathon.mesos A" for i in range(noerror // 9)]
    return lines


def random_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def query_sets(tasks: int, base: Path, flood: int) -> dict[str, Path]:
    rng = random.Random(24)
    repeated = repeated_queries(tasks)
    apps = app_names(tasks)
    sets: dict[str, list[str]] = {"repeated": repeated}
    sets["random-case"] = []
    for _ in range(20):
        for line in repeated:
            name, qtype = line.split()
            sets["random-case"].append(f"{random_case(name, rng)} {qtype}")
    distinct = []
    for i in range(100_000):
        if i % 10 == 0:
            name = f"{apps[i // 10 % len(apps)]}-group.marathon.mesos"
        else:
            name = f"host{i}-{rng.randrange(1 << 30):x}.marathon.mesos"
        distinct.append(f"{random_case(name, rng)} A")
    sets["distinct"] = distinct
    mix = []
    for i in range(20 * len(apps)):
        app = apps[i % len(apps)]
        qtype = rng.choice(("A", "AAAA", "SRV", "ANY"))
        name = f"_{app}-group._tcp.marathon.mesos" if qtype == "SRV" else f"{app}-group.marathon.mesos"
        mix.append(f"{random_case(name, rng)} {qtype}")
    sets["type-mix"] = mix
    paths = {}
    for key, lines in sets.items():
        paths[key] = base / f"{key}.txt"
        paths[key].write_text("\n".join(lines) + "\n")
    paths["known"] = base / "known.txt"
    paths["known"].write_text("\n".join(line for line in repeated if not line.startswith("missing")) + "\n")
    paths["flood"] = base / "flood.txt"
    with paths["flood"].open("w") as out:
        for i in range(flood):
            out.write(f"f{i}-{rng.randrange(1 << 30):x}.marathon.mesos A\n")
    return paths


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


@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit this CPU set (with every thread and child they start later)."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def dnsperf(port: int, queries: Path, cpu: int | None, *extra: str, seconds: float | None = None) -> dict[str, float]:
    command = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-c", "4", "-q", "100", *extra]
    if seconds is not None:
        command += ["-l", str(seconds)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=(seconds or 600) + 120, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else float("nan")

    completed = number(r"Queries completed:\s+(\d+)")
    return {
        "qps": number(r"Queries per second:\s+([\d.]+)"),
        "latency_ms": number(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        "max_ms": number(r"Average Latency \(s\):\s+[\d.]+ \(min [\d.]+, max ([\d.]+)\)") * 1000,
        "completed": completed,
        "lost": number(r"Queries lost:\s+(\d+)"),
        "noerror": (number(r"NOERROR (\d+)") if "NOERROR" in out else 0.0) / completed * 100 if completed else 0.0,
    }


class Server:
    """One DNS server under test: a name, its DNS port, its processes, and how to stop it."""

    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port

    def pids(self) -> list[int]:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        """User + system CPU time of every process of the server so far: on a shared machine CPU time per query
        moves much less with the load than queries per second do."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        raise NotImplementedError


class Mesolite(Server):
    def __init__(self, base: Path, master: str, workers: int, cpus: set[int] | None) -> None:
        super().__init__("mesolite", free_port())
        http_port = free_port()
        config = base / "mesolite.json"
        doc = {"masters": [master], "listener": "127.0.0.1", "httpListener": "127.0.0.1", "httpport": http_port}
        config.write_text(json.dumps({**doc, "externalon": False}))
        args = ["dns", "--config", str(config), "--dns-port", str(self.port), "--workers", str(workers)]
        self.process = ServiceProcess("mesolite-dns", args, http_port, base)
        with pinned(cpus):
            self.process.start("/v1/version")
        wait_until(lambda: self.process.get("/v1/hosts/leader.mesos").json()[0]["ip"], timeout=60)

    def pids(self) -> list[int]:
        """The service, gunicorn and the DNS workers: everything in the service's process group."""
        assert self.process.process is not None
        group = self.process.process.pid
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and os.getpgid(int(entry.name)) == group:
                    found.append(int(entry.name))
            except (OSError, ProcessLookupError):
                continue
        return sorted(found)

    def workers(self) -> list[int]:
        found = []
        for pid in self.pids():
            try:
                if b"mesolite.dns.listener" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                continue
        return found

    def worker_stats(self) -> dict[int, dict[str, Any]]:
        """Each worker's own report (RSS and table sizes), asked for with SIGUSR1 and read from the log."""
        pids = self.workers()
        for pid in pids:
            os.kill(pid, signal.SIGUSR1)
        stats: dict[int, dict[str, Any]] = {}

        def collect() -> bool:
            for line in self.process.log_path.read_text(errors="replace").splitlines():
                match = re.search(r"dns worker (\d+) stats: (\{.*\})", line)
                if match and int(match.group(1)) in pids:
                    stats[int(match.group(1))] = json.loads(match.group(2))
            return len(stats) == len(pids)

        wait_until(collect, timeout=10, what="DNS worker stats")
        return stats

    def stop(self) -> None:
        self.process.stop()


class Upstream(Server):
    def __init__(self, base: Path, binary: str, master: str, cpu: int | None) -> None:
        super().__init__("upstream", free_port())
        config = base / "upstream.json"
        doc = {"masters": [master], "port": self.port, "listener": "127.0.0.1", "httpListener": "127.0.0.1"}
        config.write_text(json.dumps({**doc, "httpport": free_port(), "externalon": False, "refreshSeconds": 60}))
        command = [binary, f"-config={config}"]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        log = open(base / "upstream.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "GOMAXPROCS": "1"}, cwd=base
        )
        log.close()
        wait_until(lambda: _answers(self.port), timeout=60, what="upstream Mesos-DNS to answer")

    def pids(self) -> list[int]:
        return [self.process.pid]  # taskset execs the binary: same process

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _answers(port: int) -> bool:
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "leader.mesos", "+tries=1", "+time=1", "+short"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    return bool(out.strip()) and "timed out" not in out


def find_upstream(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("MESOS_DNS_BIN"), shutil.which("mesos-dns")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def throughput(servers: list[Server], paths: dict[str, Path], args: argparse.Namespace, cpu: int | None) -> None:
    print(f"\nthroughput: dnsperf -c 4 -q 100 -l {args.seconds:g}, rounds interleaved (load avg 1/5/15 min shown)")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for server in servers:
        dnsperf(server.port, paths["repeated"], cpu, seconds=2)  # warm-up: processes running, repeats cached
    for round_ in range(args.rounds):
        for key in SETS:
            for server in servers if round_ % 2 == 0 else servers[::-1]:
                used = server.cpu_seconds()
                result = dnsperf(server.port, paths[key], cpu, seconds=args.seconds)
                result["cpu_us"] = (server.cpu_seconds() - used) / max(result["completed"], 1) * 1e6
                result["load"] = os.getloadavg()[0]
                results.setdefault((key, server.name), []).append(result)
                print(
                    f"  round {round_ + 1} {key:12} {server.name:9} {result['qps']:>8.0f} QPS "
                    f"{result['latency_ms']:6.2f} ms avg  {result['cpu_us']:5.1f} CPU us/query  "
                    f"lost {result['lost']:.0f}  NOERROR {result['noerror']:.0f}%  load {load()}",
                    flush=True,
                )
    print(
        f"\n{'set':12} {'mesolite QPS':>13} {'ms':>6} {'upstream QPS':>13} {'ms':>6} {'QPS ratio':>10}"
        f" {'CPU us/q':>9} {'upstream':>9} {'CPU ratio':>10}   QPS ratios per round"
    )
    warm = statistics.median(r["qps"] for r in results[("repeated", "mesolite")])
    for key in SETS:
        mine = results[(key, "mesolite")]
        theirs = results.get((key, "upstream"))
        qps = statistics.median(r["qps"] for r in mine)
        ms = statistics.median(r["latency_ms"] for r in mine)
        cpu_us = statistics.median(r["cpu_us"] for r in mine)
        if theirs:
            ratios = [m["qps"] / t["qps"] for m, t in zip(mine, theirs, strict=True)]
            other = statistics.median(r["qps"] for r in theirs)
            other_ms = statistics.median(r["latency_ms"] for r in theirs)
            other_cpu = statistics.median(r["cpu_us"] for r in theirs)
            print(
                f"{key:12} {qps:>13.0f} {ms:>6.2f} {other:>13.0f} {other_ms:>6.2f} {statistics.median(ratios):>9.2f}x"
                f" {cpu_us:>9.1f} {other_cpu:>9.1f} {other_cpu / cpu_us:>9.2f}x   "
                + " ".join(f"{r:.2f}" for r in ratios)
            )
        else:
            print(
                f"{key:12} {qps:>13.0f} {ms:>6.2f} {'-':>13} {'-':>6} {qps / warm:>9.2f}x {cpu_us:>9.1f}"
                "   (ratio to mesolite's repeated set)"
            )


def rss_kb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])


def memory(server: Server) -> dict[int, Any]:
    if isinstance(server, Mesolite):
        return dict(server.worker_stats())
    assert isinstance(server, Upstream)
    return {server.process.pid: {"rss_kb": rss_kb(server.process.pid)}}


def flood(server: Server, paths: dict[str, Path], args: argparse.Namespace, cpu: int | None) -> None:
    lines = sum(1 for _ in paths["flood"].open())
    print(f"\nflood of {server.name}: {lines:,} distinct unknown names sent once, known names at 1,000 QPS beside it")
    before = memory(server)
    quiet = dnsperf(server.port, paths["known"], cpu, "-Q", "1000", "-c", "1", seconds=5)
    box: dict[str, dict[str, float]] = {}
    thread = threading.Thread(target=lambda: box.update(flood=dnsperf(server.port, paths["flood"], cpu, "-n", "1")))
    started = time.monotonic()
    thread.start()
    time.sleep(1.0)
    during = []
    while thread.is_alive():
        result = dnsperf(server.port, paths["known"], cpu, "-Q", "1000", "-c", "1", seconds=5)
        if thread.is_alive():
            during.append(result)
    thread.join()
    elapsed = time.monotonic() - started
    after = memory(server)
    sent = box["flood"]
    print(
        f"  flood: {sent['completed']:,.0f} answered in {elapsed:.0f} s ({sent['qps']:.0f} QPS), "
        f"lost {sent['lost']:.0f}, NOERROR {sent['noerror']:.1f}%; load {load()}"
    )
    print(
        f"  known names without flood: {quiet['latency_ms']:.2f} ms avg, max {quiet['max_ms']:.1f} ms, "
        f"lost {quiet['lost']:.0f}"
    )
    for i, result in enumerate(during):
        print(
            f"  known names during flood ({5 * i + 1}-{5 * i + 6} s): {result['latency_ms']:.2f} ms avg, "
            f"max {result['max_ms']:.1f} ms, lost {result['lost']:.0f}"
        )
    if during:
        print(
            f"  known names during flood, over all samples: {statistics.mean(r['latency_ms'] for r in during):.2f} ms"
            f" avg, max {max(r['max_ms'] for r in during):.1f} ms, lost {sum(r['lost'] for r in during):.0f}"
        )
    for pid in sorted(after):
        print(f"  process {pid}: before {json.dumps(before.get(pid))}")
        print(f"  process {pid}: after  {json.dumps(after[pid])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="mesolite DNS workers (1: the one-core comparison)")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--flood-names", type=int, default=1_000_000, help="0 skips the flood")
    parser.add_argument("--upstream", help="upstream mesos-dns binary (default: $MESOS_DNS_BIN, then PATH)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place servers and dnsperf")
    args = parser.parse_args()
    if shutil.which("dnsperf") is None:
        print("dnsperf is not installed (apt-get install dnsperf)", file=sys.stderr)
        return 1
    pin = not args.no_pin and len(os.sched_getaffinity(0)) > 1
    server_cpus = {args.server_cpu} if pin else None
    client_cpu = args.client_cpu if pin else None
    binary = find_upstream(args.upstream)
    base = Path(tempfile.mkdtemp(prefix="bench-dns-"))
    master_port = free_port()
    master = f"127.0.0.1:{master_port}"
    state_server = serve_state(canned_state(args.tasks, args.agents, master), master_port)
    paths = query_sets(args.tasks, base, args.flood_names)
    print(
        f"{args.tasks} tasks on {args.agents} agents; mesolite --workers {args.workers}"
        + (
            f"; upstream {binary} (GOMAXPROCS=1)"
            if binary
            else "; upstream not built: ratios are to mesolite's warm set"
        )
        + (f"; servers on CPU {args.server_cpu}, dnsperf on CPU {args.client_cpu}" if pin else "; not pinned")
        + f"; {os.cpu_count()} CPUs, load avg {load()}"
    )
    servers: list[Server] = []
    try:
        mesolite = Mesolite(base, master, args.workers, server_cpus)
        servers.append(mesolite)
        if binary:
            servers.append(Upstream(base, binary, master, args.server_cpu if pin else None))
        throughput(servers, paths, args, client_cpu)
        if args.flood_names:
            for server in servers:
                flood(server, paths, args, client_cpu)
    finally:
        for server in servers:
            server.stop()
        state_server.shutdown()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
