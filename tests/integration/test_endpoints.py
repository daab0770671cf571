"""The read endpoints tools depend on (Mesos-DNS, the web UI, monitoring), in Mesos' shapes, and the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import requests

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, wait_until
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for


def test_master_state_and_friends(cluster: Cluster) -> None:
    master = cluster.start_master("--cluster", "demo")
    agent = cluster.start_agent("--attributes", "rack_id:2;os:ubuntu", "--hostname", "node1.local")
    client = SchedulerClient(master.url, {**FRAMEWORK, "webui_url": "http://ui"})
    framework_id = client.subscribe()
    offer = next_offer(client)
    web = task("web", offer, "sleep 1000")
    web["resources"].append({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}})
    web["discovery"] = {"visibility": "FRAMEWORK", "name": "web"}
    web["labels"] = {"labels": [{"key": "tier", "value": "front"}]}
    client.launch(offer, [web])
    update_for(client, "web", "TASK_RUNNING")

    state = master.get("/master/state").json()
    for alias in ("/state", "/master/state.json", "/state.json"):
        assert master.get(alias).json()["id"] == state["id"]
    assert state["leader"] == f"master@127.0.0.1:{master.port}" == state["pid"]
    assert state["leader_info"]["port"] == master.port and state["cluster"] == "demo"
    [slave] = state["slaves"]
    assert slave["pid"] == f"slave(1)@127.0.0.1:{agent.port}" and slave["hostname"] == "node1.local"
    assert slave["attributes"] == {"rack_id": 2.0, "os": "ubuntu"}
    assert slave["resources"] == {"cpus": 4.0, "mem": 4096.0, "disk": 10000.0, "gpus": 0.0, "ports": "[31000-31100]"}
    assert slave["used_resources"]["ports"] == "[31000-31001]" and slave["used_resources"]["cpus"] == 0.1
    [framework] = state["frameworks"]
    assert (framework["id"], framework["webui_url"], framework["role"]) == (framework_id, "http://ui", "*")
    [web_task] = framework["tasks"]
    assert web_task["slave_id"] == slave["id"] and web_task["framework_id"] == framework_id
    assert web_task["resources"]["ports"] == "[31000-31001]"
    assert web_task["discovery"]["name"] == "web" and web_task["labels"]["labels"][0]["key"] == "tier"
    running = web_task["statuses"][-1]
    assert running["state"] == "TASK_RUNNING"
    ips = running["container_status"]["network_infos"][0]["ip_addresses"]
    assert ips == [{"protocol": "IPv4", "ip_address": "127.0.0.1"}]

    jsonp = master.get("/master/state", params={"jsonp": "cb"})
    assert jsonp.text.startswith("cb({") and jsonp.headers["Content-Type"].startswith("text/javascript")

    summary = master.get("/master/state-summary").json()
    assert summary["slaves"][0]["TASK_RUNNING"] == 1 and summary["frameworks"][0]["TASK_RUNNING"] == 1
    assert "tasks" not in summary["frameworks"][0]
    assert [t["id"] for t in master.get("/master/tasks").json()["tasks"]] == ["web"]
    assert master.get("/master/tasks", params={"framework_id": "other"}).json() == {"tasks": []}
    assert master.get("/master/tasks", params={"limit": "x"}).status_code == 400
    assert master.get("/master/slaves", params={"slave_id": slave["id"]}).json()["slaves"][0]["id"] == slave["id"]
    assert master.get("/master/frameworks").json()["frameworks"][0]["id"] == framework_id
    metrics = master.get("/metrics/snapshot").json()
    assert metrics["master/tasks_running"] == 1.0 and metrics["master/cpus_used"] == 0.1
    assert metrics["master/elected"] == 1.0 and metrics["master/frameworks_connected"] == 1.0
    redirect = requests.get(f"{master.url}/master/redirect", allow_redirects=False, timeout=5)
    assert redirect.status_code == 307 and redirect.headers["Location"] == f"//127.0.0.1:{master.port}"
    assert requests.get(f"{master.url}/version", timeout=5).json()["version"] == "1.11.0"
    assert master.get("/master/health").status_code == 200 and master.get("/health").status_code == 200

    # The agent's own view, as the web UI reads it through slave(1).
    agent_state = agent.get("/slave(1)/state").json()
    assert agent_state == {**agent.get("/state").json(), "start_time": agent_state["start_time"]}
    assert agent_state["id"] == slave["id"] and agent_state["attributes"] == {"rack_id": 2.0, "os": "ubuntu"}
    [executor] = agent_state["frameworks"][0]["executors"]
    assert executor["id"] == "web" and executor["tasks"][0]["state"] == "TASK_RUNNING"
    directory = executor["directory"]
    assert os.path.isdir(directory) and "/executors/web/runs/" in directory
    listing = agent.get("/files/browse", params={"path": directory}).json()
    assert {os.path.basename(e["path"]) for e in listing} >= {"stdout", "stderr"}
    assert agent.get("/files/read", params={"path": directory + "/../../../../../../.."}).status_code == 403
    assert agent.get("/files/read", params={"path": "/etc/passwd"}).status_code == 403
    [stats] = agent.get("/monitor/statistics").json()
    assert stats["executor_id"] == "web" and stats["statistics"]["processes"] >= 1
    assert stats["statistics"]["cpus_limit"] == 0.1 and stats["statistics"]["mem_rss_bytes"] > 0
    client.close()


def _agent_cli(work_dir: str, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mesolite.cli", "agent", "--master", "127.0.0.1:1", "--work_dir", work_dir]
    return subprocess.run([*command, *flags], capture_output=True, text=True, timeout=30)


def test_malformed_resources_are_refused_naming_the_token(tmp_path) -> None:
    result = _agent_cli(str(tmp_path), "--resources", "cpus:2;mem=128")
    assert result.returncode == 2
    assert "mem=128" in result.stderr and "--resources" in result.stderr
    result = _agent_cli(str(tmp_path), "--attributes", "rack")
    assert result.returncode == 2 and "rack" in result.stderr


def test_mesolite_up_runs_a_master_and_two_agents(tmp_path) -> None:
    """``make demo``: the master on 5050 and agents on 5051 and 5052, all stopped by Ctrl-C."""
    for port in (5050, 5051, 5052):
        assert not _listening(port), f"port {port} is busy; the demo needs it"
    demo = subprocess.Popen(
        [sys.executable, "-m", "mesolite.cli", "up", "--work_dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        lines = [demo.stdout.readline() for _ in range(4)] if demo.stdout else []
        assert lines[0].split() == ["master", "http://127.0.0.1:5050"]
        assert lines[1].split() == ["agent1", "http://127.0.0.1:5051"]
        assert lines[2].split() == ["agent2", "http://127.0.0.1:5052"]
        state = wait_until(
            lambda: (
                (s := requests.get("http://127.0.0.1:5050/master/state", timeout=2).json())["activated_slaves"] == 2
                and s
            ),
            timeout=30,
        )
        assert sorted(s["pid"] for s in state["slaves"]) == ["slave(1)@127.0.0.1:5051", "slave(1)@127.0.0.1:5052"]
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
    for port in (5050, 5051, 5052):
        wait_until(lambda p=port: not _listening(p), timeout=10, what=f"port {port} to close")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
