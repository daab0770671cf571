"""The Docker containerizer against podman's Docker-compatible API, with a locally built image (never pulled)."""

from __future__ import annotations

from typing import Any

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster
from tests.integration.agent.conftest import Engine
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for


def docker_task(task_id: str, offer: dict[str, Any], image: str, command: str, **docker: Any) -> dict[str, Any]:
    spec = task(task_id, offer, command)
    spec["container"] = {"type": "DOCKER", "docker": {"image": image, "network": "HOST", **docker}}
    return spec


def test_docker_tasks_print_to_the_sandbox_and_their_exit_code_decides(cluster: Cluster, docker_engine: Engine) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent("--containerizers", "mesos,docker", "--docker_socket", docker_engine.socket)
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        image = docker_engine.image
        bridged = docker_task("bridged", offer, image, "sleep 1000", network="BRIDGE")
        bridged["kill_policy"] = {"grace_period": {"nanoseconds": 500_000_000}}
        client.launch(
            offer,
            [
                docker_task("hello", offer, image, 'echo "hello from $MESOS_SANDBOX"; echo oops >&2; touch out.txt'),
                docker_task("sad", offer, image, "exit 3"),
                docker_task("missing", offer, "localhost/mesolite-missing:1", "true"),
                bridged,
            ],
        )
        finished = update_for(client, "hello", "TASK_FINISHED", timeout=60)
        assert finished["message"] == "Container exited with status 0"
        failed = update_for(client, "sad", "TASK_FAILED", timeout=60)
        assert (failed["reason"], failed["message"]) == (
            "REASON_COMMAND_EXECUTOR_FAILED",
            "Container exited with status 3",
        )
        missing = update_for(client, "missing", "TASK_FAILED", timeout=60)
        assert missing["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "localhost/mesolite-missing:1" in missing["message"]

        running = update_for(client, "bridged", "TASK_RUNNING", timeout=60)
        [address] = running["container_status"]["network_infos"][0]["ip_addresses"]
        assert address["ip_address"] != "127.0.0.1"  # the bridge network's address, not the host's
        client.kill("bridged", offer["agent_id"]["value"])
        assert update_for(client, "bridged", "TASK_KILLED", timeout=60)["state"] == "TASK_KILLED"

        base = f"/frameworks/{client.framework_id}/executors/hello/runs/latest"
        read = agent.get("/files/read", params={"path": f"{base}/stdout", "offset": 0}).json()["data"]
        assert read == "hello from /mnt/mesos/sandbox\n"
        assert agent.get("/files/read", params={"path": f"{base}/stderr", "offset": 0}).json()["data"] == "oops\n"
        # The sandbox is the container's /mnt/mesos/sandbox: what the task wrote there is on the host.
        files = agent.get("/files/browse", params={"path": base}).json()
        assert any(f["path"].endswith("/out.txt") for f in files)
    finally:
        client.close()


def test_an_unreachable_docker_socket_fails_the_task_not_the_agent(cluster: Cluster, tmp_path) -> None:
    master = cluster.start_master()
    agent = cluster.start_agent("--containerizers", "mesos,docker", "--docker_socket", f"unix://{tmp_path}/none.sock")
    client = SchedulerClient(master.url, FRAMEWORK)
    client.subscribe()
    try:
        offer = next_offer(client)
        nowhere = docker_task("nowhere", offer, "localhost/whatever:1", "true")
        client.launch(offer, [nowhere, task("plain", offer, "true")])
        failed = update_for(client, "nowhere", "TASK_FAILED")
        assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "unreachable" in failed["message"] and "none.sock" in failed["message"]
        assert update_for(client, "plain", "TASK_FINISHED")["state"] == "TASK_FINISHED"
        assert agent.get("/health").status_code == 200
    finally:
        client.close()
