"""``mesolite zdd``'s algorithm against an in-memory Marathon whose stats page is what the bridge would serve for
it (the routing built by ``build_routing``, draining servers MAINT): the colours and ports alternate, the new app
grows as zdd.py grows it, only drained tasks are ever killed, and the old app goes once empty. The real thing, under
load, is ``tests/integration/haproxy_bridge/test_zdd.py``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from mesolite.cli import build_parser
from mesolite.haproxy_bridge import zdd_config
from mesolite.haproxy_bridge.routing import Routing, RoutingSettings, build_routing
from mesolite.haproxy_bridge.zdd import Zdd, ZddConfig, ZddError, parse_stats

MARATHON = "http://marathon:8080"
LB = "http://lb:9090"


class Response:
    def __init__(self, status: int, payload: Any = None, text: str = "") -> None:
        self.status_code = status
        self._payload = payload
        self.text = text or (json.dumps(payload) if payload is not None else "")

    def json(self) -> Any:
        return self._payload

    def raise_for_status(self) -> None:
        assert self.status_code < 400


class FakeCluster:
    """Marathon as zdd uses it (every task healthy at once), and the bridge's stats page for those apps."""

    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.next_port = 31000
        self.clock = 0
        self.scaled_to: list[int] = []
        self.killed: list[str] = []
        self.unsafe: list[str] = []  # tasks killed or deleted while HAProxy could still send them requests

    # --- Marathon
    def request(self, method: str, url: str, json: Any = None, **_: Any) -> Response:
        path = url.removeprefix(MARATHON)
        if method == "GET" and path == "/v2/apps":
            return Response(200, {"apps": list(self.apps.values())})
        if method == "POST" and path == "/v2/apps":
            app = dict(json, tasks=[], deployments=[])
            self.apps[app["id"]] = app
            self._scale(app, app["instances"])
            return Response(201, app)
        if method == "POST" and path == "/v2/tasks/delete?scale=true":
            draining = self._draining()
            for app in self.apps.values():
                gone = [t for t in app["tasks"] if t["id"] in json["ids"]]
                app["tasks"] = [t for t in app["tasks"] if t not in gone]
                app["instances"] -= len(gone)
                self._touch(app)
            self.unsafe += [i for i in json["ids"] if i not in draining]
            self.killed += json["ids"]
            return Response(200, {"deploymentId": "d"})
        app = self.apps.get(path.removeprefix("/v2/apps"))
        if app is None:
            return Response(404, {"message": "not found"})
        if method == "GET":
            return Response(200, {"app": app})
        if method == "PUT":
            self.scaled_to.append(json["instances"])
            self._scale(app, json["instances"])
            return Response(200, {"deploymentId": "d"})
        assert method == "DELETE"
        draining = self._draining()
        self.unsafe += [t["id"] for t in app["tasks"] if t["id"] not in draining]
        del self.apps[app["id"]]
        return Response(200, {"deploymentId": "d"})

    def _scale(self, app: dict[str, Any], instances: int) -> None:
        while len(app["tasks"]) < instances:
            self.next_port += 1
            task = {"id": f"{app['id'][1:]}.{self.next_port}", "host": "127.0.0.1", "ports": [self.next_port]}
            app["tasks"].append(dict(task, state="TASK_RUNNING", healthCheckResults=[{"alive": True}]))
        del app["tasks"][instances:]
        app["instances"] = instances
        self._touch(app)

    def _touch(self, app: dict[str, Any]) -> None:
        self.clock += 1
        app["versionInfo"] = {"lastScalingAt": f"2024-01-01T00:00:{self.clock:02d}Z"}

    # --- the bridge's HAProxy
    def _routing(self) -> Routing:
        return build_routing(list(self.apps.values()), RoutingSettings())

    def _draining(self) -> set[str]:
        return {s.task_id for svc in self._routing().services for s in svc.servers if s.draining}

    def get(self, url: str, **_: Any) -> Response:
        if url.endswith("/_haproxy_getpids"):
            return Response(200, text="100 101")
        assert url.endswith("/haproxy?stats;csv"), url
        rows = ["# pxname,svname,qcur,qmax,scur,status,"]
        for service in self._routing().services:
            rows.append(f"{service.backend},FRONTEND,,,0,OPEN,")
            for server in service.servers:
                rows.append(f"{service.backend},{server.name},0,0,0,{'MAINT' if server.draining else 'UP'},")
            rows.append(f"{service.backend},BACKEND,0,0,0,UP,")
        return Response(200, text="\n".join(rows) + "\n")


def shop(tmp_path: Path, instances: int = 3, version: str = "1") -> Path:
    app = {
        "id": "/shop",
        "instances": instances,
        "cmd": f"serve --version {version}",
        "portDefinitions": [{"port": 10000}],
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0}],
        "labels": {"HAPROXY_DEPLOYMENT_GROUP": "shop", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"},
    }
    path = tmp_path / f"shop-{version}.json"
    path.write_text(json.dumps(app))
    return path


