"""Health check semantics: Mesos defaults, grace period, consecutive failures, changes only."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mesolite.agent.health import HealthChecker, HealthCheckSpec


def test_defaults_and_legacy_form() -> None:
    spec = HealthCheckSpec.parse({"command": {"value": "true"}})
    assert (spec.type, spec.delay, spec.interval, spec.timeout, spec.consecutive_failures, spec.grace_period) == (
        "COMMAND",
        15.0,
        10.0,
        20.0,
        3,
        10.0,
    )
    with pytest.raises(ValueError):
        HealthCheckSpec.parse({"type": "HTTP", "http": {}})
    with pytest.raises(ValueError):
        HealthCheckSpec.parse({"type": "GRPC"})


def _run(results: list[bool], **overrides: Any) -> tuple[list[tuple[bool, str]], list[str]]:
    check = {"type": "COMMAND", "command": {"value": "x"}, "delay_seconds": 0, "interval_seconds": 0.01}
    spec = HealthCheckSpec.parse({**check, "grace_period_seconds": 0, "consecutive_failures": 2, **overrides})
    outcomes = iter(results)
    changes: list[tuple[bool, str]] = []
    failures: list[str] = []
    done = threading.Event()

    def runner(command: dict[str, Any], timeout: float) -> tuple[bool, str]:
        try:
            return next(outcomes), "detail"
        except StopIteration:
            done.set()
            return True, "detail"

    def failed(message: str) -> None:
        failures.append(message)
        done.set()

    checker = HealthChecker(spec, "127.0.0.1", runner, lambda h, d: changes.append((h, d)), failed)
    checker.start("t")
    assert done.wait(5)
    checker.stop()
    return changes, failures


def test_only_changes_are_reported_and_consecutive_failures_kill() -> None:
    changes, failures = _run([True, True, False, True, False, False])
    assert [h for h, _ in changes] == [True, False, True, False]
    assert failures == ["COMMAND health check 'x' failed 2 consecutive times: detail"]


def test_failures_within_the_grace_period_are_ignored_until_a_success() -> None:
    changes, failures = _run([False, False, False, True], grace_period_seconds=30)
    assert [h for h, _ in changes] == [True] and failures == []
