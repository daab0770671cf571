"""The PyPI ``marathon`` client (marathon-python 0.13.0, strict models) against mesolite marathon, unmodified: the
scenarios of its own integration suite (itests/*.feature) plus scaling, versions, deletion and the queue."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from marathon import MarathonClient
from marathon.exceptions import NotFoundError
from marathon.models import MarathonApp, MarathonHealthCheck
from marathon.models.container import MarathonContainer
from marathon.models.events import MarathonStatusUpdateEvent

from tests.cluster import wait_until
from tests.integration.marathon.conftest import MarathonHarness

TRIVIAL = {"cmd": "sleep 3600", "mem": 16, "cpus": 0.1, "instances": 5}


@pytest.fixture
def client(marathon: MarathonHarness) -> MarathonClient:
    return MarathonClient(marathon.url)


def wait_deployed(client: MarathonClient, app_id: str, timeout: float = 60.0) -> Any:
    """As the itests do: poll the app with embedded tasks until it has no deployments."""
    return wait_until(
        lambda: (app := client.get_app(app_id, embed_tasks=True)) and not app.deployments and app,
        timeout,
        interval=0.2,
        what=f"{app_id} deployed",
    )


def test_server_info_ping_leader_metrics(client: MarathonClient) -> None:
    info = client.get_info()
    assert info.name == "marathon"
    assert tuple(int(p) for p in info.version.split(".")[:2]) >= (1, 4)
    assert info.framework_id and info.elected is True
    assert info.marathon_config.checkpoint is True
    assert info.http_config.http_port
    assert client.get_leader()
    assert client.ping().strip() in (b"pong", b'"pong"')
    assert "gauges" in client.get_metrics()


def test_trivial_app_runs_and_lists_tasks(client: MarathonClient) -> None:
    created = client.create_app("test-trivial-app", MarathonApp(**TRIVIAL))
    assert created.id == "/test-trivial-app"
    # Deployments are visible right after the POST returns (itest "deployments can be read": exactly one).
    deployments = client.list_deployments()
    assert len(deployments) == 1 and deployments[0].affected_apps == ["/test-trivial-app"]
    assert [a.id for a in client.list_apps()] == ["/test-trivial-app"]
    app = wait_deployed(client, "test-trivial-app")
    assert app.tasks_running == 5
    tasks = client.list_tasks("test-trivial-app")
    assert len(tasks) == app.instances == 5
    assert all(t.state == "TASK_RUNNING" and t.host and t.ports for t in tasks)
    assert len(client.list_tasks()) == 5
    endpoints = client.list_endpoints()
    assert len(endpoints) == 5 and all(e.service_port == tasks[0].service_ports[0] for e in endpoints)


def test_complex_docker_app_is_accepted(client: MarathonClient) -> None:
    """itest "Complex apps can be deployed": the definition is stored and fetchable (no Docker needed)."""
    app = MarathonApp(
        cmd="/bin/true",
        mem=16,
        cpus=0.1,
        instances=0,
        uris=["http://example.invalid/stuff.tgz"],
        backoff_factor=2,
        backoff_seconds=1,
        container=MarathonContainer.from_json(
            {
                "type": "DOCKER",
                "docker": {
                    "image": "localhost/fake_docker_url",
                    "network": "BRIDGE",
                    "portMappings": [{"containerPort": 8888, "hostPort": 0, "name": "myport", "protocol": "tcp"}],
                    "parameters": [{"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}],
                },
                "volumes": [{"containerPath": "/etc/stuff", "hostPath": "/etc/stuff", "mode": "RO"}],
            }
        ),
        health_checks=[MarathonHealthCheck(protocol="HTTP", path="/", port_index=0, grace_period_seconds=300)],
    )
    client.create_app("test-complex-app", app)
    fetched = client.get_app("test-complex-app")
    assert fetched.container.docker.image == "localhost/fake_docker_url"
    assert fetched.container.docker.port_mappings[0].container_port == 8888
    assert fetched.container.docker.port_mappings[0].service_port >= 10000
    assert fetched.health_checks[0].protocol == "HTTP"
    assert fetched.backoff_factor == 2


def test_kill_one_task_with_scale_and_a_list_of_tasks(client: MarathonClient) -> None:
    client.create_app("test-trivial-app", MarathonApp(**TRIVIAL))
    app = wait_deployed(client, "test-trivial-app")
    first = app.tasks[0].id
    client.kill_task("test-trivial-app", first, scale=True)
    app = wait_deployed(client, "test-trivial-app")
    assert app.instances == 4 and first not in [t.id for t in app.tasks]
    wait_until(lambda: client.get_app("test-trivial-app").tasks_running == 4, 20, what="4 running")

    ids = [t.id for t in client.get_app("test-trivial-app", embed_tasks=True).tasks][:3]
    killed = client.kill_given_tasks(ids, scale=False)
    assert killed is not False
    # Without scale the instances are replaced: new task ids, still 4 running.
    wait_until(
        lambda: (
            (app := client.get_app("test-trivial-app"))
            and app.tasks_running == 4
            and not set(ids) & {t.id for t in app.tasks}
        ),
        30,
        what="killed tasks replaced",
    )


def test_scale_update_versions_and_delete(client: MarathonClient) -> None:
    client.create_app("scaled", MarathonApp(cmd="sleep 3600", mem=16, cpus=0.1, instances=1))
    wait_deployed(client, "scaled")
    client.scale_app("scaled", instances=3)
    assert wait_deployed(client, "scaled").tasks_running == 3
    client.scale_app("scaled", delta=-1)
    assert wait_deployed(client, "scaled").tasks_running == 2
    versions = client.list_versions("scaled")
    assert len(versions) == 3
    assert client.get_version("scaled", versions[-1]).instances == 1
    client.delete_app("/scaled", force=True)
    wait_until(lambda: client.list_deployments() == [], 30, what="deletion")
    with pytest.raises(NotFoundError):
        client.get_app("scaled")


def test_queue_lists_an_app_that_cannot_be_placed(client: MarathonClient) -> None:
    client.create_app("too-big", MarathonApp(cmd="sleep 3600", mem=16, cpus=64, instances=1))
    queue = wait_until(lambda: client.list_queue(), 20, what="queue entry")
    assert queue[0].app.id == "/too-big" and queue[0].count == 1
    wait_until(
        lambda: any(
            r["reason"] == "InsufficientCpus" and r["declined"] > 0
            for r in client.list_queue()[0].processed_offers_summary["rejectSummaryLastOffers"]
        ),
        20,
        what="InsufficientCpus in the queue",
    )
    deployment = client.list_deployments()[0]
    client.delete_deployment(deployment.id, force=True)
    assert client.list_deployments() == []


def test_event_stream(client: MarathonClient) -> None:
    events: list[Any] = []
    stop = threading.Event()

    def consume() -> None:
        for event in client.event_stream():
            events.append(event)
            if stop.is_set():
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    wait_until(lambda: events, 10, what="event_stream_attached")
    client.create_app("test-trivial-app", MarathonApp(**{**TRIVIAL, "instances": 1}))
    app = wait_deployed(client, "test-trivial-app")
    client.kill_task("test-trivial-app", app.tasks[0].id, scale=True)
    wait_until(
        lambda: any(isinstance(e, MarathonStatusUpdateEvent) and e.task_status == "TASK_KILLED" for e in events),
        20,
        what="status update events",
    )
    stop.set()
    kinds = {e.event_type for e in events}
    assert {"event_stream_attached", "api_post_event", "deployment_info", "deployment_success"} <= kinds
    time.sleep(0.1)
