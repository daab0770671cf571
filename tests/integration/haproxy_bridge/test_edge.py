"""TLS and the rest of marathon-lb's edge, through the real HAProxy with ``curl``: the served certificate verified
with ``--cacert``, SNI picking each vhost's certificate, the 301 to HTTPS, HSTS, basic auth, path rewriting, the
stats-port endpoints, and a template label that would inject configuration refused while the rest is applied.

The certificates are made here with ``openssl`` (one self-signed certificate per host name; each is its own CA for
``curl --cacert``). The bridge gets a directory for ``--ssl-certs`` (a.test, the default) and an app names its own
certificate with ``HAPROXY_0_SSL_CERT`` (b.test).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cluster import Cluster, free_port, wait_until
from tests.integration.haproxy_bridge.conftest import BridgeHarness, deploy, echo_app
from tests.integration.marathon.conftest import MarathonHarness

PASSWORD = "open sesame"


def make_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed EC certificate for ``host``: (PEM with the key, for HAProxy; the certificate, for curl)."""
    key, crt = directory / f"{host}.key", directory / f"{host}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", f"/CN={host}"]
        + ["-addext", f"subjectAltName=DNS:{host}"],
        check=True,
        capture_output=True,
    )
    pem = directory / f"{host}.pem"
    pem.write_text(crt.read_text() + key.read_text())
    key.unlink()
    return pem, crt


def curl(*args: str) -> tuple[int, dict[str, str], str]:
    """The real curl: (status, lower-cased headers, body); status 0 when curl itself fails (e.g. a bad cert)."""
    done = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args], capture_output=True)
    if done.returncode != 0:
        return 0, {}, done.stderr.decode(errors="replace")
    head, _, body = done.stdout.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


class Edge:
    def __init__(self, bridge: BridgeHarness, certs: Path, https_port: int) -> None:
        self.bridge = bridge
        self.certs = certs
        self.https_port = https_port

    def https(self, host: str, path: str = "/", cacert: str | None = None, *extra: str) -> tuple[int, dict, str]:
        return curl(
            "--cacert",
            str(self.certs / f"{cacert or host}.crt"),
            "--resolve",
            f"{host}:{self.https_port}:127.0.0.1",
            *extra,
            f"https://{host}:{self.https_port}{path}",
        )


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    base = tmp_path_factory.mktemp("haproxy-edge")
    certs = base / "certs"
    (certs / "global").mkdir(parents=True)
    for host in ("a.test", "b.test"):
        pem, _crt = make_cert(certs, host)
        if host == "a.test":
            pem.rename(certs / "global" / pem.name)
    cluster = Cluster(base)
    marathon = MarathonHarness(cluster, base)
    bridge = BridgeHarness(marathon, base)
    https_port = free_port()
    try:
        cluster.start_master()
        cluster.start_agent(resources="cpus:4;mem:4096;disk:10000;ports:[31000-31200]")
        marathon.start()
        bridge.start("--ssl-certs", str(certs / "global"), "--https-port", str(https_port))
        yield Edge(bridge, certs, https_port)
    finally:
        bridge.stop()
        marathon.stop()
        cluster.stop()


@pytest.fixture
def site(edge: Edge) -> Iterator[Edge]:
    try:
        yield edge
    finally:
        edge.bridge.marathon.clean()
        wait_until(lambda: edge.bridge.get("/routing").json()["services"] == [], 30, what="routing emptied")


