"""The master's web UI in a real browser: overview, frameworks, agents, offers, and a task's stdout read through the
master's sandbox proxy while the task keeps writing to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.e2e.ui.browser import screenshot

EVIL_NAME = "<b>bold</b><script>window.__pwned = 1</script>"


def scalar(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def command_task(task_id: str, offer: dict[str, Any], command: str, cpus: float = 0.5) -> dict[str, Any]:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "command": {"value": command},
        "resources": [scalar("cpus", cpus), scalar("mem", 64)],
    }


@pytest.fixture
def framework(running: Cluster) -> Iterator[SchedulerClient]:
    """A framework whose name is HTML, running one long task that writes a line every 0.3 s, and a finished one."""
    assert running.master is not None
    client = SchedulerClient(running.master.url, {"user": "root", "name": EVIL_NAME, "failover_timeout": 60.0})
    client.subscribe()
    try:
        offer = client.next_event("OFFERS", 15)["offers"]["offers"][0]
        ticker = (
            "echo hello-stdout; echo hello-stderr >&2; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done"
        )
        client.launch(offer, [command_task("ticker", offer, ticker), command_task("quick", offer, "true", 0.1)])
        master = running.master
        # Updates are acknowledged as a scheduler must, or each task's later updates would wait behind them.
        wait_until(lambda: _ack_all(client) or _state(master, "ticker") == "TASK_RUNNING", 30, what="ticker to run")
        yield client
    finally:
        client.close()


@pytest.mark.slow
def test_master_pages_and_sandbox_tail_through_the_master(running: Cluster, framework: SchedulerClient, page) -> None:
    master = running.master
    assert master is not None
    # Acknowledge updates so the finished task moves to the completed list as in Mesos.
    wait_until(lambda: _ack_all(framework) or _completed(master), 20, what="'quick' to complete")

    page.goto(master.url + "/")
    assert page.locator("#server").inner_text() == f"127.0.0.1:{master.port}"
    assert page.locator("#cluster-name").inner_text() == "(Unnamed)"
    total = page.locator("#resources tr[data-row=total] td").all_inner_texts()
    assert total[0] == "4" and total[2] == "4 GB"
    ticker_row = page.locator("#active-tasks tr[data-task-id=ticker]")
    assert "RUNNING" in ticker_row.inner_text()
    page.wait_for_selector("#completed-tasks tr[data-task-id=quick]")
    assert "FINISHED" in page.locator("#completed-tasks tr[data-task-id=quick]").inner_text()
    running_count = page.locator("#task-counts tr[data-state=running] td.num").inner_text()
    assert running_count == "1"
    # The allocation chart has a sampled point showing the ticker's 0.5 of 4 CPUs (about 12.5 %).
    samples = requests.get(master.url + "/ui/allocation.json", timeout=10).json()
    assert samples and max(s["cpus"] for s in samples) > 0.1
    assert page.locator("#allocation-chart polyline.series-cpus").get_attribute("points")
    screenshot(page, "master-overview")

    # A task's Sandbox link: the directory listing comes from the agent, through the master.
    ticker_row.locator("a.sandbox").click()
    page.wait_for_selector("#files tr[data-name=stdout]")
    assert page.url.startswith(master.url), "the browser never talks to the agent directly"
    assert page.locator("#files tr[data-name=stderr]").count() == 1
    screenshot(page, "master-sandbox")
    page.locator("#files tr[data-name=stdout] a.file").click()
    tail = page.locator("#tail")
    assert "hello-stdout" in tail.inner_text()
    first = _last_tick(tail.inner_text())
    # The tail view keeps following the file as the task writes to it.
    page.wait_for_function(
        "n => { const m = document.getElementById('tail').textContent.match(/tick-(\\d+)\\s*$/);"
        " return m && parseInt(m[1], 10) >= n + 5; }",
        arg=first,
    )
    assert page.evaluate("document.getElementById('tail').textContent.split('hello-stdout').length") == 2
    screenshot(page, "master-tail")

    # Frameworks: the HTML in the framework's name is shown as text, never interpreted.
    page.goto(master.url + "/ui/frameworks")
    name_cell = page.locator("#frameworks td.framework-name")
    assert name_cell.inner_text() == EVIL_NAME
    assert name_cell.locator("b, script").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    screenshot(page, "master-frameworks")

    page.goto(master.url + "/ui/agents")
    agent_row = page.locator("#agents tbody tr").first
    assert "127.0.0.1" in agent_row.inner_text()
    agent_row.locator("a").first.click()
    assert "ticker" in page.locator("#active-tasks").inner_text()
    screenshot(page, "master-agent")

    page.goto(master.url + "/ui/offers")
    assert page.locator("#offers").is_visible()


def test_sandbox_proxy_stays_inside_the_agents_files_api(running: Cluster, framework: SchedulerClient) -> None:
    master = running.master
    assert master is not None
    agent_id = master.get("/master/slaves").json()["slaves"][0]["id"]
    framework_id = master.get("/master/frameworks").json()["frameworks"][0]["id"]
    query = {"agent_id": agent_id, "framework_id": framework_id, "executor_id": "ticker", "task_id": "ticker"}
    listing = requests.get(f"{master.url}/ui/sandbox", params=query, timeout=10)
    assert listing.status_code == 200 and 'data-name="stdout"' in listing.text
    sandbox = listing.url.split("path=", 1)[1].replace("%2F", "/")
    download = requests.get(
        f"{master.url}/ui/agents/{agent_id}/files/download", params={"path": sandbox + "/stdout"}, timeout=10
    )
    assert download.status_code == 200 and download.text.startswith("hello-stdout\n")
    assert "attachment" in download.headers["Content-Disposition"]
    outside = requests.get(
        f"{master.url}/ui/agents/{agent_id}/files/read", params={"path": "/etc/passwd", "offset": 0}, timeout=10
    )
    assert outside.status_code == 403
    dotdot = requests.get(
        f"{master.url}/ui/agents/{agent_id}/browse", params={"path": "/frameworks/../../../etc"}, timeout=10
    )
    assert dotdot.status_code == 403 and "root:" not in dotdot.text
    unknown = requests.get(f"{master.url}/ui/agents/no-such-agent/files/read", params={"path": "/x"}, timeout=10)
    assert unknown.status_code == 404


def _ack_all(client: SchedulerClient) -> None:
    while True:
        try:
            event = client.next_event("UPDATE", 0.2)
        except TimeoutError:  # drained
            return
        client.acknowledge(event["update"]["status"])


def _state(master: Any, task_id: str) -> str | None:
    tasks = master.get("/master/tasks").json()["tasks"]
    return next((t["state"] for t in tasks if t["id"] == task_id), None)


def _completed(master: Any) -> bool:
    frameworks = master.get("/master/frameworks").json()["frameworks"]
    return any(t["id"] == "quick" for f in frameworks for t in f["completed_tasks"])


def _last_tick(text: str) -> int:
    ticks = re.findall(r"tick-(\d+)", text)
    return int(ticks[-1]) if ticks else 0
