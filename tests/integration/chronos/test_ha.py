"""Several ``mesolite chronos --zk`` instances with a real ZooKeeper, master and agent: one leads, the others proxy
to it, and when the leader is killed the standby takes over without losing or repeating a run."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import chronos as chronos_client
import pytest
import requests
from kazoo.client import KazooClient

from tests.cluster import ServiceProcess, wait_until
from tests.integration.chronos.conftest import ChronosHA

PERIOD_S = 6


def job_of(instance: ServiceProcess, name: str) -> dict[str, Any]:
    response = instance.get(f"/v1/scheduler/job/{name}")
    response.raise_for_status()
    return response.json()


def due_times(tasks: list[dict[str, Any]]) -> list[int]:
    """The scheduled time of each task, from Chronos' task id ``ct:<due ms>:<attempt>:<job>:<args>``."""
    return [int(task["id"].split(":")[1]) for task in tasks]


def test_one_leader_the_standby_proxies_and_chronos_python_works_through_it(chronos_ha: ChronosHA) -> None:
    leader = wait_until(chronos_ha.leading, timeout=40, what="a leading chronos")
    standby = next(i for i in chronos_ha.instances if i is not leader)
    for instance in (leader, standby):
        for prefix in ("/scheduler", "/v1/scheduler"):
            assert instance.get(f"{prefix}/leader").json() == {"leader": f"127.0.0.1:{leader.port}"}
    assert len(chronos_ha.frameworks()) == 1

    client = chronos_client.connect(f"127.0.0.1:{standby.port}")
    # ("async" too: chronos-python's legacy mode, used by another module, adds it to the class-wide required fields.)
    job = {"name": "ha-proxied", "command": "echo proxied", "owner": "ops@example.com", "disabled": False,
           "async": False, "schedule": "R/2100-01-01T00:00:00Z/P1D"}  # fmt: skip
    client.add(job)
    assert [j["name"] for j in client.search(name="ha-prox")] == ["ha-proxied"]
    client.run("ha-proxied")
    wait_until(lambda: job_of(standby, "ha-proxied")["successCount"] == 1, timeout=30, what="the run through the proxy")
    assert [entry["status"] for entry in client.job_stat("ha-proxied")["taskStatHistory"]] == ["Success"]
    assert "node,ha-proxied,success,idle" in client.scheduler_graph().splitlines()
    assert "jobs.run.success.ha-proxied" in client.metrics()["counters"]
    # Errors come back as the leader gave them, and the web UI of the standby shows the leader's jobs.
    with pytest.raises(chronos_client.ChronosAPIError):
        client.add({**job, "name": "bad name"})
    bad = requests.post(f"{standby.url}/v1/scheduler/iso8601", json={**job, "name": "bad name"}, timeout=10)
    assert bad.status_code == 400 and "'bad name'" in bad.json()["message"]
    assert "ha-proxied" in standby.get("/").text
    # A request that already went through one proxy is not forwarded again (no loops between instances).
    looped = standby.get("/v1/scheduler/jobs", headers={"X-Mesolite-Forwarded-By": "127.0.0.1:1"})
    assert looped.status_code == 503 and "already forwarded" in looped.json()["message"]
    assert leader.get("/v1/scheduler/jobs", headers={"X-Mesolite-Forwarded-By": "127.0.0.1:1"}).ok

    # The job is in ZooKeeper, where the next leader will find it.
    zk = KazooClient(hosts=chronos_ha.zookeeper.hosts)
    zk.start(timeout=10)
    try:
        stored = zk.get("/chronos/state/jobs/ha-proxied")[0]
        assert b'"successCount":1' in stored
        candidates = [c for c in zk.get_children("/chronos/candidate") if c.startswith("json.info_")]
        assert len(candidates) == 2
    finally:
        zk.stop()
        zk.close()

    client.delete("ha-proxied")
    assert "ha-proxied" not in {j["name"] for j in client.list()}


