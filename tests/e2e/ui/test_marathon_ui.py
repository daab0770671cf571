"""Marathon's web UI in a real browser: the New App form creates an app that becomes Running, the app page scales and
destroys it, API validation errors land next to their fields, a stuck deployment is rolled back from the deployments
tab, and the app's task stdout is read through the master's UI."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.ui.browser import screenshot
from tests.e2e.ui.conftest import Frameworks

pytestmark = pytest.mark.slow

COMMAND = 'echo "<b>started</b> on $PORT0"; sleep 3600'


def test_new_app_scale_sandbox_and_destroy(frameworks: Frameworks, page) -> None:
    marathon = frameworks.start_marathon()
    page.goto(marathon.url + "/")
    assert "No running apps" in page.locator("#apps").inner_text()
    page.click("#new-app")
    page.fill("#f-id", "ui-web")
    page.fill("#f-cpus", "0.1")
    page.fill("#f-mem", "16")
    page.fill("#f-instances", "1")
    page.fill("#f-cmd", COMMAND)
    page.fill("#f-ports", "0")
    page.fill("#f-constraints", "hostname:UNIQUE")
    screenshot(page, "marathon-new-app")
    page.click("#create-app")

    # The app page follows the deployment (the page refreshes itself) until the app is Running.
    page.wait_for_url("**/ui/apps/ui-web")
    page.wait_for_function("document.getElementById('app-status').textContent === 'Running'", timeout=30_000)
    assert page.locator("#app-counts").inner_text().startswith("1 / 1")
    assert page.locator("#config-cmd").inner_text() == COMMAND
    app = requests.get(marathon.url + "/v2/apps/ui-web", timeout=10).json()["app"]
    assert app["constraints"] == [["hostname", "UNIQUE"]] and app["mem"] == 16
    endpoint = page.locator("#app-tasks tbody tr .endpoints").first.inner_text()
    assert endpoint.startswith("127.0.0.1:") and endpoint.split(":")[1].isdigit()

    # hostname:UNIQUE allows one instance on this one agent: Suspend takes it to 0, Scale brings it back.
    page.click("#suspend")
    page.wait_for_function("document.getElementById('app-status').textContent === 'Suspended'", timeout=30_000)
    page.fill("#scale-instances", "1")
    page.click("#scale")
    page.wait_for_function("document.getElementById('app-status').textContent === 'Running'", timeout=30_000)
    screenshot(page, "marathon-app")

    # The apps list shows it Running, with its tasks and instances.
    page.goto(marathon.url + "/")
    row = page.locator("#apps tr[data-app-id='/ui-web']")
    assert row.locator(".tasks-instances").inner_text() == "1 / 1"
    assert row.locator(".status").inner_text() == "Running"

    # Its task's stdout, read through the master's UI; the HTML the task printed is shown as text.
    page.goto(frameworks.master.url + "/")
    task_row = page.locator("#active-tasks tbody tr", has_text="ui-web")
    task_row.locator("a.sandbox").click()
    page.locator("#files tr[data-name=stdout] a.file").click()
    page.wait_for_function("document.getElementById('tail').textContent.includes('<b>started</b> on ')")
    assert page.locator("#tail b").count() == 0

    # Destroy (the confirmation is accepted): back on the list, the app is gone.
    page.goto(marathon.url + "/ui/apps/ui-web")
    page.click("#destroy")
    page.wait_for_url(marathon.url + "/")
    page.wait_for_selector("#apps tr.empty")


def test_scale_up_from_the_app_page(frameworks: Frameworks, page) -> None:
    marathon = frameworks.start_marathon()
    body = {"id": "/ui/scaled", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 1}
    assert requests.post(marathon.url + "/v2/apps", json=body, timeout=10).status_code == 201
    page.goto(marathon.url + "/ui/apps/ui/scaled")
    page.wait_for_function("document.getElementById('app-status').textContent === 'Running'", timeout=30_000)
    page.fill("#scale-instances", "3")
    page.click("#scale")
    page.wait_for_function(
        "document.getElementById('app-counts').textContent.startsWith('3 / 3')"
        " && document.getElementById('app-status').textContent === 'Running'",
        timeout=30_000,
    )
    assert page.locator("#app-tasks tbody tr[data-task-id]").count() == 3
    versions = page.locator("#app-versions tbody tr").count()
    assert versions >= 2
    page.goto(marathon.url + "/")
    assert page.locator("#apps tr[data-app-id='/ui/scaled'] .tasks-instances").inner_text() == "3 / 3"
    screenshot(page, "marathon-apps")
    requests.delete(marathon.url + "/v2/apps/ui/scaled", timeout=10)


def test_validation_errors_and_deployment_rollback(frameworks: Frameworks, page) -> None:
    marathon = frameworks.start_marathon()
    page.goto(marathon.url + "/ui/apps/new")
    page.fill("#f-id", "Bad_<img src=x onerror=window.__pwned=1>")
    page.fill("#f-cmd", "sleep 1")
    page.click("#create-app")
    id_error = page.locator(".field-error[data-field=id]")
    assert "must fully match regular expression" in id_error.inner_text()
    assert page.input_value("#f-id") == "Bad_<img src=x onerror=window.__pwned=1>"
    assert page.locator("img").count() == 0 and page.evaluate("window.__pwned === undefined")

    page.fill("#f-id", "good-id")
    page.fill("#f-cpus", "lots")
    page.click("#create-app")
    assert page.locator(".field-error[data-field=cpus]").inner_text() == "error.expected.jsnumber"
    assert page.locator(".field-error[data-field=id]").count() == 0

    page.fill("#f-cpus", "0.1")
    page.fill("#f-constraints", "hostname:SOMETIMES")
    page.click("#create-app")
    assert "Constraint operator must be one of" in page.locator(".field-error[data-field=constraints]").inner_text()
    screenshot(page, "marathon-validation")

    # JSON mode: the definition goes to the API as written; errors name their JSON path.
    page.click("#json-mode")
    page.fill("#f-json", '{"id": "/json-app", "cmd": "sleep 1", "instances": -2}')
    page.click("#create-app")
    assert "/instances:" in page.locator(".field-error[data-field=json]").inner_text()
    assert requests.get(marathon.url + "/v2/apps", timeout=10).json()["apps"] == []

    # An app too big for any offer stays Waiting in its deployment; Rollback removes it again.
    too_big = {"id": "/too-big", "cmd": "sleep 3600", "cpus": 64, "mem": 16}
    assert requests.post(marathon.url + "/v2/apps", json=too_big, timeout=10).status_code == 201
    page.goto(marathon.url + "/")
    page.wait_for_function(
        "document.querySelector(\"#apps tr[data-app-id='/too-big'] .status\").textContent === 'Waiting'",
        timeout=20_000,
    )
    page.goto(marathon.url + "/ui/deployments")
    row = page.locator("#deployments tbody tr[data-deployment-id]")
    assert "/too-big" in row.inner_text() and "step" in row.locator(".progress-text").inner_text()
    screenshot(page, "marathon-deployments")
    row.locator("button.rollback").click()
    page.wait_for_url(marathon.url + "/ui/deployments")
    page.wait_for_selector("#deployments tr.empty", timeout=20_000)
    assert requests.get(marathon.url + "/v2/apps", timeout=10).json()["apps"] == []
