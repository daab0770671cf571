"""Every Marathon app/group JSON in the seed talks (copied verbatim into tests/data/seeds) is accepted.

The examples are kept here as written in the slides; where the slide text is not JSON (``...`` placeholders, OCR
damage, a URL wrapped over two lines, a missing bracket) the smallest repair is noted next to it. The test also
checks that each one occurs in its seed file, so the copies cannot drift from the talks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesolite.core.store import MemoryStore
from mesolite.marathon.appdef import normalize_app
from mesolite.marathon.service import Marathon, MarathonConfig, Root

SEEDS = Path(__file__).resolve().parents[2] / "data" / "seeds"

# (seed file, a snippet that must occur in it, the JSON as posted)
APPS: list[tuple[str, str, str]] = [
    # 001: constraint examples (each posted with an otherwise minimal app).
    (
        "001_2c975c4227bb54e5.txt",
        '{ "constraints": [["hostname", "UNIQUE"]] }',
        '{"id": "c1", "cmd": "sleep 1", "constraints": [["hostname", "UNIQUE"]] }',
    ),
    (
        "001_2c975c4227bb54e5.txt",
        '{ "constraints": [["rack_id", "CLUSTER", "rack-1"]] }',
        '{"id": "c2", "cmd": "sleep 1", "constraints": [["rack_id", "CLUSTER", "rack-1"]] }',
    ),
    (
        "001_2c975c4227bb54e5.txt",
        '{ "constraints": [["rack_id", "GROUP_BY"]] }',
        '{"id": "c3", "cmd": "sleep 1", "constraints": [["rack_id", "GROUP_BY"]] }',
    ),
    # 001: the health check example ("..." replaced by a cmd; two stray closing braces dropped).
    (
        "001_2c975c4227bb54e5.txt",
        '"path": "/health",',
        """{"id": "my-app", "cmd": "sleep 1",
            "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/health", "maxConsecutiveFailures": 3,
                              "gracePeriodSeconds": 10, "intervalSeconds": 20, "timeoutSeconds": 5}]}""",
    ),
    # 001: Marathon 0.6's container form, no cmd.
    (
        "001_2c975c4227bb54e5.txt",
        '"image": "docker://mesosphere/cassandra:2.0.6"',
        """{"id": "cassandra", "container": {"image": "docker://mesosphere/cassandra:2.0.6",
            "options": ["-v", "/mnt:/mnt:rw", "-e", "CLUSTER_NAME=prod"]}}""",
    ),
    # 004: the three demo apps, verbatim.
    (
        "004_f5b88306a32eae46.txt",
        '"cmd" : "/mesos-dns -v=2 -config=$MESOS_SANDBOX/config.json"',
        """{"id": "mesos-dns", "cmd" : "/mesos-dns -v=2 -config=$MESOS_SANDBOX/config.json",
            "container": {"type": "DOCKER", "docker": {"image": "mesosphere/mesos-dns", "network": "HOST"}},
            "cpus": 0.25, "mem": 256.0, "instances": 1, "uris": [ "/home/vagrant/demo/mesos-dns/config.json" ]}""",
    ),
    (
        "004_f5b88306a32eae46.txt",
        '"image": "redis:3"',
        """{"id": "redis", "container": {"type": "DOCKER", "docker": {"image": "redis:3", "network": "HOST"}},
            "instances": 1, "cpus": 0.25, "mem": 64}""",
    ),
    (
        "004_f5b88306a32eae46.txt",
        '"REDIS_HOST": "redis.marathon.mesos"',
        """{"id": "frontend", "container": {"type": "DOCKER",
            "docker": {"image": "superguenter/node-redis-demo", "network": "HOST"}},
            "env": {"REDIS_HOST": "redis.marathon.mesos"}, "instances": 1, "cpus": 0.25,
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 10,
                              "intervalSeconds": 10, "maxConsecutiveFailures": 3}]}""",
    ),
    # 000: self-contained app (the URL is wrapped over two lines on the slide).
    (
        "000_73b061e8dd3916fd.txt",
        '"cmd": "java -jar RestApi.jar --server.port=$PORT0"',
        """{"id": "myrestapi", "instances": 2, "cpus": 0.3, "mem": 128, "ports": [0],
            "uris": ["http://storage.googleapis.com/restapi-jb/\\nRestApi.jar"],
            "cmd": "java -jar RestApi.jar --server.port=$PORT0"}""",
    ),
    (
        "000_73b061e8dd3916fd.txt",
        '"image": "libmesos/ubuntu"',
        """{"id": "ubuntu", "container": {"type": "DOCKER", "docker": {"image": "libmesos/ubuntu"}},
            "instances": 1, "cpus": 0.5, "mem": 512, "uris": [], "cmd": "while sleep 10; do date -u +%T; done"}""",
    ),
    (
        "000_73b061e8dd3916fd.txt",
        '"protocol": "COMMAND",',
        """{"id": "my-restapi-example-app", "cmd": "java -jar RestApi.jar --server.port=$PORT0",
            "healthChecks": [{"protocol": "COMMAND",
                              "command": { "value": "curl -f -X GET http://$HOST:$PORT0/simpleapi/info" },
                              "gracePeriodSeconds": 300, "intervalSeconds": 5, "timeoutSeconds": 3,
                              "maxConsecutiveFailures": 3}]}""",
    ),
    (
        "000_73b061e8dd3916fd.txt",
        '"path": "/simpleapi/info",',
        """{"id": "my-restapi-example-app", "cmd": "java -jar RestApi.jar --server.port=$PORT0",
            "healthChecks": [{"protocol": "HTTP", "path": "/simpleapi/info", "gracePeriodSeconds": 300,
                              "intervalSeconds": 5, "timeoutSeconds": 3, "maxConsecutiveFailures": 3}]}""",
    ),
    (
        "000_73b061e8dd3916fd.txt",
        '"constraints": [["hostname", "UNIQUE"]]',
        """{"id": "my-restapi-example-app", "instances": 2, "cpus": 0.3, "mem": 128, "ports": [0],
            "uris": ["http://storage.googleapis.com/restapi-jb/RestApi.jar"],
            "cmd": "java -jar RestApi.jar --server.port=$PORT", "constraints": [["hostname", "UNIQUE"]]}""",
    ),
    (
        "000_73b061e8dd3916fd.txt",
        '"constraints": [ ["hostname", "CLUSTER", "slave-3"] ]',
        """{"id": "my-re", "instances": 1, "cpus": 0.3, "mem": 128, "ports": [0],
            "uris": ["http://storage.googleapis.com/restapi-jb/RestApi.jar"],
            "cmd": "java -jar RestApi.jar --server.port=$PORT",
            "constraints": [ ["hostname", "CLUSTER", "slave-3"] ]}""",
    ),
    # 000: UNLIKE written as an object inside the constraint list (the slide lacks the closing bracket).
    (
        "000_73b061e8dd3916fd.txt",
        '"constraints": [[{"hostname": "UNLIKE", "slave": "slave-[2-3]"}]',
        """{"id": "my-re", "instances": 2, "cpus": 0.3, "mem": 128, "ports": [0],
            "uris": ["http://storage.googleapis.com/restapi-jb/RestApi.jar"],
            "cmd": "java -jar RestApi.jar --server.port=$PORT",
            "constraints": [[{"hostname": "UNLIKE", "slave": "slave-[2-3]"}]]}""",
    ),
    # 002 (OCR): a TCP health check, a named port definition, constraints, a persistent volume.
    (
        "002_4344479044959a34.txt",
        '"rails_app"',
        """{"id": "rails_app", "cmd": "bundle exec rails server", "cpus": 0.1,
        "mem": 512, "healthChecks": [{"protocol": "TCP", "portIndex": 0}]}""",
    ),
    (
        "002_4344479044959a34.txt",
        "SimpleHTTPServer",
        """{"id": "app", "cmd": "python -m SimpleHTTPServer $PORT0",
        "cpus": 0.5, "mem": 32, "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "http"}]}""",
    ),
    (
        "002_4344479044959a34.txt",
        "public_node",
        """{"id": "rails_app", "cmd": "bundle exec rails server", "cpus": 1,
        "mem": 32, "disk": 0, "instances": 10, "constraints": [["type", "CLUSTER", "public_node"],
        ["rack_id", "GROUP_BY"], ["rack_id", "MAX_PER", "3"], ["hostname", "UNIQUE"]]}""",
    ),
    (
        "002_4344479044959a34.txt",
        '"containerPath"',
        """{"id": "foo", "cmd": "./db.sh ./data", "cpus": 1, "mem": 32,
        "instances": 1, "container": {"type": "MESOS", "volumes": [{"containerPath": "data",
        "persistent": {"size": 128}, "mode": "RW"}]}}""",
    ),
    # 004: the scale request.
    ("004_f5b88306a32eae46.txt", '"instances": 2', '{"id": "frontend", "instances": 2, "cmd": "sleep 1"}'),
]