@pytest.mark.slow
def test_killing_the_leader_between_runs_neither_loses_nor_repeats_a_run(chronos_ha: ChronosHA) -> None:
    leader = wait_until(chronos_ha.leading, timeout=40, what="a leading chronos")
    standby = next(i for i in chronos_ha.instances if i is not leader)
    (framework,) = chronos_ha.frameworks()
    start = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Concurrent, so that a slow agent (runs overlapping) cannot drop an occurrence: every due time must run once.
    tick = {"name": "ha-tick", "command": "echo tick", "schedule": f"R/{start}/PT{PERIOD_S}S", "concurrent": True}
    assert requests.post(f"{standby.url}/v1/scheduler/iso8601", json=tick, timeout=10).status_code == 204
    # A long run in progress when the leader dies must be adopted, not relaunched or forgotten.
    slow = {"name": "ha-long", "command": "sleep 8", "schedule": "R/2100-01-01T00:00:00Z/P1D"}
    assert requests.post(f"{standby.url}/v1/scheduler/iso8601", json=slow, timeout=10).status_code == 204
    wait_until(lambda: job_of(leader, "ha-tick")["successCount"] >= 1, timeout=30, what="a first scheduled run")
    assert requests.put(f"{leader.url}/v1/scheduler/job/ha-long", timeout=10).status_code == 204
    wait_until(
        lambda: [t["state"] for t in chronos_ha.tasks("ha-long")] == ["TASK_RUNNING"], timeout=30, what="ha-long"
    )

    # Kill the leader right after a run has finished: the next one is due a period later.
    done = job_of(leader, "ha-tick")["successCount"]
    wait_until(lambda: job_of(leader, "ha-tick")["successCount"] > done, timeout=2 * PERIOD_S, what="a run")
    before = job_of(leader, "ha-tick")["successCount"]
    killed_at = time.monotonic()
    leader.stop(signal.SIGKILL)

    assert wait_until(chronos_ha.leading, timeout=30, what="the standby to lead") is standby
    print(f"failover: {time.monotonic() - killed_at:.1f}s from kill -9 to the standby leading and subscribed")
    assert [(f["id"], f["active"]) for f in chronos_ha.frameworks()] == [(framework["id"], True)]

    wait_until(lambda: job_of(standby, "ha-tick")["successCount"] >= before + 2, timeout=60, what="two more runs")
    wait_until(lambda: job_of(standby, "ha-long")["successCount"] == 1, timeout=30, what="the adopted run to finish")
    # The killed instance comes back as a standby and proxies to the new leader.
    restarted = chronos_ha.start_instance(port=leader.port)
    assert wait_until(lambda: chronos_ha.leader_of(restarted), timeout=20) == f"127.0.0.1:{standby.port}"
    through_restarted = chronos_client.connect(f"127.0.0.1:{restarted.port}")
    ticked = next(j for j in through_restarted.list() if j["name"] == "ha-tick")
    counted = ticked["successCount"]

    tasks = chronos_ha.tasks("ha-tick")
    dues = due_times(tasks)
    assert len(dues) == len(set(dues)), f"a run happened twice: {dues}"
    # No occurrence missing, including the one that fell due while no instance led (it runs, late, once).
    gaps = {b - a for a, b in zip(sorted(dues), sorted(dues)[1:], strict=False)}
    assert gaps == {PERIOD_S * 1000}, f"a run was lost: {sorted(dues)}"
    assert len(dues) >= before + 2
    finished = [t for t in tasks if t["state"] == "TASK_FINISHED"]
    # Every finished task counted exactly once (a run may have started since the job was read: not yet counted).
    assert counted <= len(finished) <= counted + 1
    assert [t["state"] for t in chronos_ha.tasks("ha-long")] == ["TASK_FINISHED"]
    assert job_of(restarted, "ha-long")["successCount"] == 1

    for name in ("ha-tick", "ha-long"):
        through_restarted.delete(name)
