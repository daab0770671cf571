"""Images in the Mesos containerizer, driven as a framework does: ``ContainerInfo{type: MESOS, mesos.image}`` tasks
on an agent with ``--image_providers docker --isolation filesystem/linux,docker/runtime,namespaces/pid``, images
from a directory of ``docker save`` tarballs and from a registry with basic auth; what the task sees (the image's
files, its own pid namespace, the image's config merged with the CommandInfo), bad input, and an agent restart."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mesolite.core.scheduler_client import SchedulerClient
from tests.cluster import Cluster, ServiceProcess, wait_until
from tests.integration.agent.images_fixtures import (
    ImageDir,
    Registry,
    image_container,
    no_mounts_below,
    sandbox_of,
    wait_file,
)
from tests.integration.test_scheduler_api import FRAMEWORK, next_offer, task, update_for

IMAGES = ("--isolation", "filesystem/linux,docker/runtime,namespaces/pid", "--image_providers", "docker")
CHECKPOINTED = {**FRAMEWORK, "name": "images", "checkpoint": True}
# What the task reports about the world it sees, into its sandbox (not a word of it from the host).
LOOK_AROUND = (
    "cat /etc/image-release > $MESOS_SANDBOX/release; "
    "ls /removed /emptied > $MESOS_SANDBOX/layers; "
    "test -e /etc/debian_version && echo host > $MESOS_SANDBOX/leak; "
    "echo $$ > $MESOS_SANDBOX/mypid; "
    "tr '\\0' ' ' < /proc/1/cmdline > $MESOS_SANDBOX/pid1; "
    "ps -o pid,user,args > $MESOS_SANDBOX/ps; "
    "id -u > $MESOS_SANDBOX/uid; "
    'echo "$MESOS_SANDBOX $IMAGE_VAR $OVERRIDDEN $(pwd)" > $MESOS_SANDBOX/env'
)


TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"}


def final(client: SchedulerClient, task_id: str, timeout: float = 60.0) -> dict:
    """The task's terminal update (whatever came before it acknowledged on the way)."""
    while True:
        status = update_for(client, task_id, timeout=timeout)
        if status["state"] in TERMINAL:
            return status


def _agent(cluster: Cluster, *flags: str) -> ServiceProcess:
    cluster.start_master()
    return cluster.start_agent(*IMAGES, *flags)


def _client(cluster: Cluster, framework: dict | None = None) -> SchedulerClient:
    assert cluster.master is not None
    client = SchedulerClient(cluster.master.url, framework or FRAMEWORK)
    client.subscribe()
    return client


@pytest.mark.parametrize("backend", ["overlay", "copy"])
def test_task_runs_in_the_image_with_its_own_pid_namespace_as_its_user(
    cluster: Cluster, image_dir: ImageDir, backend: str
) -> None:
    agent = _agent(cluster, "--docker_registry", image_dir.path, "--image_provisioner_backend", backend)
    client = _client(cluster, {**FRAMEWORK, "user": "nobody"})
    try:
        offer = next_offer(client)
        env = {"variables": [{"name": "OVERRIDDEN", "value": "command"}]}
        command = {"value": LOOK_AROUND, "environment": env}
        launched = task("look", offer, container=image_container("busybox:latest"))
        client.launch(offer, [{**launched, "command": command}])
        finished = final(client, "look")
        assert finished["state"] == "TASK_FINISHED", finished
        sandbox = sandbox_of(agent.work_dir, "look")
        assert (sandbox / "release").read_text() == "mesolite busybox test image\n"
        # The second layer's whiteouts: /removed/gone deleted, /emptied opaque (only its new file).
        assert (sandbox / "layers").read_text().split() == ["/emptied:", "new", "/removed:", "kept"]
        assert not (sandbox / "leak").exists()
        assert (sandbox / "mypid").read_text().strip() == "2"  # pid 1 is the container init
        assert "mesolite.agent.container_init" in (sandbox / "pid1").read_text()
        assert len((sandbox / "ps").read_text().splitlines()) <= 4  # header, init, shell, ps: not the host's
        assert (sandbox / "uid").read_text().strip() == "65534"
        # Agent env < image Env < CommandInfo env; the working directory is the sandbox.
        assert (sandbox / "env").read_text().split() == [
            "/mnt/mesos/sandbox",
            "from-image",
            "command",
            "/mnt/mesos/sandbox",
        ]
    finally:
        client.close()
    wait_until(lambda: not list(Path(agent.work_dir, "provisioner", "containers").iterdir()), what="rootfs removal")
    assert no_mounts_below(agent.work_dir)


