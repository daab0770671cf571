"""Mesos-DNS' HTTP API (``resolver.go`` configureHTTP and Rest*), in upstream's response shapes: clients parse the
"not found" rows (one row of empty strings, status 200) as much as the found ones.

The Flask app runs under gunicorn like every mesolite service; the DNS listeners and the refresh loop belong to the
:class:`~mesolite.dns.state.DNSService` registered on it, started in the gunicorn worker.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from flask import Flask, Response

from mesolite.core.http import json_response, text_response
from mesolite.core.server import SERVICE_KEY
from mesolite.dns.config import VERSION, DNSConfig, split_host_port
from mesolite.dns.generator import RecordSet
from mesolite.dns.state import DNSService


def create_app(config: DNSConfig, service: DNSService | None = None) -> Flask:
    app = Flask("mesolite.dns")
    service = service or DNSService(config)
    app.extensions[SERVICE_KEY] = service

    def records() -> RecordSet:
        return service.records

    def clean(name: str) -> str:
        name = name.lower().replace(".*", "")
        return name if name.endswith(".") else name + "."

    @app.get("/v1/version")
    def version() -> Response:
        return json_response(
            {"Service": "Mesos-DNS", "URL": "https://github.com/mesosphere/mesos-dns", "Version": VERSION}
        )

    @app.get("/v1/config")
    def config_view() -> Response:
        return json_response(config.public_json())

    @app.get("/v1/hosts/<host>")
    def hosts(host: str) -> Response:
        rs, name = records(), clean(host)
        rows = [{"host": name, "ip": ip} for ip in rs.As.get(name, ())]
        rows += [{"host": name, "ip": ip} for ip in rs.AAAAs.get(name, ())]
        return json_response(rows or [{"host": "", "ip": ""}])

    @app.get("/v1/hosts/<host>/ports")
    def host_ports(host: str) -> Response:
        return text_response("To be implemented...", status=501)

    @app.get("/v1/services/<service_name>")
    def services(service_name: str) -> Response:
        rs, name = records(), clean(service_name)
        rows: list[dict[str, str]] = []
        for value in rs.SRVs.get(name, ()):
            try:
                host, port = split_host_port(value)
            except ValueError:
                continue
            for kind in ("A", "AAAA"):
                ip = rs.first(kind, host)
                if ip is not None:
                    rows.append({"service": service_name, "host": host, "ip": ip, "port": port})
        return json_response(rows or [{"service": "", "host": "", "ip": "", "port": ""}])

    if config.EnumerationOn:

        @app.get("/v1/enumerate")
        def enumerate_view() -> Response:
            return json_response({"frameworks": records().frameworks})

        @app.get("/v1/axfr")
        def axfr() -> Response:
            rs = records()
            body: dict[str, Any] = {
                "TTL": config.TTL,
                "Serial": rs.serial,
                "RefreshSeconds": config.RefreshSeconds,
                "Mname": config.SOAMname,
                "Rname": config.SOARname,
                "Domain": config.Domain,
                "Records": {
                    "As": {k: list(v) for k, v in rs.As.items()},
                    "AAAAs": {k: list(v) for k, v in rs.AAAAs.items()},
                    "SRVs": {k: list(v) for k, v in rs.SRVs.items()},
                },
            }
            return json_response(body)

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return text_response("404: Page Not Found", status=404)

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> Response:
        return text_response("405: Method Not Allowed", status=405)

    return app


def run(config: DNSConfig, log_level: str = "info") -> int:
    """``mesolite dns``: the HTTP API under gunicorn with the service in its worker, or, with ``httpon: false``,
    the service alone in this process until SIGTERM/SIGINT."""
    from mesolite.core.server import serve

    if config.HttpOn:
        serve(lambda: create_app(config), config.HTTPListener, config.HttpPort, threads=8, log_level=log_level)
        return 0
    service = DNSService(config)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    service.start()
    try:
        done.wait()
    finally:
        service.stop()
    return 0