GROUPS: list[tuple[str, str, str]] = [
    (
        "000_73b061e8dd3916fd.txt",
        '"dependencies": ["/myapp/bdd"]',
        """{"id": "/myapp", "groups": [
             {"id": "/myapp/bdd", "apps": [{"id": "/myapp/postgresql", "cmd": "sleep 1"},
                                           {"id": "/myapp/redis", "cmd": "sleep 1"}]},
             {"id": "/myapp/service", "dependencies": ["/myapp/bdd"],
              "apps": [{"id": "/myapp/apache", "cmd": "sleep 1"}, {"id": "/myapp/tomcat", "cmd": "sleep 1"}]}]}""",
    ),
    (
        "002_4344479044959a34.txt",
        '"dependencies": ["/product/database"]',
        """{"id": "/product", "groups": [
             {"id": "/product/database", "apps": [{"id": "/product/mongo", "cmd": "sleep 1"},
                                                  {"id": "/product/mysql", "cmd": "sleep 1"}]},
             {"id": "/product/service", "dependencies": ["/product/database"],
              "apps": [{"id": "/product/rails-app", "cmd": "sleep 1"},
                       {"id": "/product/play-app", "cmd": "sleep 1"}]}]}""",
    ),
]


def _in_seed(seed: str, snippet: str) -> None:
    text = " ".join((SEEDS / seed).read_text(encoding="utf-8").split())
    assert " ".join(snippet.split()) in text, f"{snippet!r} not in {seed}"