def test_image_entrypoint_and_cmd_merge_with_the_command_info(cluster: Cluster, image_dir: ImageDir) -> None:
    agent = _agent(cluster, "--docker_registry", image_dir.path)
    client = _client(cluster)
    try:
        offer = next_offer(client, 30)
        image = image_container("argv:latest")
        no_command = {"shell": False}
        user_args = {"shell": False, "arguments": ["user1", "user2"]}
        cmd_only = {"shell": False, "arguments": ["-c", 'echo "$0" > $MESOS_SANDBOX/args']}
        client.launch(
            offer,
            [
                {**task("image-cmd", offer), "container": image, "command": no_command},
                {**task("user-args", offer), "container": image, "command": user_args},
                {**task("cmd-only", offer), "container": image_container("busybox:latest"), "command": cmd_only},
            ],
        )
        for task_id in ("image-cmd", "user-args", "cmd-only"):
            finished = final(client, task_id)
            assert finished["state"] == "TASK_FINISHED", finished
        assert (sandbox_of(agent.work_dir, "image-cmd") / "args").read_text() == "from-cmd\n"
        assert (sandbox_of(agent.work_dir, "user-args") / "args").read_text() == "user1 user2\n"
        assert (sandbox_of(agent.work_dir, "cmd-only") / "args").read_text() == "/bin/sh\n"
        offer = next_offer(client, 30)
        bare = {"shell": False}
        client.launch(offer, [{**task("nothing", offer), "container": image_container("busybox:latest"),
                               "command": {**bare, "value": ""}}])  # fmt: skip
        finished = final(client, "nothing")  # busybox' Cmd: /bin/sh, which reads an empty stdin
        assert finished["state"] == "TASK_FINISHED", finished
    finally:
        client.close()


def test_registry_pull_with_basic_auth_from_docker_config(cluster: Cluster, registry: Registry) -> None:
    agent = _agent(cluster, "--docker_config", registry.docker_config)
    client = _client(cluster)
    try:
        offer = next_offer(client)
        command = {"value": "cat /etc/image-release > $MESOS_SANDBOX/release"}
        image = image_container(f"{registry.host}/busybox:latest", cached=False)
        client.launch(offer, [{**task("pulled", offer), "container": image, "command": command}])
        finished = final(client, "pulled")
        assert finished["state"] == "TASK_FINISHED", finished
        assert (sandbox_of(agent.work_dir, "pulled") / "release").read_text() == "mesolite busybox test image\n"
        stored = Path(agent.work_dir, "store", "docker")
        assert f"{registry.host}/busybox:latest" in (stored / "storedImages").read_text()
        assert len(list((stored / "layers").iterdir())) == 2  # digest-addressed, unpacked once
        flags = agent.get("/state").json()["flags"]
        assert flags["image_providers"] == "docker"
        assert flags["isolation"].endswith("docker/runtime,filesystem/linux,namespaces/pid")
        assert "docker_config" not in flags  # it may hold credentials
    finally:
        client.close()


def test_bad_images_fail_the_task_with_the_reason_and_leave_nothing_behind(
    cluster: Cluster, image_dir: ImageDir, registry: Registry
) -> None:
    agent = _agent(cluster, "--docker_registry", image_dir.path, "--docker_config", registry.config_with("wrong"))
    client = _client(cluster)
    expected = {
        "unknown": ("nope:latest", "Failed to find archive for image 'nope:latest'"),
        "corrupt": ("broken:latest", "Failed to read the archive"),
        "refused": (f"{registry.host}/busybox:latest", "refused the credentials"),
    }
    try:
        offer = next_offer(client)
        client.launch(
            offer,
            [
                {**task(task_id, offer, "true"), "container": image_container(image)}
                for task_id, (image, _) in expected.items()
            ],
        )
        for task_id, (_image, reason) in expected.items():
            failed = final(client, task_id)
            assert failed["state"] == "TASK_FAILED", failed
            assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
            assert failed["message"].startswith("Failed to launch container: Failed to pull image"), failed
            assert reason in failed["message"], failed
    finally:
        client.close()
    store = Path(agent.work_dir, "store", "docker")
    assert not list((store / "staging").iterdir())
    assert not list((store / "layers").iterdir())  # the corrupt archive's first layer is not kept half-done
    assert not (store / "storedImages").exists()
    assert not Path(agent.work_dir, "provisioner", "containers").exists() or not list(
        Path(agent.work_dir, "provisioner", "containers").iterdir()
    )


def test_image_task_survives_an_agent_restart_and_can_be_killed(cluster: Cluster, image_dir: ImageDir) -> None:
    agent = _agent(cluster, "--docker_registry", image_dir.path)
    agent_id = cluster.agent_id(agent)
    client = _client(cluster, CHECKPOINTED)
    try:
        offer = next_offer(client)
        command = {"value": "echo started > $MESOS_SANDBOX/started; exec sleep 1000"}
        client.launch(offer, [{**task("survivor", offer), "container": image_container("busybox:latest"),
                               "command": command}])  # fmt: skip
        running = update_for(client, "survivor", "TASK_RUNNING", timeout=60)
        pid = int(running["container_status"]["executor_pid"])
        wait_file(sandbox_of(agent.work_dir, "survivor") / "started")
        agent.stop(signal.SIGKILL)
        assert os.path.exists(f"/proc/{pid}")
        agent.start()
        wait_until(lambda: cluster.agent_id(agent) == agent_id, what="re-registration under the same id")
        [executor] = [
            e for f in agent.get("/state").json()["frameworks"] for e in f["executors"] if e["id"] == "survivor"
        ]
        assert executor["tasks"][0]["state"] == "TASK_RUNNING"
        assert list(Path(agent.work_dir, "provisioner", "containers").iterdir())  # its rootfs stays
        client.kill("survivor", agent_id)
        killed = update_for(client, "survivor", "TASK_KILLED", timeout=30)
        assert killed["message"] == "Command terminated with signal Terminated"
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="the container to end")
    finally:
        client.close()
    wait_until(lambda: not list(Path(agent.work_dir, "provisioner", "containers").iterdir()), what="rootfs removal")
    assert no_mounts_below(agent.work_dir)
