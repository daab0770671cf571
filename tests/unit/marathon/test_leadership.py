"""Who answers a request: the leader serves it, a standby forwards it (or redirects the event stream), and without
a leader clients get Marathon's 503. The "leader" here is a real HTTP server on loopback that echoes what it got."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from mesolite.core.store import MemoryStore
from mesolite.marathon.api import create_app
from mesolite.marathon.service import Marathon, MarathonConfig
from tests.cluster import free_port

ME = "127.0.0.1:1"


class StubLeadership:
    """An election whose outcome the test sets."""

    def __init__(self, marathon: Marathon, leader: str | None) -> None:
        self.marathon = marathon
        self.host_port = ME
        self.current = leader
        self.abdications = 0

    def leader(self) -> str | None:
        return self.current

    def abdicate(self) -> None:
        self.abdications += 1

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@Request.application
def echo(request: Request) -> Response:
    seen = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string.decode(),
        "body": request.get_data(as_text=True),
        "headers": dict(request.headers),
    }
    return Response(json.dumps(seen), status=201, content_type="application/json", headers={"X-Marathon-Leader": "x"})


@pytest.fixture
def leader_server() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, echo, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def instance(leader: str | None, leading: bool = False) -> tuple[FlaskClient, StubLeadership]:
    marathon = Marathon(MarathonConfig(master="127.0.0.1:1", work_dir="", http_port=1), MemoryStore())
    if leading:
        marathon.loaded.set()
    election = StubLeadership(marathon, leader)
    return create_app(marathon.config, leadership=election).test_client(), election


def test_a_standby_forwards_requests_with_marathons_headers(leader_server: str) -> None:
    client, _ = instance(leader_server)
    response = client.post(
        "/v2/apps?force=true", data='{"id": "a"}', headers={"X-Forwarded-For": "10.0.0.9", "Accept": "*/*"}
    )
    seen: dict[str, Any] = response.get_json()
    assert response.status_code == 201
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/v2/apps", "force=true")
    assert seen["body"] == '{"id": "a"}'
    assert seen["headers"]["X-Marathon-Via"] == f"1.1 {ME}"
    assert seen["headers"]["X-Forwarded-For"] == "10.0.0.9,127.0.0.1"
    assert seen["headers"]["Content-Type"] == "application/json"  # upstream's default for bodies without one
    assert seen["headers"]["Host"] == leader_server
    assert response.headers["X-Marathon-Leader"] == "x"  # the leader's own answer, untouched
    assert response.headers["X-Marathon-Via"] == f"1.1 {ME}"
    # marathon-python's double slash reaches the leader collapsed, query strings intact.
    forwarded = client.delete("/v2/apps//my-app?force=True").get_json()
    assert (forwarded["method"], forwarded["path"], forwarded["query"]) == ("DELETE", "/v2/apps/my-app", "force=True")


def test_a_standby_redirects_the_event_stream_and_answers_about_itself(leader_server: str) -> None:
    client, _ = instance(leader_server)
    events = client.get("/v2/events?event_type=status_update_event", headers={"Accept": "text/event-stream"})
    assert events.status_code == 307
    assert events.headers["Location"] == f"http://{leader_server}/v2/events?event_type=status_update_event"
    assert client.get("/v2/leader").get_json() == {"leader": leader_server}
    assert client.get("/ping").get_data(as_text=True) == "pong"


def test_a_proxying_loop_is_refused(leader_server: str) -> None:
    client, _ = instance(leader_server)
    response = client.get("/v2/apps", headers={"X-Marathon-Via": f"1.1 10.0.0.1:8080, 1.1 {ME}"})
    assert (response.status_code, response.get_json()) == (502, {"message": "Detected proxying loop."})


def test_an_unreachable_leader_is_a_bad_gateway() -> None:
    client, _ = instance(f"127.0.0.1:{free_port()}")
    response = client.get("/v2/apps")
    assert (response.status_code, response.get_json()) == (502, {"message": "Connection to leader refused."})


def test_without_a_leader_requests_wait_then_get_503(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("mesolite.marathon.api.time.sleep", waits.append)
    client, _ = instance(None)
    response = client.get("/v2/apps")
    assert (response.status_code, response.get_json()) == (503, {"message": "Could not determine the current leader"})
    assert waits == [0.25] * 10
    assert (client.get("/v2/leader").status_code, client.get("/v2/leader").get_json()) == (
        404,
        {"message": "There is no leader"},
    )
    # ZooKeeper naming this very instance before it has taken over is no leader to forward to either.
    client, _ = instance(ME)
    assert client.get("/v2/apps").status_code == 503


def test_the_leader_serves_names_itself_and_abdicates() -> None:
    client, election = instance("127.0.0.1:2", leading=True)
    response = client.get("/v2/apps")
    assert (response.status_code, response.get_json()) == (200, {"apps": []})
    assert response.headers["X-Marathon-Leader"] == f"http://{ME}"
    assert "X-Marathon-Via" not in response.headers
    assert client.get("/v2/leader").get_json() == {"leader": ME}
    assert client.get("/v2/info").get_json()["leader"] == ME
    assert client.delete("/v2/leader").get_json() == {"message": "Leadership abdicated"}
    assert election.abdications == 1