@pytest.mark.parametrize(("seed", "snippet", "text"), APPS, ids=[f"{s[:3]}-{i}" for i, (s, _, _) in enumerate(APPS)])
def test_seed_app_is_accepted(seed: str, snippet: str, text: str) -> None:
    _in_seed(seed, snippet)
    app = normalize_app(json.loads(text))
    assert app["id"].startswith("/")
    assert app["cpus"] > 0 and app["mem"] > 0


def _seed_app(snippet: str) -> dict[str, Any]:
    return normalize_app(json.loads(next(text for _, snip, text in APPS if snip == snippet)))


def test_seed_details_are_kept() -> None:
    cassandra = _seed_app('"image": "docker://mesosphere/cassandra:2.0.6"')
    assert cassandra["container"]["docker"]["image"] == "mesosphere/cassandra:2.0.6"
    assert {"key": "volume", "value": "/mnt:/mnt:rw"} in cassandra["container"]["docker"]["parameters"]
    assert {"key": "env", "value": "CLUSTER_NAME=prod"} in cassandra["container"]["docker"]["parameters"]
    unlike = _seed_app('"constraints": [[{"hostname": "UNLIKE", "slave": "slave-[2-3]"}]')
    assert unlike["constraints"] == [["hostname", "UNLIKE", "slave-[2-3]"]]
    wrapped = _seed_app('"cmd": "java -jar RestApi.jar --server.port=$PORT0"')
    assert wrapped["fetch"][0]["uri"] == "http://storage.googleapis.com/restapi-jb/RestApi.jar"
    resident = _seed_app('"containerPath"')
    assert resident["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}


@pytest.mark.parametrize(("seed", "snippet", "text"), GROUPS)
def test_seed_group_is_accepted_with_dependency_order(seed: str, snippet: str, text: str) -> None:
    from flask import Flask

    from mesolite.marathon.api import create_app

    _in_seed(seed, snippet)
    marathon = Marathon(MarathonConfig(master="127.0.0.1:1", work_dir="/nonexistent"), MemoryStore())
    marathon.loaded.set()
    app: Flask = create_app(marathon.config, marathon)
    response = app.test_client().post("/v2/groups", data=text, content_type="application/json")
    assert response.status_code == 201, response.get_json()
    group = json.loads(text)
    deployment = next(iter(marathon.state.deployments.values()))
    order = [[a["app"] for a in step] for step in deployment.steps if step[0]["action"] == "ScaleApplication"]
    first, second = (sorted(a["id"] for a in g["apps"]) for g in group["groups"])
    assert order == [first, second]
    assert isinstance(Root(marathon.state).apps, dict)
