"""Parse a ``mesolite`` command line as the real command does, for the tests of each service's ``from_args``."""

from __future__ import annotations

import argparse
import contextlib
import io

from mesolite.cli import build_parser


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def refusal(*argv: str) -> str:
    """What argparse prints when it refuses ``argv`` (exit status 2); fails the test if it is accepted."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(list(argv))
        except SystemExit as exc:
            assert exc.code == 2, f"exit status {exc.code}"
            return err.getvalue()
    raise AssertionError(f"{' '.join(argv)} was accepted")
