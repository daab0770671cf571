"""The app the bridge tests deploy on Marathon: answers every GET with the task that served it, so a test can tell
which backend server HAProxy chose (and the path and Host it received, to see rewriting), and answers
``/redirect?to=<location>`` with a 302 there. ``/health`` is what the Marathon health check probes.

Like any production server it stops gracefully on SIGTERM (what Mesos sends first on a kill): it stops accepting,
finishes the requests it has, then exits. A server that dies in the middle of a response loses that response
whatever the proxy does; the proxy's job is that no connection is refused or dropped on its side.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # http.server's naming
        if self.path.startswith("/redirect?to="):  # a redirect, as an app behind a reverse proxy writes it
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(
            {
                "task": os.environ.get("MESOS_TASK_ID", ""),
                "port": int(sys.argv[1]),
                "host": self.headers.get("Host"),
                "path": self.path,
                "proto": self.headers.get("X-Forwarded-Proto"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = False  # server_close() waits for the requests in progress
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
