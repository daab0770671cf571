"""The v2 REST API over HTTP against a live Marathon: error shapes, apps, tasks (JSON and text/plain), versions,
rollback, restart, groups with dependencies, deployments, the queue, backoff and the event bus."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import requests

from tests.cluster import free_port, wait_until
from tests.integration.marathon.conftest import MarathonHarness

SLEEP = {"cmd": "sleep 3600", "cpus": 0.1, "mem": 16}


def post(m: MarathonHarness, path: str, body: Any, **kwargs: Any) -> requests.Response:
    return m.request("POST", path, json=body, **kwargs)


def test_errors_have_marathon_shapes(marathon: MarathonHarness) -> None:
    bad = m_post_raw(marathon, "/v2/apps", b"{not json")
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid JSON"
    invalid = post(
        marathon, "/v2/apps", {"id": "ok", "cmd": "x", "cpus": -1, "upgradeStrategy": {"minimumHealthCapacity": 2}}
    )
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["message"] == "Object is not valid"
    assert {d["path"] for d in body["details"]} == {"/cpus", "/upgradeStrategy/minimumHealthCapacity"}
    assert all(isinstance(d["errors"], list) and d["errors"] for d in body["details"])
    assert marathon.get("/v2/apps/nope").json() == {"message": "App '/nope' does not exist"}
    assert marathon.get("/v2/apps/nope").status_code == 404
    assert post(marathon, "/v2/apps", {"id": "dup", **SLEEP}).status_code == 201
    duplicate = post(marathon, "/v2/apps", {"id": "/dup", **SLEEP})
    assert duplicate.status_code == 409 and duplicate.json() == {"message": "An app with id [/dup] already exists."}
    assert marathon.request("DELETE", "/v2/deployments/unknown").status_code == 404
    assert post(marathon, "/v2/tasks/delete", {"ids": ["unknown.task"]}).status_code == 400
    assert marathon.request("DELETE", "/v2/apps/dup/tasks/unknown").json() == {
        "message": "Task 'unknown' does not exist"
    }


def m_post_raw(m: MarathonHarness, path: str, data: bytes) -> requests.Response:
    return m.request("POST", path, data=data, headers={"Content-Type": "application/json"})


def test_create_then_read_with_embeds_and_filters(marathon: MarathonHarness) -> None:
    created = post(
        marathon, "/v2/apps", {"id": "/web/api", "labels": {"tier": "api"}, "ports": [0, 0], **SLEEP, "instances": 2}
    )
    assert created.status_code == 201
    assert created.headers["Location"] == "/v2/apps/web/api"
    assert created.headers["Marathon-Deployment-Id"] == created.json()["deployments"][0]["id"]
    post(marathon, "/v2/apps", {"id": "/web/ui", "labels": {"tier": "ui"}, **SLEEP})
    marathon.wait_deployed()
    listed = marathon.get("/v2/apps").json()["apps"]
    assert {a["id"] for a in listed} == {"/web/api", "/web/ui"}
    assert all("tasks" not in a and a["deployments"] == [] and "tasksRunning" in a for a in listed)
    for prefix in ("apps.", "app.", "group.apps."):
        embedded = marathon.get(f"/v2/apps?embed={prefix}tasks&embed={prefix}taskStats").json()["apps"]
        assert sum(len(a["tasks"]) for a in embedded) == 3 and "taskStats" in embedded[0]
    assert [a["id"] for a in marathon.get("/v2/apps?label=tier==ui").json()["apps"]] == ["/web/ui"]
    assert [a["id"] for a in marathon.get("/v2/apps?label=tier in (api)").json()["apps"]] == ["/web/api"]
    assert [a["id"] for a in marathon.get("/v2/apps?id=api").json()["apps"]] == ["/web/api"]
    assert len(marathon.get("/v2/apps/web/*").json()["*"]) == 2
    api = marathon.app("/web/api")
    assert len(api["tasks"]) == 2 and api["tasksRunning"] == 2 and api["ports"] == [10000, 10001]
    assert sorted(api["ports"]) == sorted(d["port"] for d in api["portDefinitions"])
    # text/plain: app<TAB>servicePort<TAB>host:port... per service port (haproxy-marathon-bridge).
    text = marathon.get("/v2/tasks", headers={"Accept": "text/plain"})
    assert text.headers["Content-Type"].startswith("text/plain")
    lines = [line.split("\t") for line in text.text.splitlines()]
    api_lines = [line for line in lines if line[0] == "web_api"]
    assert [line[1] for line in api_lines] == ["10000", "10001"]
    task_ports = sorted(f"{t['host']}:{t['ports'][0]}" for t in api["tasks"])
    assert sorted(p for p in api_lines[0][2:] if p) == task_ports
    per_app = marathon.get("/v2/apps/web/api/tasks", headers={"Accept": "text/plain"}).text
    assert per_app.startswith("web_api\t10000\t")
    assert len(marathon.get("/v2/tasks?status=running").json()["tasks"]) == 3
    assert marathon.get("/v2/tasks?status=staging").json()["tasks"] == []


def test_update_keeps_service_ports_and_rolls_back(marathon: MarathonHarness) -> None:
    post(marathon, "/v2/apps", {"id": "roll", **SLEEP})
    marathon.wait_deployed()
    first = marathon.app("roll")
    old_task = first["tasks"][0]["id"]
    updated = marathon.request("PUT", "/v2/apps/roll", json={"cmd": "sleep 3601", "ports": [0]})
    assert updated.status_code == 200 and updated.headers["Marathon-Deployment-Id"] == updated.json()["deploymentId"]
    marathon.wait_deployed()
    second = marathon.app("roll")
    assert second["ports"] == first["ports"]  # re-posted zeros keep their ports
    assert second["versionInfo"]["lastConfigChangeAt"] == second["version"] != first["version"]
    assert [t["id"] for t in second["tasks"]] != [old_task]
    versions = marathon.get("/v2/apps/roll/versions").json()["versions"]
    assert versions[0] == second["version"] and versions[-1] == first["version"]
    assert marathon.get(f"/v2/apps/roll/versions/{first['version']}").json()["cmd"] == "sleep 3600"
    marathon.request("PUT", "/v2/apps/roll", json={"version": first["version"]})
    marathon.wait_deployed()
    assert marathon.app("roll")["cmd"] == "sleep 3600"
    # Scaling alone is not a config change; restart is.
    marathon.request("PUT", "/v2/apps/roll?force=TRUE", json={"instances": 2})
    marathon.wait_deployed()
    scaled = marathon.app("roll")
    assert scaled["versionInfo"]["lastScalingAt"] == scaled["version"] != scaled["versionInfo"]["lastConfigChangeAt"]
    before = {t["id"] for t in scaled["tasks"]}
    assert post(marathon, "/v2/apps/roll/restart", {}).status_code == 200
    marathon.wait_deployed()
    after = marathon.app("roll")
    assert len(after["tasks"]) == 2 and not before & {t["id"] for t in after["tasks"]}
    # Another app cannot take the service port this one was given (every node's load balancer listens on it).
    [port] = after["ports"]
    clash = post(marathon, "/v2/apps", {"id": "clash", **SLEEP, "portDefinitions": [{"port": port}]})
    assert clash.status_code == 422
    [detail] = clash.json()["details"]
    assert detail["path"] == "/portDefinitions(0)/port" and f"{port}" in detail["errors"][0]
    assert "/roll" in detail["errors"][0]
    assert marathon.get("/v2/apps/clash").status_code == 404


def test_locked_apps_conflict_and_deployment_cancel_rolls_back(marathon: MarathonHarness) -> None:
    post(marathon, "/v2/apps", {"id": "stuck", **SLEEP, "cpus": 100})  # can never be placed
    locked = marathon.request("PUT", "/v2/apps/stuck", json={"instances": 2})
    assert locked.status_code == 409
    deployment_id = locked.json()["deployments"][0]["id"]
    assert "locked by one or more deployments" in locked.json()["message"]
    details = marathon.get("/v2/deployments?details=true").json()[0]["currentActions"][0]
    wait_until(
        lambda: (
            "InsufficientCpus"
            in (marathon.get("/v2/deployments?details=true").json()[0]["currentActions"][0]["waitingFor"] or "")
        ),
        15,
        what="the deployment to say why it waits",
    )
    assert details["app"] == "/stuck"
    cancel = marathon.request("DELETE", f"/v2/deployments/{deployment_id}")
    assert cancel.status_code == 200 and cancel.json()["deploymentId"] != deployment_id
    marathon.wait_deployed()
    assert marathon.get("/v2/apps/stuck").status_code == 404  # the rollback of a creation removes the app
    post(marathon, "/v2/apps", {"id": "stuck2", **SLEEP, "cpus": 100})
    forced = marathon.request("PUT", "/v2/apps/stuck2?force=true", json={"cpus": 0.1})
    assert forced.status_code == 200
    marathon.wait_deployed()
    assert marathon.app("stuck2")["tasksRunning"] == 1
    dep = marathon.request("PUT", "/v2/apps/stuck2", json={"cpus": 100}).json()["deploymentId"]
    stop = marathon.request("DELETE", f"/v2/deployments/{dep}?force=true")
    assert stop.status_code == 202 and stop.text == ""


def test_group_with_dependencies_deploys_in_order(marathon: MarathonHarness) -> None:
    group = {
        "id": "/shop",
        "groups": [
            {"id": "db", "apps": [{"id": "mysql", **SLEEP}]},
            {"id": "svc", "dependencies": ["/shop/db"], "apps": [{"id": "api", **SLEEP, "instances": 2}]},
        ],
    }
    created = post(marathon, "/v2/groups", group)
    assert created.status_code == 201
    steps = marathon.get("/v2/deployments").json()[0]["steps"]
    assert [[a["app"] for a in s["actions"]] for s in steps[1:]] == [["/shop/db/mysql"], ["/shop/svc/api"]]
    marathon.wait_deployed()
    db_started = marathon.app("/shop/db/mysql")["tasks"][0]["startedAt"]
    api_staged = min(t["stagedAt"] for t in marathon.app("/shop/svc/api")["tasks"])
    assert db_started <= api_staged  # the dependent was launched only once its dependency ran
    tree = marathon.get("/v2/groups/shop").json()
    assert [g["id"] for g in tree["groups"]] == ["/shop/db", "/shop/svc"]
    assert tree["groups"][1]["dependencies"] == ["/shop/db"]
    assert post(marathon, "/v2/groups", group).status_code == 409
    dry = marathon.request("PUT", "/v2/groups/shop?dryRun=true", json={"scaleBy": 2}).json()
    assert {a["app"] for s in dry["steps"] for a in s["actions"]} == {"/shop/db/mysql", "/shop/svc/api"}
    marathon.request("PUT", "/v2/groups/shop", json={"scaleBy": 2})
    marathon.wait_deployed()
    assert marathon.app("/shop/svc/api")["instances"] == 4
    versions = marathon.get("/v2/groups/shop/versions").json()
    assert len(versions) == 2
    assert marathon.get(f"/v2/groups/shop/versions/{versions[-1]}").json()["groups"][1]["apps"][0]["instances"] == 2
    marathon.request("PUT", f"/v2/groups/shop/versions/{versions[-1]}")  # marathon-python's rollback_group
    marathon.wait_deployed()
    assert marathon.app("/shop/svc/api")["instances"] == 2
    assert marathon.request("DELETE", "/v2/groups/shop").status_code == 200
    marathon.wait_deployed()
    assert marathon.get("/v2/apps").json()["apps"] == []
    bad = post(marathon, "/v2/groups", {"id": "/x", "groups": [{"id": "/elsewhere"}]})
    assert bad.status_code == 422 and "not child of" in bad.json()["details"][0]["errors"][0]


def test_failing_app_backs_off_and_reports_last_failure(marathon: MarathonHarness) -> None:
    post(marathon, "/v2/apps", {"id": "crash", "cmd": "exit 3", "cpus": 0.1, "mem": 16, "backoffSeconds": 5})
    app = wait_until(
        lambda: (a := marathon.get("/v2/apps/crash").json()["app"]).get("lastTaskFailure") and a, 20, what="failure"
    )
    assert app["lastTaskFailure"]["state"] == "TASK_FAILED" and app["lastTaskFailure"]["appId"] == "/crash"
    queue = wait_until(lambda: marathon.get("/v2/queue").json()["queue"], 10, what="queued")
    assert queue[0]["delay"]["timeLeftSeconds"] > 0 and queue[0]["delay"]["overdue"] is False
    assert marathon.request("DELETE", "/v2/queue/crash/delay").status_code == 204
    wait_until(
        lambda: (q := marathon.get("/v2/queue").json()["queue"]) and q[0]["delay"]["timeLeftSeconds"] >= 0,
        5,
        what="the crashing app queued again",
    )


def test_event_stream_filters_and_http_callbacks(marathon: MarathonHarness) -> None:
    assert marathon.get("/v2/events").status_code == 406
    received: list[dict[str, Any]] = []
    stream = requests.get(
        marathon.url + "/v2/events?event_type=deployment_success&event_type=status_update_event",
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    )
    lines = stream.iter_lines()

    def read() -> None:
        try:
            for line in lines:
                if line.startswith(b"data:"):
                    received.append(json.loads(line[5:]))
        except (requests.RequestException, AttributeError, ValueError):
            pass  # the test closed the stream

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.3)
    post(marathon, "/v2/apps", {"id": "evented", **SLEEP})
    wait_until(lambda: any(e["eventType"] == "deployment_success" for e in received), 20, what="deployment_success")
    assert {e["eventType"] for e in received} <= {"deployment_success", "status_update_event"}
    assert any(e["eventType"] == "status_update_event" and e["taskStatus"] == "TASK_RUNNING" for e in received)
    assert all("timestamp" in e for e in received)
    # Killing the task goes through TASK_KILLING (Marathon declares TASK_KILLING_STATE), so a load balancer
    # following the event stream drains it before it is gone.
    [running] = marathon.running("/evented")
    assert marathon.request("DELETE", f"/v2/apps/evented/tasks/{running['id']}?scale=true").status_code == 200
    wait_until(
        lambda: any(e.get("taskStatus") == "TASK_KILLED" and e.get("taskId") == running["id"] for e in received),
        20,
        what="TASK_KILLED",
    )
    states = [e["taskStatus"] for e in received if e.get("taskId") == running["id"]]
    assert states.index("TASK_KILLING") < states.index("TASK_KILLED")
    # HTTP callbacks are off unless --event_subscriber http_callback (upstream's 400).
    assert post(marathon, "/v2/eventSubscriptions?callbackUrl=http://127.0.0.1:1/x", None).status_code == 400


class _Collector(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        _Collector.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_http_callback_subscribers_persist_and_receive(marathon_cluster: MarathonHarness) -> None:
    m = marathon_cluster
    m.stop()
    m.start("--event_subscriber", "http_callback")
    server = HTTPServer(("127.0.0.1", free_port()), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/events"
    try:
        assert post(m, f"/v2/eventSubscriptions?callbackUrl={url}", None).json()["eventType"] == "subscribe_event"
        assert m.get("/v2/eventSubscriptions").json() == {"callbackUrls": [url]}
        assert m.get("/v2/info").json()["event_subscriber"]["http_endpoints"] == [url]
        post(m, "/v2/apps", {"id": "called-back", **SLEEP})
        wait_until(lambda: any(e["eventType"] == "api_post_event" for e in _Collector.received), 15, what="callback")
        m.stop()
        m.start()
        assert m.get("/v2/eventSubscriptions").status_code == 400  # flag gone; subscribers were persisted though
        m.stop()
        m.start("--event_subscriber", "http_callback")
        assert m.get("/v2/eventSubscriptions").json() == {"callbackUrls": [url]}
        m.request("DELETE", f"/v2/eventSubscriptions?callbackUrl={url}")
        assert m.get("/v2/eventSubscriptions").json() == {"callbackUrls": []}
    finally:
        server.shutdown()
        m.clean()
        m.stop()
        m.start()
