"""Flag values in the forms Mesos operators already write: durations like ``15secs``/``1mins`` and plain numbers."""

from __future__ import annotations

import argparse
import re

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


def parse_duration(text: str) -> float:
    """Seconds from ``"5"``, ``"5secs"``, ``"1mins"``, ``"100ms"``; argparse shows the error with the flag name."""
    match = _DURATION.match(str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration '{text}' (expected e.g. 5secs, 1mins, 100ms)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
