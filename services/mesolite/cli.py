"""The ``mesolite`` command: one subcommand per service, with flags named as in the originals."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from mesolite.core.attributes import AttributeParseError, Attributes
from mesolite.core.flags import parse_duration
from mesolite.core.resources import ResourceError, Resources


def _resources_arg(text: str) -> Resources:
    if text.startswith("file://"):
        with open(text[len("file://") :]) as handle:
            text = handle.read().strip()
    try:
        return Resources.parse(text)
    except ResourceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _attributes_arg(text: str) -> Attributes:
    try:
        return Attributes.parse(text)
    except AttributeParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _weights_arg(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        role, _, weight = item.partition("=")
        try:
            weights[role] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid weight '{item}' (expected role=weight)") from None
    return weights


def _optional_duration(text: str) -> float | None:
    return None if text in ("", "none", "0") else parse_duration(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesolite", description=__doc__)
    parser.add_argument("--log_level", default=os.environ.get("MESOLITE_LOG_LEVEL", "info"))
    sub = parser.add_subparsers(dest="command", required=True)

    master = sub.add_parser("master", help="run a Mesos master")
    master.add_argument("--ip", default="127.0.0.1")
    master.add_argument("--port", type=int, default=5050)
    master.add_argument("--hostname")
    master.add_argument("--work_dir", required=True)
    master.add_argument("--cluster")
    master.add_argument("--zk", help="zk://host:port[,host:port...]/path: elect a leader among masters")
    master.add_argument(
        "--quorum", type=int, default=1, help="accepted for compatibility; the registry lives in ZooKeeper"
    )
    master.add_argument("--allocation_interval", type=parse_duration, default=1.0)
    master.add_argument(
        "--offer_timeout",
        type=_optional_duration,
        default=60.0,
        help="rescind offers held longer than this (default 60secs; 'none' disables)",
    )
    master.add_argument("--agent_ping_timeout", type=parse_duration, default=15.0)
    master.add_argument("--max_agent_ping_timeouts", type=int, default=5)
    master.add_argument("--agent_reregister_timeout", type=parse_duration, default=600.0)
    master.add_argument("--heartbeat_interval", type=parse_duration, default=15.0, help=argparse.SUPPRESS)
    master.add_argument("--weights", type=_weights_arg, default={})
    master.add_argument("--threads", type=int, default=128, help="HTTP threads (each subscribed scheduler holds one)")

    agent = sub.add_parser("agent", help="run a Mesos agent")
    agent.add_argument("--master", required=True, help="HOST:PORT of the master")
    agent.add_argument("--ip", default="127.0.0.1")
    agent.add_argument("--port", type=int, default=5051)
    agent.add_argument("--hostname")
    agent.add_argument("--work_dir", required=True)
    agent.add_argument("--resources", type=_resources_arg, default=Resources())
    agent.add_argument("--attributes", type=_attributes_arg, default=Attributes())
    agent.add_argument("--switch_user", type=lambda v: v.lower() in ("1", "true", "yes"), default=True)
    agent.add_argument("--threads", type=int, default=32)

    up = sub.add_parser("up", help="run the local demo cluster")
    up.add_argument("--work_dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "mesolite-demo"))
    up.add_argument("--ip", default="127.0.0.1")
    up.add_argument("--agents", type=int, default=2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "master":
        return run_master(args)
    if args.command == "agent":
        return run_agent(args)
    return run_demo(args)


def run_master(args: argparse.Namespace) -> int:
    from mesolite.core.server import serve
    from mesolite.master.api import create_app
    from mesolite.master.state import MasterConfig

    config = MasterConfig(
        ip=args.ip,
        port=args.port,
        hostname=args.hostname,
        work_dir=args.work_dir,
        allocation_interval=args.allocation_interval,
        offer_timeout=args.offer_timeout,
        agent_ping_timeout=args.agent_ping_timeout,
        max_agent_ping_timeouts=args.max_agent_ping_timeouts,
        agent_reregister_timeout=args.agent_reregister_timeout,
        heartbeat_interval=args.heartbeat_interval,
        weights=args.weights,
        cluster=args.cluster,
        zk=args.zk,
        quorum=args.quorum,
    )
    serve(lambda: create_app(config), args.ip, args.port, threads=args.threads, log_level=args.log_level)
    return 0


def run_agent(args: argparse.Namespace) -> int:
    from mesolite.agent.api import create_app
    from mesolite.agent.state import AgentConfig, detect_resources
    from mesolite.core.server import serve

    config = AgentConfig(
        master=args.master,
        ip=args.ip,
        port=args.port,
        hostname=args.hostname,
        work_dir=args.work_dir,
        resources=detect_resources(args.resources, args.work_dir),
        attributes=args.attributes,
        switch_user=args.switch_user,
    )
    serve(lambda: create_app(config), args.ip, args.port, threads=args.threads, log_level=args.log_level)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Every service that exists, on its standard port, as child processes; Ctrl-C stops them all."""
    ip = args.ip
    base = [sys.executable, "-m", "mesolite.cli", "--log_level", "warning"]
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
    children: list[subprocess.Popen[bytes]] = []
    try:
        for name, command, url in specs:
            children.append(subprocess.Popen(base + command))
            print(f"{name:<8} {url}", flush=True)
        print("mesolite demo running; Ctrl-C stops it.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a service exited; stopping the demo", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