def zdd(cluster: FakeCluster, app_json: Path, answers: list[str] | None = None, **flags: Any) -> Zdd:
    config = ZddConfig(marathon=MARATHON, marathon_lb=[LB], json=str(app_json), step_delay=0, **flags)
    replies = iter(answers or [])
    return Zdd(
        config,
        out=io.StringIO(),
        ask=lambda _q: next(replies),
        sleep=lambda _s: None,
        resolve_all=lambda host: ["10.0.0.5"] if host == "lb" else [],
        session=cluster,  # type: ignore[arg-type]
    )


def test_blue_then_green_then_blue(tmp_path: Path) -> None:
    cluster = FakeCluster()
    assert zdd(cluster, shop(tmp_path), force=True).run()
    (blue,) = cluster.apps.values()
    assert blue["id"] == "/shop-blue" and blue["instances"] == 3 and blue["portDefinitions"][0]["port"] == 10000
    assert blue["labels"]["HAPROXY_0_PORT"] == "10000" and blue["labels"]["HAPROXY_APP_ID"] == "/shop"

    assert zdd(cluster, shop(tmp_path, version="2"), force=True).run()
    (green,) = cluster.apps.values()
    assert green["id"] == "/shop-green" and green["instances"] == 3 and green["cmd"] == "serve --version 2"
    assert green["portDefinitions"][0]["port"] == 10001 and green["labels"]["HAPROXY_0_PORT"] == "10000"
    assert green["labels"]["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"] == "3"
    assert cluster.scaled_to == [3]  # 1 → floor(1 + 1) = 2 ≥ 2 old left → straight to the target
    assert len(cluster.killed) == 1 and cluster.unsafe == []  # the last two drained ones go with their app

    assert zdd(cluster, shop(tmp_path, version="3"), force=True, linear_increase=1).run()
    (blue_again,) = cluster.apps.values()
    assert blue_again["id"] == "/shop-blue" and blue_again["portDefinitions"][0]["port"] == 10000
    assert cluster.scaled_to == [3, 2, 3] and cluster.unsafe == []


def test_declining_a_prompt_stops_and_exits_1(tmp_path: Path) -> None:
    cluster = FakeCluster()
    assert zdd(cluster, shop(tmp_path), force=True).run()
    assert not zdd(cluster, shop(tmp_path, version="2"), answers=["maybe", "n"]).run()
    assert list(cluster.apps) == ["/shop-blue"]
    # Accepting the deployment but declining the first kill leaves both colours for --resume.
    assert not zdd(cluster, shop(tmp_path, version="2"), answers=["y", "no"]).run()
    assert sorted(cluster.apps) == ["/shop-blue", "/shop-green"] and cluster.killed == []
    with pytest.raises(ZddError, match="deployment in progress"):
        zdd(cluster, shop(tmp_path, version="2"), force=True).run()
    assert zdd(cluster, shop(tmp_path, version="2"), force=True, resume=True).run()
    assert list(cluster.apps) == ["/shop-green"] and cluster.unsafe == []


def test_hybrid_then_complete_prev(tmp_path: Path) -> None:
    cluster = FakeCluster()
    assert zdd(cluster, shop(tmp_path, instances=4), force=True).run()
    assert zdd(cluster, shop(tmp_path, instances=4, version="2"), force=True, new_instances=1).run()
    counts = {a["id"]: a["instances"] for a in cluster.apps.values()}
    assert counts == {"/shop-blue": 3, "/shop-green": 1} and cluster.unsafe == []
    assert zdd(cluster, shop(tmp_path, version="2"), force=True, complete_prev=True, max_wait=5).run()
    assert {a["id"]: a["instances"] for a in cluster.apps.values()} == {"/shop-blue": 4}


def test_dry_run_prints_the_next_colour_only(tmp_path: Path) -> None:
    cluster = FakeCluster()
    run = zdd(cluster, shop(tmp_path), dry_run=True)
    assert run.run() and cluster.apps == {}
    printed = json.loads(run.out.getvalue())  # type: ignore[attr-defined]
    assert printed["id"] == "/shop-blue" and printed["labels"]["HAPROXY_DEPLOYMENT_COLOUR"] == "blue"


def test_cli_exit_codes(tmp_path: Path) -> None:
    missing = tmp_path / "plain.json"
    missing.write_text(json.dumps({"id": "/plain", "labels": {}}))
    base = ["zdd", "-m", "http://127.0.0.1:1", "-l", "http://127.0.0.1:1", "-f"]
    assert zdd_config.run(build_parser().parse_args([*base, "-j", str(missing)])) == 4
    assert zdd_config.run(build_parser().parse_args([*base, "-j", str(tmp_path / "nowhere.json")])) == 3
    assert zdd_config.run(build_parser().parse_args([*base, "-j", str(shop(tmp_path))])) == 6  # Marathon unreachable
    args = build_parser().parse_args([*base, "-j", str(shop(tmp_path)), "-c", "-p"])
    assert zdd_config.run(args) == 3


def test_stats_urls_and_csv() -> None:
    run = zdd(FakeCluster(), Path("unused.json"))
    assert run.stats_urls() == ["http://10.0.0.5:9090"]
    rows = parse_stats("# pxname,svname,qcur,scur,status,\nshop_1,a,0,2,MAINT,\nshop_1,b,,,UP,\n")
    assert [(r.svname, r.status, r.drained) for r in rows] == [("a", "MAINT", False), ("b", "UP", False)]
