"""The master's pages rendered in-process (no browser): everything the API returns is escaped."""

from __future__ import annotations

from typing import Any

from mesolite.core.resources import Resources
from mesolite.core.store import MemoryStore
from mesolite.master import calls
from mesolite.master.api import create_app
from mesolite.master.state import Master, MasterConfig
from mesolite.ui.master import resource_table, task_counts, task_rows


class NoLink:
    def send(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def make() -> tuple[Master, Any]:
    master = Master(MasterConfig(cluster="<i>prod</i>"), MemoryStore(), NoLink())  # type: ignore[arg-type]
    master.register_agent(
        calls.parse_registration(
            {
                "agent_info": {
                    "hostname": "host-<script>",
                    "ip": "127.0.0.1",
                    "port": 5051,
                    "resources": Resources.parse("cpus:4;mem:4096;disk:1000").to_v1(),
                    "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "<b>r1</b>"}}],
                }
            }
        )
    )
    master.subscribe(
        calls.parse_subscribe(
            {
                "type": "SUBSCRIBE",
                "subscribe": {"framework_info": {"user": "u", "name": "<img src=x onerror=alert(1)>"}},
            }
        )
    )
    return master, create_app(master.config, master).test_client()


def test_pages_render_and_escape_names() -> None:
    master, client = make()
    for path in ("/", "/ui/frameworks", "/ui/agents", "/ui/offers", f"/ui/agents/{next(iter(master.agents))}"):
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        assert "<img src=x" not in page and "<script>" not in page.split("</head>")[1] and "<b>r1" not in page
    overview = client.get("/").get_data(as_text=True)
    assert "&lt;i&gt;prod&lt;/i&gt;" in overview
    frameworks = client.get("/ui/frameworks").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in frameworks
    agents = client.get("/ui/agents").get_data(as_text=True)
    assert "host-&lt;script&gt;" in agents and "&lt;b&gt;r1&lt;/b&gt;" in agents
    assert client.get("/ui/static/ui/ui.js").status_code == 200
    assert client.get("/ui/frameworks/nope").status_code == 404
    assert client.get("/ui/agents/nope/browse?path=/x").status_code == 404


def test_overview_numbers_come_from_the_state() -> None:
    state = {
        "slaves": [
            {
                "id": "a1",
                "hostname": "h1",
                "resources": {"cpus": 4, "mem": 4096, "disk": 100, "gpus": 0},
                "used_resources": {"cpus": 1.5, "mem": 1024},
                "offered_resources": {"cpus": 2.5, "mem": 1024},
            }
        ],
        "frameworks": [
            {
                "name": "f",
                "tasks": [
                    {
                        "id": "t1",
                        "name": "t1",
                        "state": "TASK_RUNNING",
                        "framework_id": "f1",
                        "slave_id": "a1",
                        "executor_id": "",
                        "statuses": [
                            {"state": "TASK_STARTING", "timestamp": 10.0},
                            {"state": "TASK_RUNNING", "timestamp": 11.0},
                        ],
                    }
                ],
                "completed_tasks": [
                    {
                        "id": "t0",
                        "name": "t0",
                        "state": "TASK_FAILED",
                        "framework_id": "f1",
                        "slave_id": "a1",
                        "executor_id": "e0",
                        "statuses": [{"state": "TASK_FAILED", "timestamp": 5.0}],
                    }
                ],
            }
        ],
        "completed_frameworks": [],
    }
    table = resource_table(state["slaves"])
    assert table["total"]["cpus"] == 4 and table["used"]["cpus"] == 1.5 and table["offered"]["cpus"] == 2.5
    assert table["idle"]["cpus"] == 0 and table["idle"]["mem"] == 2048
    counts = dict(task_counts(state))
    assert counts["Running"] == 1 and counts["Failed"] == 1 and counts["Lost"] == 0
    active = task_rows(state, completed=False)
    assert active[0]["started"] == 11.0 and active[0]["host"] == "h1" and active[0]["executor_id"] == "t1"
    done = task_rows(state, completed=True)
    assert done[0]["executor_id"] == "e0" and done[0]["stopped"] == 5.0 and done[0]["started"] is None
