"""``wait_until``, the one polling helper of the integration tests: a bug fails at once with its reason, only "not
yet" is waited out, and a timeout says what was awaited and what was last seen."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.cluster import ServiceProcess, wait_until


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


def test_returns_the_first_truthy_value_after_transient_errors() -> None:
    answers: list[object] = [requests.ConnectionError("refused"), _http_error(503), None, {"leader": "m1"}]

    def predicate() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(predicate, timeout=5, interval=0.001) == {"leader": "m1"}


@pytest.mark.parametrize("error", [KeyError("frameworkId"), IndexError("list index out of range"), _http_error(500)])
def test_a_bug_in_the_predicate_fails_at_once(error: Exception) -> None:
    def predicate() -> object:
        raise error

    started = time.monotonic()
    with pytest.raises(type(error)):
        wait_until(predicate, timeout=30)
    assert time.monotonic() - started < 1


def test_the_timeout_names_what_was_awaited_and_the_last_value() -> None:
    with pytest.raises(TimeoutError, match=r"after 0.05s waiting for two agents; last value: \[\]"):
        wait_until(lambda: [], timeout=0.05, what="two agents")
    values = iter(range(1000))
    with pytest.raises(TimeoutError) as raised:
        wait_until(lambda: next(values) < 0, timeout=0.05, interval=0.001, what="two agents")
    assert "waiting for two agents; last value: False" in str(raised.value)
    with pytest.raises(TimeoutError, match=r"last error: ConnectionError\('refused'\)"):
        wait_until(lambda: (_ for _ in ()).throw(requests.ConnectionError("refused")), timeout=0.05, what="up")


def test_a_service_that_died_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    service = ServiceProcess("crashing", [], 1, tmp_path)
    (tmp_path / "crashing.log").write_text("Traceback: the reason\n")
    service.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    service.process.wait()
    ServiceProcess._running.add(service)
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="crashing exited with 3:\nTraceback: the reason"):
            wait_until(lambda: False, timeout=30)
    finally:
        ServiceProcess._running.discard(service)
    assert time.monotonic() - started < 1
    assert wait_until(lambda: True, timeout=1)  # reported once, then forgotten


def test_a_stopped_service_is_not_a_failure(tmp_path: Path) -> None:
    service = ServiceProcess("stopped", [], 1, tmp_path)
    service.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    ServiceProcess._running.add(service)
    service.stop()
    assert service.process.poll() is not None
    assert wait_until(lambda: "ok", timeout=1) == "ok"
