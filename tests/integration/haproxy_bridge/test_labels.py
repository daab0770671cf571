"""Labels an operator sets on Marathon apps — and the templates they may replace — as HAProxy sees them: vhost
routing by Host header on port 80, and nothing an app or a template gets wrong ever breaks the running proxy."""

from __future__ import annotations

import os

import pytest
import requests

from mesolite.haproxy_bridge.generator import TEMPLATES
from tests.cluster import free_port, wait_until
from tests.integration.haproxy_bridge.conftest import BridgeHarness, deploy, echo_app, fetch, scale, wait_healthy


def test_vhost_label_routes_by_host_header_on_port_80(bridge: BridgeHarness) -> None:
    port = free_port()
    labels = {"HAPROXY_0_VHOST": "site.mesolite.test,www.site.mesolite.test"}
    tasks = deploy(bridge.marathon, echo_app("/site", port, instances=2, labels=labels))
    bridge.wait_seen(80, tasks, host="site.mesolite.test", timeout=15)
    status, body = fetch(80, host="www.site.mesolite.test:80")
    assert status == 200 and body["task"] in tasks and body["host"] == "www.site.mesolite.test:80"
    assert fetch(80, host="elsewhere.mesolite.test")[0] == 503
    assert bridge.seen(port) == tasks  # the service port serves it too
    assert bridge.get("/routing").json()["services"][0]["mode"] == "http"


def test_a_label_haproxy_refuses_leaves_out_that_app_only(bridge: BridgeHarness) -> None:
    marathon = bridge.marathon
    good_port, bad_port = free_port(), free_port()
    good = deploy(marathon, echo_app("/good", good_port, instances=1))
    bridge.wait_seen(good_port, good, timeout=15)

    deploy(marathon, echo_app("/bad", bad_port, instances=1, labels={"HAPROXY_0_BALANCE": "fastest-please"}))
    rejected = wait_until(lambda: bridge.get("/health").json()["rejected_apps"], 15, what="/bad rejected")
    assert list(rejected) == ["/bad"] and "fastest-please" in rejected["/bad"]
    with pytest.raises(ConnectionRefusedError):
        fetch(bad_port)
    aside = (bridge.work_dir / "rejected.cfg").read_text()
    assert "balance fastest-please" in aside
    assert "fastest-please" in (bridge.work_dir / "rejected.err").read_text()

    # Everything else still follows Marathon.
    scale(marathon, "/good", 2)
    bridge.wait_seen(good_port, wait_healthy(marathon, "/good", 2), timeout=15)

    # A label that could inject lines into the config never reaches HAProxy.
    evil_port = free_port()
    evil = echo_app("/evil", evil_port, instances=0, labels={"HAPROXY_0_BIND_OPTIONS": "accept-proxy\nlisten x"})
    assert marathon.request("POST", "/v2/apps", json=evil).status_code == 201
    problems = wait_until(lambda: bridge.get("/health").json()["label_problems"], 15, what="/evil reported")
    assert "line break" in problems["/evil"]
    assert "listen x" not in bridge.get("/config").text

    # Fixing the label brings the app in.
    response = marathon.request("PUT", "/v2/apps/bad?force=true", json={"labels": {"HAPROXY_0_BALANCE": "leastconn"}})
    assert response.status_code == 200, response.text
    marathon.wait_deployed()
    bridge.wait_seen(bad_port, wait_healthy(marathon, "/bad", 1), timeout=15)
    assert bridge.get("/health").json()["rejected_apps"] == {}
    assert "balance leastconn" in bridge.get("/config").text


def test_a_broken_template_never_breaks_the_running_proxy(bridge: BridgeHarness) -> None:
    marathon = bridge.marathon
    port = free_port()
    first = deploy(marathon, echo_app("/tpl", port, instances=1))
    bridge.wait_seen(port, first, timeout=15)
    override = bridge.template_dir / "backend.j2"

    # A template jinja2 cannot parse: logged and counted, the running config stays.
    before = bridge.metrics()
    override.write_text("backend {{ service.backend \n")
    scale(marathon, "/tpl", 2)
    both = wait_healthy(marathon, "/tpl", 2)
    wait_until(lambda: bridge.metrics()["template_errors_total"] > before["template_errors_total"], 15, what="error")
    assert bridge.seen(port) == first
    assert "template" in bridge.get("/health").json()["last_config_error"]

    # A template that renders a config HAProxy refuses: kept aside, never loaded.
    with open(os.path.join(TEMPLATES, "backend.j2")) as handle:
        override.write_text(handle.read() + "  no-such-directive on\n")
    assert _sync(bridge)
    wait_until(lambda: bridge.metrics()["invalid_configs_total"] > before["invalid_configs_total"], 15, what="reject")
    assert "no-such-directive" in (bridge.work_dir / "rejected.cfg").read_text()
    assert "no-such-directive" not in bridge.get("/config").text
    assert bridge.seen(port) == first
    assert bridge.metrics()["reloads_total"] == before["reloads_total"]

    # The operator fixes it: the next sync applies everything Marathon has.
    override.unlink()
    assert _sync(bridge)
    bridge.wait_seen(port, both, timeout=15)


def _sync(bridge: BridgeHarness) -> bool:
    """``POST /sync``: re-read everything now (templates are read at every render)."""
    return requests.post(f"http://127.0.0.1:{bridge.port}/sync", timeout=5).status_code == 202
