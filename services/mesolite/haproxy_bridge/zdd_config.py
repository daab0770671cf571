"""Flags of ``mesolite zdd``: zdd.py's names, short forms and defaults (``-m``, ``-l``, ``-j``, ``-f``, ``-s 5``...)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mesolite.haproxy_bridge.zdd import ZddConfig

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    zdd = sub.add_parser(
        "zdd",
        help="blue/green deploy an app behind the HAProxy bridge with no request lost (marathon-lb's zdd.py)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    zdd.add_argument("--marathon", "-m", required=True, help="Marathon endpoint, e.g. http://marathon1:8080")
    zdd.add_argument(
        "--marathon-lb",
        "-l",
        required=True,
        action="append",
        help="the bridge's HAProxy stats endpoint, e.g. http://lb.marathon.mesos:9090 (every A record is one "
        "HAProxy; repeatable)",
    )
    zdd.add_argument("--json", "-j", required=True, help="the app JSON (with HAPROXY_DEPLOYMENT_GROUP and _ALT_PORT)")
    zdd.add_argument("--dry-run", "-d", action="store_true", help="print the app definition it would deploy, only")
    zdd.add_argument("--force", "-f", action="store_true", help="deploy without prompting")
    zdd.add_argument("--step-delay", "-s", type=float, default=5, help="seconds between deployment steps")
    zdd.add_argument("--initial-instances", "-i", type=int, default=1, help="instances of the new app to start with")
    zdd.add_argument(
        "--linear-increase",
        type=int,
        default=0,
        help="scale the new app up by this many at each step (default: by half, then straight to the target)",
    )
    zdd.add_argument("--resume", "-r", action="store_true", help="resume a deployment in progress")
    zdd.add_argument(
        "--max-wait", "-w", type=float, default=300, help="seconds to wait for HAProxy to drain connections"
    )
    zdd.add_argument(
        "--new-instances",
        "-n",
        type=int,
        default=0,
        help="hybrid deployment: keep this many new instances beside the old ones",
    )
    zdd.add_argument("--complete-cur", "-c", action="store_true", help="turn a hybrid app wholly into the new one")
    zdd.add_argument("--complete-prev", "-p", action="store_true", help="turn a hybrid app wholly into the old one")
    zdd.add_argument(
        "--pre-kill-hook",
        help="executable called with the old app, the task ids to kill and the new app (JSON) before each kill; "
        "a non-zero exit stops the deployment",
    )
    zdd.add_argument("--auth-credentials", help="user:password for Marathon's HTTP basic auth")
    zdd.add_argument("--marathon-auth-credential-file", help="a file holding user:password for Marathon")
    zdd.add_argument("--marathon-ca-cert", help="CA certificate to verify Marathon's HTTPS certificate with")
    return zdd


def from_args(args: argparse.Namespace) -> ZddConfig:
    from mesolite.haproxy_bridge.zdd import InvalidArg, ZddConfig

    credentials = args.auth_credentials
    if args.marathon_auth_credential_file:
        try:
            with open(args.marathon_auth_credential_file) as handle:
                credentials = handle.read().strip()
        except OSError as exc:
            raise InvalidArg(f"--marathon-auth-credential-file: {exc}") from None
    auth = None
    if credentials:
        user, sep, password = credentials.partition(":")
        if not sep:
            raise InvalidArg("Marathon credentials must be user:password")
        auth = (user, password)
    if args.complete_cur and args.complete_prev:
        raise InvalidArg("--complete-cur and --complete-prev exclude each other")
    return ZddConfig(
        marathon=args.marathon,
        marathon_lb=[url for value in args.marathon_lb for url in value.split(",") if url],
        json=args.json,
        dry_run=args.dry_run,
        force=args.force,
        step_delay=args.step_delay,
        initial_instances=args.initial_instances,
        linear_increase=args.linear_increase,
        resume=args.resume,
        max_wait=args.max_wait,
        new_instances=args.new_instances,
        complete_cur=args.complete_cur,
        complete_prev=args.complete_prev,
        pre_kill_hook=args.pre_kill_hook,
        auth=auth,
        ca_cert=args.marathon_ca_cert,
    )


def run(args: argparse.Namespace) -> int:
    """0 deployed, 1 declined at a prompt, zdd.py's codes (2-9) on errors."""
    from mesolite.haproxy_bridge.zdd import Zdd, ZddError

    try:
        return 0 if Zdd(from_args(args)).run() else 1
    except ZddError as exc:
        log.error("%s", exc)
        return exc.exit_status
    except Exception:  # zdd.py's "unknown exception" exit status
        log.exception("zdd failed")
        return 2
