"""Fixtures for the browser tests: one Chromium per test session, a fresh page (and context) per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

from tests.cluster import Cluster, ServiceProcess, free_port, wait_until
from tests.e2e.ui.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (see .ci/run)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    page = context.new_page()
    # Destructive buttons ask for confirmation; a user says yes.
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


class Frameworks:
    """A master and one agent, plus Marathon and/or Chronos as real ``mesolite`` processes on free ports."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cluster = Cluster(base)
        self.marathon: ServiceProcess | None = None
        self.chronos: ServiceProcess | None = None

    @property
    def master(self) -> ServiceProcess:
        assert self.cluster.master is not None
        return self.cluster.master

    def start_cluster(self) -> None:
        self.cluster.start_master()
        self.cluster.start_agent()

    def start_marathon(self) -> ServiceProcess:
        port = free_port()
        args = ["marathon", "--master", f"127.0.0.1:{self.master.port}", "--http_port", str(port)]
        args += ["--work_dir", str(self.base / "marathon"), "--hostname", "127.0.0.1"]
        self.marathon = ServiceProcess("marathon", args, port, self.base).start("/ping")
        wait_until(lambda: self.framework_active("marathon"), 30, what="marathon to subscribe")
        return self.marathon

    def start_chronos(self) -> ServiceProcess:
        port = free_port()
        args = ["chronos", "--master", f"127.0.0.1:{self.master.port}", "--http_port", str(port)]
        args += ["--work_dir", str(self.base / "chronos"), "--hostname", "127.0.0.1", "--failure_retry", "300"]
        self.chronos = ServiceProcess("chronos", args, port, self.base).start("/ping")
        wait_until(lambda: self.framework_active("chronos"), 30, what="chronos to subscribe")
        return self.chronos

    def framework_active(self, name: str) -> bool:
        frameworks = self.master.get("/master/frameworks").json()["frameworks"]
        return any(f["name"] == name and f["active"] for f in frameworks)

    def stop(self) -> None:
        for service in (self.chronos, self.marathon):
            if service is not None:
                service.stop()
        self.cluster.stop()


@pytest.fixture
def frameworks(tmp_path: Path) -> Iterator[Frameworks]:
    env = Frameworks(tmp_path)
    try:
        env.start_cluster()
        yield env
    finally:
        env.stop()
