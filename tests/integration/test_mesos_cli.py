"""The unmodified Mesos CLI (PyPI ``avmesos-cli``, configured by its ``MESOS_CLI_CONFIG`` file) against a real master
and agent, and the agent's v1 operator API it rides on (``task exec``: LAUNCH_NESTED_CONTAINER_SESSION, the
RecordIO output, WAIT_CONTAINER)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mesolite.core.protocol import RecordIODecoder, recordio
from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, ServiceProcess
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for

JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@pytest.fixture
def task_cluster(running: Cluster) -> Iterator[tuple[Cluster, SchedulerClient]]:
    """A master, an agent, and a framework running task ``web`` that wrote ``greeting.txt`` in its sandbox."""
    assert running.master is not None
    client = SchedulerClient(running.master.url, FRAMEWORK)
    client.subscribe()
    offer = next_offer(client)
    client.launch(offer, [task("web", offer, "printf 'hello from the sandbox\\n' > greeting.txt; sleep 1000")])
    update_for(client, "web", "TASK_RUNNING")
    try:
        yield running, client
    finally:
        client.close()


def mesos_cli(cluster: Cluster, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert cluster.master is not None
    config = tmp_path / "mesos-cli.toml"
    config.write_text(f'[master]\naddress = "127.0.0.1:{cluster.master.port}"\n')
    # The CLI's launcher script runs `python -m avmesos.cli...` from PATH: put this virtualenv first.
    env = {**os.environ, "MESOS_CLI_CONFIG": str(config), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["mesos-cli", *args], capture_output=True, text=True, env=env, timeout=90, check=False)


def test_mesos_cli_lists_and_execs(task_cluster: tuple[Cluster, SchedulerClient], tmp_path: Path) -> None:
    cluster, client = task_cluster
    agents = mesos_cli(cluster, tmp_path, "agent", "list")
    assert agents.returncode == 0, agents.stderr
    assert cluster.agent_id(cluster.agents[0]) in agents.stdout and "True" in agents.stdout
    frameworks = mesos_cli(cluster, tmp_path, "framework", "list")
    assert frameworks.returncode == 0, frameworks.stderr
    assert client.framework_id in frameworks.stdout and FRAMEWORK["name"] in frameworks.stdout
    tasks = mesos_cli(cluster, tmp_path, "task", "list")
    assert tasks.returncode == 0, tasks.stderr
    assert "web" in tasks.stdout and "TASK_RUNNING" in tasks.stdout

    executed = mesos_cli(cluster, tmp_path, "task", "exec", "web", "cat", "greeting.txt")
    assert (executed.returncode, executed.stdout) == (0, "hello from the sandbox\n"), executed.stderr
    # Run in the task's sandbox, with the task's environment; stderr apart; the exit status comes back.
    probe = mesos_cli(cluster, tmp_path, "task", "exec", "web", "sh", "-c", 'pwd; echo "$MESOS_TASK_ID" >&2; exit 3')
    assert probe.returncode == 3
    assert probe.stdout.strip().endswith("/executors/web/runs/" + probe.stdout.strip().rsplit("/", 1)[-1])
    assert probe.stderr == "web\n"
    missing = mesos_cli(cluster, tmp_path, "task", "exec", "nope", "true")
    assert missing.returncode != 0 and "Unable to find running task 'nope'" in missing.stderr


def agent_call(agent: ServiceProcess, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
    return requests.post(f"{agent.url}/api/v1", data=json.dumps(body), headers=headers or JSON, timeout=30, **kw)


def test_agent_operator_api(task_cluster: tuple[Cluster, SchedulerClient]) -> None:
    cluster, _ = task_cluster
    agent = cluster.agents[0]
    assert agent_call(agent, {"type": "GET_HEALTH"}).json() == {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    assert agent.get("/version").json()["version"] == "1.11.0"
    assert agent.get("/flags").json()["flags"]["port"] == str(agent.port)
    flags = agent_call(agent, {"type": "GET_FLAGS"}).json()["get_flags"]["flags"]
    assert {"name": "port", "value": str(agent.port)} in flags
    state = agent_call(agent, {"type": "GET_STATE"}).json()["get_state"]
    [launched] = state["get_tasks"]["launched_tasks"]
    assert launched["task_id"] == {"value": "web"} and launched["state"] == "TASK_RUNNING"
    container_id = launched["statuses"][0]["container_status"]["container_id"]["value"]
    [container] = agent_call(agent, {"type": "GET_CONTAINERS", "get_containers": {}}).json()["get_containers"][
        "containers"
    ]
    assert container["container_id"] == {"value": container_id} and container["executor_id"] == {"value": "web"}
    [v0] = agent.get("/containers").json()
    assert v0["container_id"] == container_id and v0["framework_id"] == launched["framework_id"]["value"]
    assert agent.get("/containers", params={"executor_id": "web"}).status_code == 400

    sandbox = f"/frameworks/{launched['framework_id']['value']}/executors/web/runs/latest"
    listing = agent_call(agent, {"type": "LIST_FILES", "list_files": {"path": sandbox}}).json()
    names = {os.path.basename(f["path"]): f for f in listing["list_files"]["file_infos"]}
    assert {"stdout", "stderr", "greeting.txt"} <= set(names)
    assert names["greeting.txt"]["size"] == 23 and names["greeting.txt"]["mode"] & 0o100000
    read = agent_call(agent, {"type": "READ_FILE", "read_file": {"path": f"{sandbox}/greeting.txt", "offset": 6}})
    assert read.json()["read_file"] == {"size": 23, "data": base64.b64encode(b"from the sandbox\n").decode()}

    # A session with a TTY: everything is STDOUT, the terminal is there; its output ends the stream.
    session = {
        "type": "LAUNCH_NESTED_CONTAINER_SESSION",
        "launch_nested_container_session": {
            "container_id": {"parent": {"value": container_id}, "value": "debug1"},
            "command": {"value": "tty >/dev/null && echo on-a-tty; echo to-stderr >&2"},
            "container": {"type": "MESOS", "tty_info": {}},
        },
    }
    streaming = {
        "Content-Type": "application/json",
        "Accept": "application/recordio",
        "Message-Accept": "application/json",
    }
    response = agent_call(agent, session, streaming, stream=True)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/recordio"
    records = [r for chunk in response.iter_content(None) for r in RecordIODecoder().feed(chunk)]
    output = b"".join(base64.b64decode(r["data"]["data"]) for r in records if r["type"] == "DATA")
    assert {r["data"]["type"] for r in records if r["type"] == "DATA"} == {"STDOUT"}
    assert output.replace(b"\r\n", b"\n") == b"on-a-tty\nto-stderr\n"
    waited = agent_call(agent, {"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": "debug1"}}})
    assert waited.json()["wait_container"] == {"exit_status": 0}

    # Mesos' checks and texts.
    no_parent = {
        "type": "LAUNCH_NESTED_CONTAINER_SESSION",
        "launch_nested_container_session": {"container_id": {"value": "x"}},
    }
    answer = agent_call(agent, no_parent, streaming)
    assert (
        answer.text == "Failed to validate agent::Call: "
        "Expecting 'launch_nested_container_session.container_id.parent' to be present"
    )
    orphan = json.loads(json.dumps(session))
    orphan["launch_nested_container_session"]["container_id"] = {"parent": {"value": "nope"}, "value": "y"}
    answer = agent_call(agent, orphan, streaming)
    assert (answer.status_code, answer.text) == (400, "Parent container nope does not exist")
    assert agent_call(agent, {"type": "GET_HEALTH"}, streaming).status_code == 406
    attach = {"type": "ATTACH_CONTAINER_OUTPUT", "attach_container_output": {"container_id": {"value": container_id}}}
    answer = agent_call(agent, attach, streaming)
    assert (answer.status_code, answer.text) == (500, "I/O switchboard server was disabled for this container")
    assert agent_call(agent, {"type": "NOPE"}).text == "Failed to validate agent::Call: Expecting 'type' to be present"
    assert requests.get(f"{agent.url}/api/v1", timeout=5).status_code == 405
    assert agent_call(agent, {"type": "GET_HEALTH"}, {"Content-Type": "text/plain"}).status_code == 415
    unknown = agent_call(agent, {"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": "ghost"}}})
    assert (unknown.status_code, unknown.text) == (404, "Container ghost cannot be found")


def test_session_input_arrives_as_it_is_typed(task_cluster: tuple[Cluster, SchedulerClient], tmp_path: Path) -> None:
    """ATTACH_CONTAINER_INPUT as the CLI streams it (chunked, one record per keystroke batch): each chunk reaches the
    process at once, not when the body ends; an empty STDIN record closes stdin. And `task exec -i` with piped
    input."""
    cluster, _ = task_cluster
    agent = cluster.agents[0]
    state = agent_call(agent, {"type": "GET_STATE"}).json()["get_state"]
    container_id = state["get_tasks"]["launched_tasks"][0]["statuses"][0]["container_status"]["container_id"]["value"]
    session_id = {"parent": {"value": container_id}, "value": "typing"}
    launch = {
        "type": "LAUNCH_NESTED_CONTAINER_SESSION",
        "launch_nested_container_session": {"container_id": session_id, "command": {"value": "cat"}},
    }
    streaming = {"Content-Type": "application/json", "Accept": "application/recordio"}
    output = agent_call(agent, launch, streaming, stream=True)
    assert output.status_code == 200  # answered at once, before the command says anything
    seen: list[bytes] = []

    def read() -> None:
        decoder = RecordIODecoder()
        for chunk in output.iter_content(None):
            for record in decoder.feed(chunk):
                if record["type"] == "DATA":
                    seen.append(base64.b64decode(record["data"]["data"]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def record(process_io: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {"type": "CONTAINER_ID", "container_id": session_id}
        if process_io is not None:
            body = {"type": "PROCESS_IO", "process_io": process_io}
        data = recordio({"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": body})
        return b"%x\r\n" % len(data) + data + b"\r\n"

    def stdin(data: bytes) -> bytes:
        return record({"type": "DATA", "data": {"type": "STDIN", "data": base64.b64encode(data).decode()}})

    with socket.create_connection(("127.0.0.1", agent.port), timeout=20) as sock:
        sock.sendall(
            b"POST /api/v1 HTTP/1.1\r\nHost: agent\r\nContent-Type: application/recordio\r\n"
            b"Message-Content-Type: application/json\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(record() + stdin(b"first line\n"))
        deadline = time.monotonic() + 5
        while b"".join(seen) != b"first line\n" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"".join(seen) == b"first line\n"  # while the input body is still open (cat does not buffer)
        sock.sendall(stdin(b"second\n") + stdin(b"") + b"0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    reader.join(10)
    assert b"".join(seen) == b"first line\nsecond\n"
    waited = agent_call(agent, {"type": "WAIT_CONTAINER", "wait_container": {"container_id": {"value": "typing"}}})
    assert waited.json()["wait_container"] == {"exit_status": 0}

    piped = mesos_cli_input(cluster, tmp_path, "hello input\n", "task", "exec", "-i", "web", "tr", "a-z", "A-Z")
    assert (piped.returncode, piped.stdout) == (0, "HELLO INPUT\n"), piped.stderr


def mesos_cli_input(cluster: Cluster, tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert cluster.master is not None
    config = tmp_path / "mesos-cli.toml"
    config.write_text(f'[master]\naddress = "127.0.0.1:{cluster.master.port}"\n')
    env = {**os.environ, "MESOS_CLI_CONFIG": str(config), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        ["mesos-cli", *args], input=text, capture_output=True, text=True, env=env, timeout=90, check=False
    )
