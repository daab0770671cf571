"""The ``mesolite`` command: one subcommand per service, with flags named as in the originals.

Each service owns its flags (``<service>/config.py``: ``add_parser`` defines them, ``from_args`` turns them into the
service's config); this module only builds the command, picks the subcommand and runs the service's Flask app under
gunicorn (``core/server.py``). ``mesolite up`` is the demo supervisor (``demo.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mesolite import demo
from mesolite.agent import config as agent_config
from mesolite.chronos import config as chronos_config
from mesolite.core.flags import FlagError
from mesolite.dns import config as dns_config
from mesolite.haproxy_bridge import config as bridge_config
from mesolite.haproxy_bridge import zdd_config
from mesolite.marathon import config as marathon_config
from mesolite.master import config as master_config

if TYPE_CHECKING:
    from flask import Flask

DESCRIPTION = "The Apache Mesos stack: one subcommand per service, with flags named as in the originals."

_SUBCOMMANDS = (
    master_config.add_parser,
    agent_config.add_parser,
    chronos_config.add_parser,
    dns_config.add_parser,
    marathon_config.add_parser,
    bridge_config.add_parser,
    zdd_config.add_parser,
    demo.add_parser,
)


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command and its subcommands by name (to report a ``FlagError`` with the subcommand's usage)."""
    parser = argparse.ArgumentParser(prog="mesolite", description=DESCRIPTION)
    parser.add_argument("--log_level", default=os.environ.get("MESOLITE_LOG_LEVEL", "info"))
    subparsers = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for add_parser in _SUBCOMMANDS:
        command = add_parser(subparsers)
        commands[command.prog.rsplit(" ", 1)[-1]] = command
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _build()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _RUNNERS[args.command](args)
    except FlagError as exc:
        # Reported as argparse reports a bad value, but returned rather than raised so that callers get the status.
        command = commands[args.command]
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {exc}", file=sys.stderr)
        return 2


def _serve(factory: Callable[[], Flask], address: str, port: int, args: argparse.Namespace) -> int:
    """The service's app under gunicorn's application API, in this process, until it is stopped."""
    from mesolite.core.server import serve

    serve(factory, address, port, threads=args.threads, log_level=args.log_level)
    return 0


def run_master(args: argparse.Namespace) -> int:
    from mesolite.master.api import create_app

    config = master_config.from_args(args)
    return _serve(lambda: create_app(config), config.ip, config.port, args)


def run_agent(args: argparse.Namespace) -> int:
    from mesolite.agent.api import create_app
    from mesolite.agent.checkpoint import destroy_containers
    from mesolite.agent.state import detect_resources

    config = agent_config.from_args(args)
    if config.recover == "cleanup":
        # Mesos: kill every executor the previous agent left, then exit (before an incompatible upgrade).
        killed = destroy_containers(config.work_dir)
        logging.getLogger("mesolite.agent").info("--recover=cleanup: destroyed %d containers", killed)
        return 0
    config = dataclasses.replace(config, resources=detect_resources(config.resources, config.work_dir))
    return _serve(lambda: create_app(config), config.ip, config.port, args)


def run_chronos(args: argparse.Namespace) -> int:
    from mesolite.chronos.api import create_app

    config = chronos_config.from_args(args)
    return _serve(lambda: create_app(config), config.http_address, config.http_port, args)


def run_marathon(args: argparse.Namespace) -> int:
    from mesolite.marathon.api import create_app

    config = marathon_config.from_args(args)
    return _serve(lambda: create_app(config), config.http_address, config.http_port, args)


def run_haproxy_bridge(args: argparse.Namespace) -> int:
    from mesolite.haproxy_bridge.api import create_app

    config = bridge_config.from_args(args)
    os.makedirs(config.work_dir, exist_ok=True)
    return _serve(lambda: create_app(config), config.http_address, config.api_port, args)


def run_dns(args: argparse.Namespace) -> int:
    """Mesos-DNS serves itself (its HTTP API may be off), and a bad config.json exits 1 as upstream does."""
    from mesolite.dns.api import run

    try:
        config = dns_config.from_args(args)
    except dns_config.ConfigError as exc:
        print(f"mesolite dns: {exc}", file=sys.stderr)
        return 1
    return run(config, log_level=args.log_level)


_RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "master": run_master,
    "agent": run_agent,
    "chronos": run_chronos,
    "dns": run_dns,
    "marathon": run_marathon,
    "haproxy-bridge": run_haproxy_bridge,
    "zdd": zdd_config.run,
    "up": demo.run_demo,
}


if __name__ == "__main__":
    sys.exit(main())
