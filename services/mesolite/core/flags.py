"""Flag values in the forms operators of Mesos, Marathon and Chronos already write, shared by every service's CLI.

Each parser is an argparse ``type``: it returns the parsed value or raises ``ArgumentTypeError``, which argparse
reports as ``argument --flag: <why>`` with exit status 2, so a bad value stops the start naming the flag instead of
surfacing later as a wrong behaviour. ``FlagError`` is the same kind of refusal for a combination of flags.
"""

from __future__ import annotations

import argparse
import re

from mesolite.core.attributes import AttributeParseError, Attributes
from mesolite.core.resources import ResourceError, Resources
from mesolite.core.zk import parse_zk_url


class FlagError(ValueError):
    """Flags that are each valid but cannot work together (e.g. neither ``--work_dir`` nor ``--zk``); the CLI
    reports it as a usage error of the subcommand, like argparse's own."""


_DURATION = re.compile(
    r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|ms|secs|sec|s|mins|min|m|hrs|hr|h|days|day|d|weeks|week|w)?\s*$"
)
_UNIT_SECONDS = {
    None: 1.0,
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_BYTE_UNITS = {"TB": 1024**4, "GB": 1024**3, "MB": 1024**2, "KB": 1024, "B": 1}
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_duration(text: str) -> float:
    """Seconds from ``"5"``, ``"5secs"``, ``"1mins"``, ``"100ms"``; argparse shows the error with the flag name."""
    match = _DURATION.match(str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration '{text}' (expected e.g. 5secs, 1mins, 100ms)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def optional_duration(text: str) -> float | None:
    """A duration that may be switched off (``--offer_timeout none``): None for ``""``, ``none`` or ``0``."""
    return None if text in ("", "none", "0") else parse_duration(text)


def parse_bool(text: str) -> bool:
    """Mesos' booleans (``true``/``false``, ``1``/``0``; Ansible's ``yes``/``no`` too), any case. Anything else is
    refused rather than read as false, so a typo cannot silently turn a feature off."""
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean '{text}' (expected true or false)")


def parse_bytes(text: str) -> int:
    """Mesos byte sizes: ``2GB``, ``512MB``, ``100KB``, ``10B`` or a plain number of bytes."""
    for unit, factor in _BYTE_UNITS.items():
        if text.upper().endswith(unit):
            try:
                size = int(float(text[: -len(unit)]) * factor)
            except ValueError:
                break
            if size >= 0:
                return size
            break
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"invalid size '{text}' (expected e.g. 2GB, 512MB)")


def parse_resources(text: str) -> Resources:
    """``--resources``: Mesos' text form (``cpus:2;mem:1024;ports:[31000-32000]``), inline or as ``file://path``."""
    if text.startswith("file://"):
        path = text[len("file://") :]
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read '{path}': {exc.strerror}") from None
    try:
        return Resources.parse(text)
    except ResourceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_attributes(text: str) -> Attributes:
    """``--attributes``: ``rack:r1;level:10;zones:[1-3]``."""
    try:
        return Attributes.parse(text)
    except AttributeParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_weights(text: str) -> dict[str, float]:
    """``--weights``: ``role1=2.0,role2=3.5``; a weight must be a positive number, as in Mesos."""
    weights: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        role, _, weight = item.partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not role.strip() or not value > 0:
            raise argparse.ArgumentTypeError(f"invalid weight '{item}' (expected role=weight, weight > 0)")
        weights[role.strip()] = value
    return weights


def parse_zk_url_flag(text: str) -> str:
    """``--zk``: ``zk://host:port[,host:port...]/path`` (credentials before the hosts allowed), kept as written."""
    try:
        parse_zk_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_master(text: str) -> str:
    """``--master`` of agents and frameworks: ``host:port``, ``http://host:port`` or a ``zk://`` URL to follow the
    elected leader; a ``zk://`` URL is checked here, the rest when the master is first reached."""
    if text.startswith(("zk://", "zoo://")):
        return parse_zk_url_flag(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("empty master (expected host:port or zk://host:port/path)")
    return text


def parse_port(text: str) -> int:
    """A TCP/UDP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port '{text}' (expected 1-65535)")
    return port


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid count '{text}' (expected a whole number >= 0)")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"invalid value '{text}' (expected a number >= 0)")
    return value
