"""Reading ``/v2/events``: SSE framing (multi-line data, comments, keep-alive blank lines), events delivered as they
arrive on chunked and on close-delimited responses, and several Marathons tried in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mesolite.haproxy_bridge.marathon_client import MarathonClient, MarathonUnavailable
from tests.cluster import free_port

FIRST = b'event: status_update_event\ndata: {"eventType":"status_update_event",\ndata: "taskId":"a"}\n\n'
SECOND = b': a comment\n\nevent: api_post_event\ndata: {"eventType":"api_post_event"}\n\n'


class SSE(BaseHTTPRequestHandler):
    chunked = True
    release = threading.Event()

    def do_GET(self) -> None:
        if not self.path.startswith("/v2/events") or self.headers.get("Accept") != "text/event-stream":
            self.send_error(406)
            return
        self.protocol_version = "HTTP/1.1" if self.chunked else "HTTP/1.0"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if self.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._send(FIRST)
        self.release.wait(10)  # the client must see FIRST before anything more is sent
        self._send(SECOND)
        if self.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[True, False], ids=["chunked", "close-delimited"])
def marathon(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (SSE,), {"chunked": request.param, "release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.release = handler.release  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def test_events_arrive_as_sent(marathon: ThreadingHTTPServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = MarathonClient([dead, f"127.0.0.1:{marathon.server_address[1]}"], timeout=5)
    stream = client.events(("status_update_event", "api_post_event"), read_timeout=10)
    events = iter(stream)
    started = time.monotonic()
    assert next(events) == ("status_update_event", {"eventType": "status_update_event", "taskId": "a"})
    assert time.monotonic() - started < 5  # not held back until more bytes or the end
    marathon.release.set()  # type: ignore[attr-defined]
    assert next(events) == ("api_post_event", {"eventType": "api_post_event"})
    assert list(events) == []
    stream.close()
    assert client.url.endswith(str(marathon.server_address[1]))  # remembered for the next call


def test_no_marathon_answers() -> None:
    client = MarathonClient([f"http://127.0.0.1:{free_port()}"], timeout=2)
    with pytest.raises(MarathonUnavailable):
        client.apps()
    with pytest.raises(MarathonUnavailable):
        client.events(("status_update_event",))