def crypt(password: str) -> str:
    done = subprocess.run(["openssl", "passwd", "-6", password], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_https_with_sni_redirect_and_hsts(site: Edge) -> None:
    marathon = site.bridge.marathon
    a_port, b_port = free_port(), free_port()
    a_labels = {"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_REDIRECT_TO_HTTPS": "true", "HAPROXY_0_USE_HSTS": "true"}
    a_tasks = deploy(marathon, echo_app("/a", a_port, instances=1, labels=a_labels))
    b_labels = {
        "HAPROXY_0_VHOST": "b.test",
        "HAPROXY_0_SSL_CERT": str(site.certs / "b.test.pem"),
        "HAPROXY_0_HTTP_BACKEND_REDIR": "/home",
    }
    b_tasks = deploy(marathon, echo_app("/b", b_port, instances=1, labels=b_labels))
    wait_until(lambda: site.https("b.test", "/x")[0] == 200, 20, what="b.test over HTTPS")

    # Each host gets its own certificate (SNI), verified against it; the default one is a.test's.
    status, headers, body = site.https("a.test", "/x")
    assert status == 200 and '"proto": "https"' in body and any(t in body for t in a_tasks), body
    assert headers["strict-transport-security"] == "max-age=15768000"
    status, headers, body = curl(f"http://127.0.0.1:{a_port}/x")  # plain HTTP: no HSTS (RFC 6797 7.2)
    assert status == 200 and "strict-transport-security" not in headers and '"proto": null' in body
    status, headers, body = site.https("b.test", "/x")
    assert status == 200 and any(t in body for t in b_tasks) and "strict-transport-security" not in headers
    assert site.https("b.test", "/x", "a.test")[0] == 0  # b.test's certificate is not a.test's
    assert site.https("a.test", "/x", "b.test")[0] == 0

    # HTTP on port 80: a.test is sent to HTTPS with its path; b.test is served; b.test's root goes to /home.
    status, headers, _ = curl("-H", "Host: a.test", "http://127.0.0.1:80/some/path?q=1")
    assert status == 301 and headers["location"] == f"https://a.test:{site.https_port}/some/path?q=1"
    status, headers, body = curl("-H", "Host: b.test", "http://127.0.0.1:80/x")
    assert status == 200 and "strict-transport-security" not in headers
    status, headers, _ = site.https("b.test", "/")
    assert status == 301 and headers["location"] == "/home"

    # HAPROXY_0_SSL_CERT also puts TLS on the app's own service port (marathon-lb's behaviour).
    status, _, body = curl(
        "--cacert",
        str(site.certs / "b.test.crt"),
        "--resolve",
        f"b.test:{b_port}:127.0.0.1",
        f"https://b.test:{b_port}/x",
    )
    assert status == 200 and any(t in body for t in b_tasks)


def test_basic_auth_and_path_rewriting(site: Edge) -> None:
    port = free_port()
    labels = {
        "HAPROXY_0_VHOST": "a.test",
        "HAPROXY_0_AUTH": f"Private Area:alice:{crypt(PASSWORD)}",
        "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/app",
        "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/app",
    }
    deploy(site.bridge.marathon, echo_app("/private", port, instances=1, labels=labels))
    authorized = ("-u", f"alice:{PASSWORD}")
    wait_until(lambda: site.https("a.test", "/app/x", None, *authorized)[0] == 200, 20, what="/private routed")

    status, headers, _ = site.https("a.test", "/app/x")
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="Private Area"'
    assert site.https("a.test", "/app/x", None, "-u", "alice:wrong")[0] == 401
    status, _, body = site.https("a.test", "/app/deep/page?x=1", None, *authorized)
    assert status == 200 and '"path": "/deep/page?x=1"' in body and '"host": "a.test"' in body, body
    status, _, body = site.https("a.test", "/app", None, *authorized)
    assert status == 200 and '"path": "/"' in body
    # The app's own redirects are rewritten back under the prefix (REVPROXY_PATH).
    status, headers, _ = site.https("a.test", "/app/redirect?to=/login", None, *authorized)
    assert status == 302 and headers["location"] == "/app/login"
    location = f"http://a.test:{site.https_port}/next"
    status, headers, _ = site.https("a.test", f"/app/redirect?to={location}", None, *authorized)
    assert status == 302 and headers["location"] == "/app/next"
    # The service port is behind the same auth (it is the backend that asks).
    assert curl(f"http://127.0.0.1:{port}/")[0] == 401
    assert curl("-u", f"alice:{PASSWORD}", f"http://127.0.0.1:{port}/app/y")[0] == 200


def test_stats_port_endpoints(site: Edge) -> None:
    bridge = site.bridge
    port = free_port()
    deploy(bridge.marathon, echo_app("/mapped", port, instances=1, labels={"HAPROXY_0_VHOST": "a.test"}))
    stats = f"http://127.0.0.1:{bridge.stats_port}"
    backend = f"mapped_{port}"
    wait_until(lambda: backend in requests.get(stats + "/_haproxy_getvhostmap", timeout=5).text, 20, what="map")

    assert requests.get(stats + "/_haproxy_getvhostmap", timeout=5).text == f"a.test {backend}\n"
    assert requests.get(stats + "/_haproxy_getappmap", timeout=5).text == f"/mapped {backend}\n"
    config = requests.get(stats + "/_haproxy_getconfig", timeout=5)
    assert config.status_code == 200 and config.text == bridge.get("/config").text and "listen stats" in config.text
    pids = wait_until(
        lambda: p if len(p := requests.get(stats + "/_haproxy_getpids", timeout=5).text.split()) == 2 else None,
        30,
        what="the master and one worker",
    )
    assert all(pid.isdigit() for pid in pids) and int(pids[0]) == bridge.get("/health").json()["haproxy"]["pid"]
    csv = requests.get(stats + "/haproxy?stats;csv", timeout=5).text
    assert csv.startswith("# pxname,svname,") and f"\n{backend},BACKEND," in csv

    before = bridge.metrics()
    response = requests.get(stats + "/_mlb_signal/hup", timeout=5)
    assert (response.status_code, response.text) == (200, "Sent SIGHUP signal to marathon-lb")
    wait_until(lambda: bridge.metrics()["syncs_total"] > before["syncs_total"], 15, what="a resync")
    response = requests.get(stats + "/_mlb_signal/usr1", timeout=5)
    assert (response.status_code, response.text) == (200, "Sent SIGUSR1 signal to marathon-lb")
    wait_until(lambda: bridge.metrics()["reloads_total"] > before["reloads_total"], 15, what="a reload")
    assert bridge.seen(port) and requests.get(stats + "/_haproxy_health_check", timeout=5).status_code == 200


def test_template_labels_applied_and_hostile_ones_refused(site: Edge) -> None:
    bridge = site.bridge
    marathon = bridge.marathon
    good_port, evil_port, thief_port = free_port(), free_port(), free_port()
    good: dict[str, Any] = {
        "HAPROXY_0_BACKEND_HEAD": "backend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 7s\n",
        "HAPROXY_0_BACKEND_SERVER_OPTIONS": "  server {serverName} {host_ipv4}:{port} id {serverId}"
        "{cookieOptions}{healthCheckOptions}{otherOptions}\n",
        "HAPROXY_0_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS": "  check inter {healthCheckIntervalSeconds}s "
        "fall {healthCheckFalls}\n",
    }
    tasks = deploy(marathon, echo_app("/templated", good_port, instances=1, labels=good))
    evil = {"HAPROXY_0_BACKEND_HEAD": "backend {backend}\n  balance {balance}\n\nlisten stolen\n  bind :1\n"}
    assert marathon.request("POST", "/v2/apps", json=echo_app("/evil", evil_port, 0, evil)).status_code == 201
    thief = {"HAPROXY_0_FRONTEND_HEAD": "frontend {backend}\n  bind {bindAddr}:80\n  mode {mode}\n"}
    assert marathon.request("POST", "/v2/apps", json=echo_app("/thief", thief_port, 0, thief)).status_code == 201

    problems = wait_until(
        lambda: p if len(p := bridge.get("/health").json()["label_problems"]) == 2 else None, 20, what="2 refused"
    )
    assert "may not contain a new section: listen stolen" in problems["/evil"]
    assert "may only bind the app's own service port" in problems["/thief"]
    bridge.wait_seen(good_port, tasks, timeout=20)
    config = bridge.get("/config").text
    assert "  timeout server 7s\n" in config and " check inter 1s fall 4" in config and "stolen" not in config
    assert f"frontend thief_{thief_port}" not in config and f"backend evil_{evil_port}" not in config
