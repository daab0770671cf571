"""Secrets from Marathon to the task: ``secrets`` + env and file references (``--enable_features secrets``) become
Mesos REFERENCE secrets the agent resolves from ``--secrets_dir``; the value reaches the task and nothing else (no
API, no log, no file of any service's work directory). Without the feature Marathon refuses with its 422."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import requests

from tests.cluster import Cluster, wait_until
from tests.integration.agent.images_fixtures import ImageDir, sandbox_of, wait_file
from tests.integration.agent.test_images import IMAGES
from tests.integration.marathon.conftest import MarathonHarness

SECRET_APP = {
    "id": "/with-secrets",
    "cmd": 'echo -n "$DB_PW" | sha256sum > $MESOS_SANDBOX/env.sha; sha256sum < pwfile > $MESOS_SANDBOX/file.sha; '
    "exec sleep 1000",
    "container": {
        "type": "MESOS",
        "docker": {"image": "busybox:latest"},
        "volumes": [{"containerPath": "pwfile", "secret": "pw"}],
    },
    "secrets": {"pw": {"source": "db/password"}},
    "env": {"DB_PW": {"secret": "pw"}},
    "cpus": 0.1,
    "mem": 32,
}


def _details(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Object is not valid"
    return {d["path"]: d["errors"] for d in body["details"]}


def test_marathon_refuses_secrets_without_the_feature_and_dangling_references(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    for name in ("plain", "featured"):
        (tmp_path / name).mkdir()
    plain = MarathonHarness(cluster, tmp_path / "plain")
    featured = MarathonHarness(cluster, tmp_path / "featured")
    try:
        cluster.start_master()
        plain.start()
        details = _details(plain.request("POST", "/v2/apps", json=SECRET_APP))
        assert details["/secrets"] == ["Feature secrets is not enabled. Enable with --enable_features secrets)"]
        assert details["/env"] == [
            "use of secret-references in the environment requires the secrets feature to be enabled"
        ]
        assert plain.get("/v2/apps").json()["apps"] == []  # nothing was started without its secrets
        featured.start("--enable_features", "secrets")
        assert featured.get("/v2/info").json()["marathon_config"]["features"] == ["secrets"]
        dangling = {**SECRET_APP, "env": {"DB_PW": {"secret": "nope"}}}
        details = _details(featured.request("POST", "/v2/apps", json=dangling))
        assert details["/env/DB_PW"] == ["references an undefined secret named 'nope'"]
    finally:
        plain.stop()
        featured.stop()
        cluster.stop()


def test_secrets_reach_the_task_and_nowhere_else(tmp_path: Path, image_dir: ImageDir) -> None:
    value = f"s3cr3t-{secrets.token_hex(16)}"
    store = tmp_path / "secret-store"
    (store / "db").mkdir(parents=True)
    os.chmod(store, 0o700)
    (store / "db" / "password").write_text(value)
    os.chmod(store / "db" / "password", 0o600)
    services = tmp_path / "services"
    cluster = Cluster(services)
    services.mkdir()
    marathon = MarathonHarness(cluster, services)
    try:
        master = cluster.start_master()
        agent = cluster.start_agent(*IMAGES, "--docker_registry", image_dir.path, "--secrets_dir", str(store))
        marathon.start("--enable_features", "secrets")
        assert marathon.request("POST", "/v2/apps", json=SECRET_APP).status_code == 201
        wait_until(lambda: marathon.running("/with-secrets"), 60, what="the app's task to run")
        [task] = marathon.running("/with-secrets")
        sandbox = sandbox_of(agent.work_dir, task["id"])
        digest = hashlib.sha256(value.encode()).hexdigest()
        assert wait_file(sandbox / "env.sha").split()[0] == digest
        assert wait_file(sandbox / "file.sha").split()[0] == digest
        answers = [
            agent.get("/state").text,
            master.get("/state").text,
            marathon.get("/v2/apps?embed=apps.tasks").text,
            marathon.get("/v2/tasks").text,
        ]
        assert not [a for a in answers if value in a]
        assert '"db/password"' in agent.get("/state").text  # the reference travels, not the value
        leaks = [
            str(path)
            for path in services.rglob("*")
            if path.is_file() and not path.is_symlink() and value.encode() in path.read_bytes()
        ]
        assert leaks == []
    finally:
        marathon.stop()
        cluster.stop()
