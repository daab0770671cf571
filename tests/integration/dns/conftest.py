"""Fixtures for Mesos-DNS: a canned-state master, ``mesolite dns`` as a real process, and real ``dig``."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import ServiceProcess, free_port, wait_until


class FakeMaster:
    """Serves a state document as ``/master/state`` (and a matching ``/master/state-summary``); tests edit
    ``doc`` to make tasks come and go, or stop it to play an unreachable master."""

    def __init__(self, doc: dict[str, Any], port: int | None = None) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.doc = copy.deepcopy(doc)
        self.doc["leader"] = f"master@{self.address}"
        self.requests: Counter[str] = Counter()
        self.failing = False  # answer 503: a master that is down, without freeing the port for others to take
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                path = self.path.split("?")[0]
                owner.requests[path] += 1
                if owner.failing:
                    self.send_error(503)
                    return
                with owner._lock:
                    if path == "/master/state":
                        body: Any = owner.doc
                    elif path == "/master/state-summary":
                        body = owner.summary()
                    else:
                        self.send_error(404)
                        return
                    data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def summary(self) -> dict[str, Any]:
        frameworks = []
        for framework in self.doc.get("frameworks", []):
            counts = Counter(task.get("state") for task in framework.get("tasks", []))
            frameworks.append({"id": framework.get("name"), "name": framework.get("name"), **counts})
        return {
            "slaves": [{"id": s["id"], "pid": s.get("pid")} for s in self.doc.get("slaves", [])],
            "frameworks": frameworks,
        }

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            change(self.doc)

    def start(self) -> FakeMaster:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Dig:
    status: str
    flags: set[str]
    answer: list[list[str]] = field(default_factory=list)
    authority: list[list[str]] = field(default_factory=list)
    additional: list[list[str]] = field(default_factory=list)
    output: str = ""

    def values(self, rtype: str | None = None) -> set[str]:
        return {" ".join(r[4:]) for r in self.answer if rtype is None or r[3] == rtype}


def dig(port: int, name: str, rtype: str = "A", *options: str, server: str = "127.0.0.1") -> Dig:
    """Real dig against ``server:port``; one try, so a lost answer is a failure, not a retry."""
    result = subprocess.run(
        ["dig", f"@{server}", "-p", str(port), name, rtype, "+tries=1", "+time=3", *options],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = result.stdout
    header = re.search(r"status: (\w+)", out)
    flags = re.search(r";; flags: ([a-z ]*);", out)
    parsed = Dig(header.group(1) if header else "NONE", set(flags.group(1).split()) if flags else set(), output=out)
    section: list[list[str]] | None = None
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            section = parsed.answer
        elif line.startswith(";; AUTHORITY SECTION"):
            section = parsed.authority
        elif line.startswith(";; ADDITIONAL SECTION"):
            section = parsed.additional
        elif not line.strip() or line.startswith(";"):
            if not line.strip():
                section = None
        elif section is not None:
            section.append(line.split())
    return parsed


class DNSProcess(ServiceProcess):
    """``mesolite dns`` with a config.json written for the test; ``dns_port`` for dig, ``url`` for the API."""

    def __init__(self, base: Path, config: dict[str, Any], *flags: str, name: str = "dns") -> None:
        self.dns_port = free_port()
        http_port = free_port()
        doc = {"listener": "127.0.0.1", "httpListener": "127.0.0.1", "httpport": http_port, "port": 53, **config}
        base.mkdir(parents=True, exist_ok=True)
        self.config_path = base / f"{name}.json"
        self.config_path.write_text(json.dumps(doc))
        args = ["dns", "--config", str(self.config_path), "--dns-port", str(self.dns_port), *flags]
        super().__init__(name, args, http_port, base)

    def dig(self, name: str, rtype: str = "A", *options: str) -> Dig:
        return dig(self.dns_port, name, rtype, *options)

    def wait_for(self, name: str, rtype: str = "A", timeout: float = 20.0, status: str = "NOERROR") -> Dig:
        def check() -> Dig | None:
            result = self.dig(name, rtype)
            return result if result.status == status and (status != "NOERROR" or result.answer) else None

        return wait_until(check, timeout=timeout, interval=0.1, what=f"{name} {rtype} -> {status}")


@pytest.fixture
def start_dns(tmp_path: Path) -> Iterator[Callable[..., DNSProcess]]:
    started: list[DNSProcess] = []

    def start(config: dict[str, Any], *flags: str, name: str = "dns", ready: bool = True) -> DNSProcess:
        process = DNSProcess(tmp_path, config, *flags, name=name)
        started.append(process)
        process.start("/v1/version")
        if ready:
            process.wait_for("leader." + config.get("domain", "mesos"))
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()
