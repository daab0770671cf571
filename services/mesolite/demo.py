"""``mesolite up``: the local demo cluster, every service on its standard port as a child process.

Each child is started with the same ``mesolite <service>`` command line an operator (or a systemd unit) would use,
so the demo exercises exactly what is deployed. Ctrl-C stops them all; so does any one of them exiting.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

from mesolite.core.flags import non_negative_int, parse_port
from mesolite.dns.config import write_demo_config

DEFAULT_WORK_DIR = os.path.join(os.environ.get("TMPDIR", "/tmp"), "mesolite-demo")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    up = subparsers.add_parser("up", help="run the local demo cluster")
    up.add_argument("--work_dir", default=DEFAULT_WORK_DIR)
    up.add_argument("--ip", default="127.0.0.1")
    up.add_argument("--agents", type=non_negative_int, default=2)
    up.add_argument("--dns-port", dest="dns_port", type=parse_port, default=8053, help="Mesos-DNS port (UDP and TCP)")
    return up


def demo_services(args: argparse.Namespace) -> list[tuple[str, list[str], str]]:
    """(name, ``mesolite`` arguments, what to print) for each service of the demo, in start order."""
    ip = args.ip
    specs: list[tuple[str, list[str], str]] = [
        (
            "master",
            ["master", "--ip", ip, "--port", "5050", "--work_dir", f"{args.work_dir}/master"],
            f"http://{ip}:5050",
        ),
    ]
    for n in range(args.agents):
        port = 5051 + n
        specs.append(
            (
                f"agent{n + 1}",
                [
                    "agent",
                    "--master",
                    f"{ip}:5050",
                    "--ip",
                    ip,
                    "--port",
                    str(port),
                    "--work_dir",
                    f"{args.work_dir}/agent{n + 1}",
                    "--attributes",
                    f"rack_id:{n + 1}",
                ],
                f"http://{ip}:{port}",
            )
        )
    marathon_args = ["--master", f"{ip}:5050", "--http_address", ip, "--http_port", "8080"]
    specs.append(
        ("marathon", ["marathon", *marathon_args, "--work_dir", f"{args.work_dir}/marathon"], f"http://{ip}:8080")
    )
    chronos_args = ["--master", f"{ip}:5050", "--http_address", ip, "--http_port", "4400"]
    specs.append(("chronos", ["chronos", *chronos_args, "--work_dir", f"{args.work_dir}/chronos"], f"http://{ip}:4400"))
    dns_port = args.dns_port
    dns_config = write_demo_config(f"{args.work_dir}/dns", ip, master=f"{ip}:5050", dns_port=dns_port, http_port=8123)
    specs.append(("dns", ["dns", "--config", dns_config], f"http://{ip}:8123 (DNS on {ip}:{dns_port}, udp and tcp)"))
    if shutil.which("haproxy"):
        bridge_args = ["--marathon", f"http://{ip}:8080", "--bind-address", ip, "--http_address", ip]
        specs.append(
            (
                "haproxy",
                ["haproxy-bridge", *bridge_args, "--work_dir", f"{args.work_dir}/haproxy-bridge"],
                f"http://{ip}:9091 (HAProxy: service ports, vhosts on {ip}:80, stats on {ip}:9090)",
            )
        )
    return specs


def run_demo(args: argparse.Namespace) -> int:
    """Every service that exists, on its standard port, as child processes; Ctrl-C stops them all."""
    specs = demo_services(args)
    base = [sys.executable, "-m", "mesolite.cli", "--log_level", "warning"]
    children: list[subprocess.Popen[bytes]] = []
    agents: list[subprocess.Popen[bytes]] = []
    try:
        for name, command, url in specs:
            # Process groups of their own: Ctrl-C reaches only the demo, which stops them in order: the agents with
            # their tasks (SIGUSR1; a SIGINT or SIGTERM would leave Marathon's checkpointed tasks running) while the
            # master they leave is still up, then the rest.
            children.append(subprocess.Popen(base + command, process_group=0))
            if name.startswith("agent"):
                agents.append(children[-1])
            print(f"{name:<8} {url}", flush=True)
        print("mesolite demo running; Ctrl-C stops it.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a service exited; stopping the demo", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, group in ((signal.SIGUSR1, agents), (signal.SIGTERM, children)):  # agents first, master still up
            for child in group:
                if child.poll() is None:
                    child.send_signal(sig)
            for child in group:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
