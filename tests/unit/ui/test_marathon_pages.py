"""Marathon's UI actions in-process (no master, so deployments stay pending): each goes through the v2 API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesolite.core.store import MemoryStore
from mesolite.marathon.api import create_app
from mesolite.marathon.service import Marathon, MarathonConfig


@pytest.fixture
def ui() -> Iterator[tuple[Marathon, Any]]:
    marathon = Marathon(MarathonConfig(master="127.0.0.1:1", work_dir="/nonexistent"), MemoryStore())
    marathon.loaded.set()
    yield marathon, create_app(marathon.config, marathon).test_client()


def test_form_creates_the_app_and_the_app_page_shows_it_escaped(ui: tuple[Marathon, Any]) -> None:
    marathon, client = ui
    form = {"mode": "form", "id": "/g/web", "cpus": "0.2", "mem": "32", "instances": "2", "cmd": "echo '<b>x</b>'"}
    created = client.post("/ui/apps/new", data=form)
    assert created.status_code == 302 and created.headers["Location"].endswith("/ui/apps/g/web")
    assert marathon.state.apps["/g/web"]["instances"] == 2
    page = client.get("/ui/apps/g/web").get_data(as_text=True)
    assert "echo &#39;&lt;b&gt;x&lt;/b&gt;&#39;" in page and "<b>x</b>" not in page
    listing = client.get("/").get_data(as_text=True)
    assert 'data-app-id="/g/web"' in listing and "Deploying" in listing
    assert client.get("/ui/apps/nope").status_code == 404


def test_actions_and_the_409_force_retry(ui: tuple[Marathon, Any]) -> None:
    marathon, client = ui
    client.post("/ui/apps/new", data={"mode": "form", "id": "web", "cmd": "sleep 1", "instances": "1"})
    first_version = marathon.state.apps["/web"]["version"]
    # The creation's deployment is still running: the API answers 409, the page offers a Force retry.
    locked = client.post("/ui/apps/web", data={"action": "scale", "instances": "3"})
    page = locked.get_data(as_text=True)
    assert locked.status_code == 409 and "App is locked" in page and 'id="force-retry"' in page
    forced = client.post("/ui/apps/web", data={"action": "scale", "instances": "3", "force": "true"})
    assert forced.status_code == 302 and marathon.state.apps["/web"]["instances"] == 3
    assert client.post("/ui/apps/web", data={"action": "suspend", "force": "true"}).status_code == 302
    assert marathon.state.apps["/web"]["instances"] == 0
    assert client.post("/ui/apps/web", data={"action": "restart", "force": "true"}).status_code == 302
    rollback = client.post("/ui/apps/web", data={"action": "rollback", "version": first_version, "force": "true"})
    assert rollback.status_code == 302 and marathon.state.apps["/web"]["instances"] == 1
    missing = client.post("/ui/apps/web", data={"action": "kill", "task_id": "web.nope"})
    assert missing.status_code == 404 and "Task &#39;web.nope&#39; does not exist" in missing.get_data(as_text=True)
    assert client.post("/ui/apps/web", data={"action": "destroy"}).status_code == 302
    assert "/web" not in marathon.state.apps


def test_deployments_page_stop_and_rollback(ui: tuple[Marathon, Any]) -> None:
    marathon, client = ui
    client.post("/ui/apps/new", data={"mode": "form", "id": "a", "cmd": "sleep 1"})
    (deployment_id,) = marathon.state.deployments
    page = client.get("/ui/deployments").get_data(as_text=True)
    assert f'data-deployment-id="{deployment_id}"' in page and "step 1 of 2" in page
    stopped = client.post("/ui/deployments", data={"deployment_id": deployment_id, "action": "stop"})
    assert stopped.status_code == 302 and not marathon.state.deployments and "/a" in marathon.state.apps
    client.post("/ui/apps/new", data={"mode": "form", "id": "b", "cmd": "sleep 1"})
    (second,) = marathon.state.deployments
    rolled = client.post("/ui/deployments", data={"deployment_id": second, "action": "rollback"})
    assert rolled.status_code == 302 and second not in marathon.state.deployments
    unknown = client.post("/ui/deployments", data={"deployment_id": "nope", "action": "stop"})
    assert unknown.status_code == 404 and "nope" in unknown.get_data(as_text=True)
