"""marathon-lb's edge labels (TLS, redirects, HSTS, auth, path rewriting, source ACLs) and per-app template labels:
what they become, and every way a label could write configuration beyond its own app being refused with a reason.
The whole result is checked by Debian's ``haproxy -c``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from mesolite.haproxy_bridge.app_templates import fill, is_template_label
from mesolite.haproxy_bridge.errors import LabelError
from mesolite.haproxy_bridge.generator import Generator, GlobalSettings
from mesolite.haproxy_bridge.haproxy import validate
from mesolite.haproxy_bridge.routing import RoutingSettings, Service, build_routing

HASH = "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"
CHECK = {"protocol": "HTTP", "path": "/health", "portIndex": 0, "intervalSeconds": 3, "maxConsecutiveFailures": 2}


def app(app_id: str, labels: dict[str, str], port: int = 20000, **extra: Any) -> dict[str, Any]:
    task = {"id": f"{app_id[1:]}.1", "host": "127.0.0.1", "ports": [31000], "state": "TASK_RUNNING"}
    task["healthCheckResults"] = [{"alive": True}]
    return {"id": app_id, "portDefinitions": [{"port": port}], "labels": labels, "tasks": [task], **extra}


def problems(*apps: dict[str, Any]) -> dict[str, str]:
    return build_routing(list(apps), RoutingSettings()).problems


def only(one: dict[str, Any]) -> Service:
    routing = build_routing([one], RoutingSettings())
    assert routing.problems == {}
    (service,) = routing.services
    return service


def test_edge_labels_parsed() -> None:
    service = only(
        app(
            "/site",
            {
                "HAPROXY_0_VHOST": "a.test,www.a.test",
                "HAPROXY_0_REDIRECT_TO_HTTPS": "t",
                "HAPROXY_0_USE_HSTS": "Yes",
                "HAPROXY_0_SSL_CERT": "/etc/ssl/a.pem",
                "HAPROXY_0_AUTH": f"My Realm:alice:{HASH}",
                "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/app.v1",
                "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/app.v1/",
                "HAPROXY_0_HTTP_BACKEND_REDIR": "/start",
                "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 192.168.1.7",
            },
        )
    )
    edge = service.edge
    assert (edge.redirect_to_https, edge.hsts, edge.ssl_cert) == (True, True, "/etc/ssl/a.pem")
    assert (edge.auth.realm, edge.auth.user, edge.auth.password) == ("My Realm", "alice", HASH)
    assert (edge.proxypass_regex, edge.revproxy_root, edge.redir_path) == ("/app[.]v1", "/app.v1", "/start")
    assert edge.network_allowed == ("10.0.0.0/8", "192.168.1.7/32")
    http = {"HAPROXY_0_MODE": "http"}
    assert only(app("/p", http)).fingerprint() != only(app("/p", {**http, "HAPROXY_0_USE_HSTS": "true"})).fingerprint()


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"HAPROXY_0_REDIRECT_TO_HTTPS": "true"}, "needs HAPROXY_0_VHOST"),
        ({"HAPROXY_0_MODE": "tcp", "HAPROXY_0_USE_HSTS": "true"}, "needs HTTP mode"),
        ({"HAPROXY_0_USE_HSTS": "maybe", "HAPROXY_0_MODE": "http"}, "is not a boolean"),
        ({"HAPROXY_0_MODE": "http", "HAPROXY_0_AUTH": "alice:" + HASH}, "realm:username:encryptedpassword"),
        ({"HAPROXY_0_MODE": "http", "HAPROXY_0_AUTH": 'a"b:alice:' + HASH}, "realm"),
        ({"HAPROXY_0_MODE": "http", "HAPROXY_0_AUTH": "r:alice:plaintext"}, "crypt(3) hash"),
        ({"HAPROXY_0_MODE": "http", "HAPROXY_0_AUTH": "r:al ice:" + HASH}, "user name"),
        ({"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/a b"}, "is not a path"),
        ({"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/(.*)"}, "is not a path"),
        ({"HAPROXY_0_MODE": "http", "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/x"}, "needs HAPROXY_0_VHOST"),
        ({"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_HTTP_BACKEND_REDIR": "/x y"}, "neither a path"),
        ({"HAPROXY_0_SSL_CERT": "cert.pem"}, "absolute path"),
        ({"HAPROXY_0_SSL_CERT": "/etc/ssl/a.pem crt /etc/shadow"}, "absolute path"),
        ({"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 everyone"}, "not an address"),
        ({"HAPROXY_0_BIND_OPTIONS": "ssl\nlisten x"}, "line break"),
    ],
)
def test_edge_labels_refused(labels: dict[str, str], reason: str) -> None:
    assert reason in problems(app("/bad", labels))["/bad"]


def test_template_labels_fill_marathon_lb_variables() -> None:
    labels = {
        "HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 7s\n",
        "HAPROXY_0_FRONTEND_HEAD": "frontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n"
        "  mode {mode}\n",
        "HAPROXY_0_BACKEND_HTTP_OPTIONS": "  option forwardfor\n  http-request add-header X-P https if { ssl_fc }\n",
        "HAPROXY_0_BACKEND_SERVER_OPTIONS": "  server {serverName} {host_ipv4}:{port} id {serverId}"
        "{healthCheckOptions}{otherOptions}\n",
        "HAPROXY_0_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS": "  check inter {healthCheckIntervalSeconds}s "
        "fall {healthCheckFalls}{healthCheckPortOptions}\n",
        "HAPROXY_0_SSL_CERT": "/etc/ssl/x.pem",
    }
    service = only(app("/tpl", labels, healthChecks=[CHECK]))
    assert (
        service.override("BACKEND_HEAD")
        == "backend tpl_20000\n  balance roundrobin\n  mode http\n  timeout server 7s\n"
    )
    assert (
        service.override("FRONTEND_HEAD") == "frontend tpl_20000\n  bind *:20000 ssl crt /etc/ssl/x.pem\n  mode http\n"
    )
    assert "{ ssl_fc }" in service.override("BACKEND_HTTP_OPTIONS")  # used as written, as marathon-lb does
    (server,) = service.servers
    assert server.line == f"  server {server.name} 127.0.0.1:31000 id {server.server_id} check inter 3s fall 3\n"
    assert service.check_options == " check inter 3s fall 3"
    assert is_template_label("HAPROXY_0_BACKEND_HEAD") and not is_template_label("HAPROXY_0_VHOST")


@pytest.mark.parametrize(
    ("name", "template", "reason"),
    [
        ("BACKEND_HEAD", "backend {backend}\nlisten x\n  bind :80\n", "a new section: listen x"),
        ("BACKEND_HEAD", "backend {backend}\nbackend other\n", "a new section"),
        ("BACKEND_HEAD", "backend someone_else_80\n", "must open the app's own section"),
        ("BACKEND_HEAD", "  balance {balance}\n", "must open the app's own section"),
        ("BACKEND_HEAD", "", "is empty"),
        ("BACKEND_HEAD", "backend {backend.__class__}\n", "unknown variable {backend.__class__}"),
        ("BACKEND_HEAD", "backend {backend!r}\n", "no conversion"),
        ("BACKEND_HEAD", "backend {nope}\n", "unknown variable {nope}"),
        ("BACKEND_HEAD", "backend {backend\n", "literal braces"),
        ("BACKEND_HEAD", "backend {backend}\n.if 0\n", "conditional and diagnostic"),
        ("BACKEND_HEAD", "backend {backend}\n  errorfile 503 /etc/shadow\n", "reading local files"),
        ("BACKEND_HEAD", "backend {backend}\n  http-request return status 200 file /etc/shadow\n", "local files"),
        ("BACKEND_HEAD", "backend {backend}\n  http-request use-service lua.x\n", "running code"),
        ("BACKEND_HEAD", "backend {backend}\n  stats enable\n", "HAProxy's internals"),
        ("BACKEND_HEAD", 'backend {backend}\n  http-response set-header X "${{AWS_SECRET}}"\n', "environment"),
        ("BACKEND_HTTP_OPTIONS", '  http-request set-header X "$HOME"\n', "environment"),
        ("FRONTEND_HEAD", "frontend {backend}\n  bind {bindAddr}:9090\n", "own service port"),
        ("FRONTEND_HEAD", "frontend {backend}\n  bind :{servicePort},:80\n", "own service port"),
        ("BACKEND_SERVER_OPTIONS", "  server a 1.2.3.4:80\n  server b 1.2.3.4:81\n", "exactly one 'server' line"),
        ("BACKEND_SERVER_OPTIONS", "  option httplog\n", "exactly one 'server' line"),
        ("BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", "  check\n  listen x\n", "on the server's line"),
        ("BACKEND_HSTS_OPTIONS", "  http-response set-header Strict-Transport-Security max-age=1\n", "no effect"),
        ("USERLIST_HEAD", "userlist user_{backend}\n", "no effect: without HAPROXY_0_AUTH"),
        ("BACKEND_TCP_HEALTHCHECK_OPTIONS", "  timeout check 1s\n", "no effect"),
        ("HTTP_FRONTEND_ACL", "  use_backend {backend}\n", "shared by every app"),
        ("BACKEND_REDIRECT_HTTP_TO_HTTPS", "  redirect scheme https\n", "no effect: without HAPROXY_0_REDIRECT_TO"),
        ("MAP_HTTP_FRONTEND_ACL", "  use_backend x\n", "map files"),
    ],
)
def test_hostile_or_useless_template_labels_refused(name: str, template: str, reason: str) -> None:
    labels = {f"HAPROXY_0_{name}": template, "HAPROXY_0_MODE": "http"}
    found = problems(app("/evil", labels, healthChecks=[CHECK]), app("/fine", {}, port=20001))
    assert list(found) == ["/evil"] and reason in found["/evil"], found


@pytest.mark.parametrize(
    "line",
    [
        "  redirect location http://elsewhere.test code 302\n",
        "  redirect scheme https if host_{cleanedUpHostname} || TRUE\n",
        "  redirect scheme https unless host_{cleanedUpHostname}\n",
        "  use_backend someone_else if host_{cleanedUpHostname}\n",
        "  redirect scheme https if host_{cleanedUpHostname}\n  redirect scheme https\n",
    ],
)
def test_redirect_template_only_redirects_the_apps_own_host(line: str) -> None:
    labels = {"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}
    found = problems(app("/r", {**labels, "HAPROXY_0_BACKEND_REDIRECT_HTTP_TO_HTTPS": line}))
    assert "HAPROXY_0_BACKEND_REDIRECT_HTTP_TO_HTTPS" in found["/r"], found


def test_marathon_lb_redirect_template_goes_in_the_shared_frontend() -> None:
    labels = {
        "HAPROXY_0_VHOST": "a.test",
        "HAPROXY_0_REDIRECT_TO_HTTPS": "true",
        "HAPROXY_0_BACKEND_REDIRECT_HTTP_TO_HTTPS": "  redirect scheme https code 308 if !{{ ssl_fc }} "
        "host_{cleanedUpHostname}\n",
    }
    routing = build_routing([app("/r", labels)], RoutingSettings())
    text = Generator(GlobalSettings(marathon="http://m")).render(routing)
    frontend = text.split("frontend marathon_http_in")[1].split("\nfrontend ")[0]
    assert "  redirect scheme https code 308 if !{ ssl_fc } host_r_20000\n  use_backend r_20000" in frontend
    assert "http-request redirect" not in frontend
    path_too = {**labels, "HAPROXY_0_PATH": "/x"}
    assert "PATH is set" in problems(app("/r", path_too))["/r"]


def test_server_health_template_without_a_health_check_is_refused() -> None:
    labels = {"HAPROXY_0_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS": "  check inter {healthCheckIntervalSeconds}s\n"}
    assert "no health check" in problems(app("/x", labels))["/x"]


def test_fill_rejects_format_tricks_directly() -> None:
    with pytest.raises(LabelError, match="unknown variable"):
        fill("FRONTEND_BACKEND_GLUE", 0, "  use_backend {0}\n", {"backend": "b"})
    assert fill("FRONTEND_BACKEND_GLUE", 0, "  use_backend {backend} # {{x}}\n", {"backend": "b"}) == (
        "  use_backend b # {x}\n"
    )


def make_cert(directory: Path, host: str) -> Path:
    pem = directory / f"{host}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(pem), "-out", str(directory / f"{host}.crt"), "-days", "1", "-subj", f"/CN={host}"],
        check=True,
        capture_output=True,
    )
    pem.write_text((directory / f"{host}.crt").read_text() + pem.read_text())
    return pem


def test_every_edge_feature_renders_a_config_haproxy_accepts(tmp_path: Path) -> None:
    a, b = make_cert(tmp_path, "a.test"), make_cert(tmp_path, "b.test")
    apps = [
        app(
            "/site",
            {
                "HAPROXY_0_VHOST": "a.test",
                "HAPROXY_0_PATH": "/shop",
                "HAPROXY_0_REDIRECT_TO_HTTPS": "true",
                "HAPROXY_0_USE_HSTS": "true",
                "HAPROXY_0_AUTH": f"Realm:alice:{HASH}",
                "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/shop",
                "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/shop",
                "HAPROXY_0_HTTP_BACKEND_REDIR": "https://a.test/shop",
                "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "127.0.0.0/8",
                "HAPROXY_0_STICKY": "true",
            },
        ),
        app("/b", {"HAPROXY_0_VHOST": "b.test", "HAPROXY_0_SSL_CERT": str(b)}, port=20001),
        app("/raw", {"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.1.0.0/16"}, port=20002),
    ]
    routing = build_routing(apps, RoutingSettings(bind_address="127.0.0.1"))
    assert routing.problems == {}
    generator = Generator(
        GlobalSettings(
            marathon="http://m",
            bind_address="127.0.0.1",
            https_port=8443,
            ssl_certs=(str(a),),
            socket_path=str(tmp_path / "s.sock"),
            lua_script=str(Path(__file__).parents[3] / "services/mesolite/haproxy_bridge/lua/bridge_api.lua"),
            bridge_api="http://127.0.0.1:9091",
        )
    )
    text = generator.render(routing)
    assert f"bind 127.0.0.1:8443 ssl crt {a} crt {b}" in text
    assert "http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[pathq] code 301" in text
    assert 'http-request auth realm "Realm" unless { http_auth(user_site_20000) }' in text
    assert "tcp-request content reject if !network_allowed" in text
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    check = validate("haproxy", str(config))
    assert check.ok, check.output
    warnings = [line for line in check.output.splitlines() if "WARNING" in line and "log format ignored" not in line]
    assert warnings == []
