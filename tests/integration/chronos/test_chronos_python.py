"""The PyPI ``chronos-python`` client, unmodified, against ``mesolite chronos`` with a real master and agent."""

from __future__ import annotations

import chronos as chronos_client
import pytest
import requests

from tests.cluster import wait_until
from tests.integration.chronos.conftest import ChronosCluster

FAR_FUTURE = "R/2100-01-01T00:00:00Z/P1D"


def test_add_list_search_run_update_and_delete(chronos: ChronosCluster) -> None:
    client = chronos_client.connect(f"127.0.0.1:{chronos.port}")
    job = {
        "async": False,
        "command": "echo first",
        "epsilon": "PT1M",
        "name": "py-client-job",
        "owner": "ops@example.com",
        "disabled": False,
        "schedule": FAR_FUTURE,
    }
    client.add(job)
    client.add({**job, "name": "py-client-other", "command": "echo other"})
    assert {"py-client-job", "py-client-other"} <= {j["name"] for j in client.list()}
    assert [j["name"] for j in client.search(name="py-client-j")] == ["py-client-job"]
    assert [j["name"] for j in client.search(command="ECHO OTHER")] == ["py-client-other"]

    client.update({**job, "command": "echo updated-$CHRONOS_JOB_NAME"})
    listed = next(j for j in client.list() if j["name"] == "py-client-job")
    assert listed["command"] == "echo updated-$CHRONOS_JOB_NAME" and listed["owner"] == "ops@example.com"

    client.run("py-client-job")
    wait_until(
        lambda: next(j for j in client.list() if j["name"] == "py-client-job")["successCount"] == 1,
        timeout=30,
        what="the run-now to succeed",
    )
    assert wait_until(lambda: "updated-py-client-job\n" in chronos.sandbox_outputs("py-client-job"), timeout=10)
    stat = client.job_stat("py-client-job")
    assert stat["histogram"]["count"] == 1
    assert [entry["status"] for entry in stat["taskStatHistory"]] == ["Success"]
    assert "node,py-client-job,success,idle" in client.scheduler_graph().splitlines()
    assert any(row["jobNameLabel"] == "py-client-job" for row in client.scheduler_stat_median())
    assert "counters" in client.metrics()

    client.delete("py-client-job")
    client.delete("py-client-other")
    assert not {"py-client-job", "py-client-other"} & {j["name"] for j in client.list()}


def test_names_with_spaces_are_rejected_with_the_message(chronos: ChronosCluster) -> None:
    client = chronos_client.connect(f"127.0.0.1:{chronos.port}")
    with pytest.raises(chronos_client.ChronosAPIError):
        client.add({"name": "my job", "command": "true", "owner": "", "disabled": False, "schedule": FAR_FUTURE})
    # What the client saw (it retries the next server, then gives up): the 400 and its message.
    response = chronos.post_job({"name": "my job", "command": "true", "schedule": FAR_FUTURE})
    assert response.status_code == 400 and "'my job'" in response.json()["message"]
    assert "my job" not in {j["name"] for j in client.list()}


def test_legacy_client_mode_uses_the_2x_paths_and_put_for_updates(chronos: ChronosCluster) -> None:
    client = chronos_client.connect(f"127.0.0.1:{chronos.port}", scheduler_api_version=None)
    job = {
        "async": False,
        "command": "true",
        "name": "py-legacy",
        "owner": "",
        "disabled": False,
        "schedule": FAR_FUTURE,
    }
    client.add(job)
    client.update({**job, "command": "echo legacy"})
    child = {key: value for key, value in job.items() if key != "schedule"}
    client.add({**child, "name": "py-legacy-child", "parents": ["py-legacy"]})
    assert requests.get(f"{chronos.url}/scheduler/job/py-legacy", timeout=10).json()["command"] == "echo legacy"
    assert "link,py-legacy,py-legacy-child" in client.scheduler_graph()
    client.delete("py-legacy-child")
    client.delete("py-legacy")
