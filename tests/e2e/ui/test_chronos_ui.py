"""Chronos' web UI in a real browser: a job created from the form runs (Run now) and shows success, a dependent job
appears in the dependency graph, the list is searchable, edits and deletes work, and Chronos' error for a bad field
is shown next to it."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.ui.browser import screenshot
from tests.e2e.ui.conftest import Frameworks

pytestmark = pytest.mark.slow

COMMAND = 'echo "<i>hello</i> from chronos"'


def test_create_run_graph_search_edit_delete(frameworks: Frameworks, page) -> None:
    chronos = frameworks.start_chronos()
    page.goto(chronos.url + "/")
    assert page.locator("#total").inner_text() == "0"
    page.click("#new-job")
    page.fill("#f-name", "ui-hello")
    page.fill("#f-command", COMMAND)
    page.fill("#f-owner", "ops@example.com")
    page.fill("#f-schedule", "R/2030-01-01T00:00:00Z/PT24H")
    screenshot(page, "chronos-new-job")
    page.click("#save-job")

    page.wait_for_url("**/ui/jobs/ui-hello")
    assert page.locator("#job-command").inner_text() == COMMAND
    assert page.locator("#job-command i").count() == 0
    assert page.locator("#job-status").inner_text() == "fresh"
    page.click("#run-now")
    assert "queued" in page.locator("#action-notice").inner_text()
    # The page refreshes itself until the run has succeeded.
    _wait_for_status(page, chronos, "ui-hello", "success")
    assert page.locator("#job-counts").inner_text().startswith("1 / 0")
    assert page.locator("#job-last-success time").count() == 1
    screenshot(page, "chronos-job")

    # A dependent job from the same form; it shows in the graph as the parent's child.
    page.goto(chronos.url + "/ui/jobs/new")
    page.fill("#f-name", "ui-child")
    page.fill("#f-command", "true")
    page.fill("#f-schedule", "")
    page.fill("#f-parents", "ui-hello")
    page.click("#save-job")
    page.wait_for_url("**/ui/jobs/ui-child")
    assert page.locator("#job-parents").inner_text() == "ui-hello"
    page.goto(chronos.url + "/ui/graph")
    assert page.locator("#graph path.edge[data-parent=ui-hello][data-child=ui-child]").count() == 1
    assert page.locator("#graph g.node.success[data-job=ui-hello]").count() == 1
    screenshot(page, "chronos-graph")

    # The list: most recently run first, searchable as one types.
    page.goto(chronos.url + "/")
    assert page.locator("#total").inner_text() == "2" and page.locator("#failed").inner_text() == "0"
    names = page.locator("#jobs tbody tr[data-job]").evaluate_all("rows => rows.map(r => r.dataset.job)")
    assert names == ["ui-hello", "ui-child"]
    assert page.locator("#jobs tr[data-job=ui-hello] .job-status").inner_text() == "success"
    screenshot(page, "chronos-jobs")
    page.fill("#job-search", "child")
    assert page.locator("#jobs tr[data-job=ui-hello]").is_hidden()
    assert page.locator("#jobs tr[data-job=ui-child]").is_visible()
    page.fill("#job-search", "success")
    assert page.locator("#jobs tr[data-job=ui-child]").is_hidden()

    # Edit keeps the name (the key) and changes the rest; delete from the job page.
    page.goto(chronos.url + "/ui/jobs/ui-hello")
    page.click("#edit-job")
    assert page.locator("#f-name").get_attribute("readonly") is not None
    page.fill("#f-command", "echo edited")
    page.click("#save-job")
    page.wait_for_url("**/ui/jobs/ui-hello")
    assert page.locator("#job-command").inner_text() == "echo edited"
    assert requests.get(chronos.url + "/v1/scheduler/job/ui-hello", timeout=10).json()["owner"] == "ops@example.com"
    page.goto(chronos.url + "/ui/jobs/ui-child")
    page.click("#delete-job")
    page.wait_for_url(chronos.url + "/")
    assert page.locator("#jobs tr[data-job=ui-child]").count() == 0


def test_form_errors_are_shown_next_to_their_field(frameworks: Frameworks, page) -> None:
    chronos = frameworks.start_chronos()
    page.goto(chronos.url + "/ui/jobs/new")
    page.fill("#f-name", "bad <b>name</b>")
    page.fill("#f-command", "true")
    page.click("#save-job")
    name_error = page.locator(".field-error[data-field=name]")
    assert "is invalid" in name_error.inner_text() and "<b>name</b>" in name_error.inner_text()
    assert page.locator("form b").count() == 0
    assert page.input_value("#f-name") == "bad <b>name</b>"

    page.fill("#f-name", "good-name")
    page.fill("#f-schedule", "every tuesday")
    page.click("#save-job")
    assert "Cannot parse schedule" in page.locator(".field-error[data-field=schedule]").inner_text()
    assert page.locator(".field-error[data-field=name]").count() == 0
    screenshot(page, "chronos-validation")

    page.fill("#f-schedule", "")
    page.fill("#f-parents", "no-such-parent")
    page.click("#save-job")
    assert "parent" in page.locator(".field-error[data-field=parents]").inner_text()
    assert requests.get(chronos.url + "/v1/scheduler/jobs", timeout=10).json() == []


def _wait_for_status(page, chronos, name: str, status: str) -> None:
    try:
        page.wait_for_function(f"document.getElementById('job-status').textContent === '{status}'", timeout=30_000)
    except Exception as exc:
        job = requests.get(f"{chronos.url}/v1/scheduler/job/{name}", timeout=10).json()
        raise AssertionError(f"job {name} never showed {status!r}: {job}\n{chronos.log()}") from exc
