"""A canned ``/master/state`` in the shape upstream Mesos-DNS' tests use: four agents (one IPv6), frameworks with
and without a pid, a name with spaces and mixed case, DiscoveryInfo with named ports, two tasks sharing a
DiscoveryInfo name, a killed task, container IPs from every IP source, and a task without ports."""

from __future__ import annotations

import copy
from typing import Any

AGENT = "20160107-001256-134875658-5050-27524"
LIQUOR_ID = "liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5"


def _status(state: str, ts: float, **extra: Any) -> dict[str, Any]:
    return {"state": state, "timestamp": ts, **extra}


def _ports(*ranges: tuple[int, int]) -> dict[str, Any]:
    return {"cpus": 0.1, "mem": 32.0, "ports": "[" + ", ".join(f"{a}-{b}" for a, b in ranges) + "]"}


def _docker(ip: str) -> list[dict[str, str]]:
    return [{"key": "Docker.NetworkSettings.IPAddress", "value": ip}]


LIQUOR_DISCOVERY = {
    "visibility": "FRAMEWORK",
    "name": "liquor.store",
    "ports": {
        "ports": [
            {"number": 80, "name": "http", "protocol": "tcp"},
            {"number": 443, "name": "https", "protocol": "tcp"},
        ]
    },
}


def _task(name: str, task_id: str, agent: str, state: str = "TASK_RUNNING", **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": name,
        "framework_id": "fw",
        "slave_id": f"{AGENT}-{agent}",
        "state": state,
        "resources": extra.pop("resources", _ports()),
        "statuses": extra.pop("statuses", [_status(state, 1.0)]),
        **extra,
    }


STATE: dict[str, Any] = {
    "leader": "master@144.76.157.37:5050",
    "slaves": [
        {"id": f"{AGENT}-S2", "hostname": "a", "pid": "slave(1)@1.2.3.10:5051"},
        {"id": f"{AGENT}-0", "hostname": "b", "pid": "slave(1)@1.2.3.11:5051"},
        {"id": f"{AGENT}-1", "hostname": "c", "pid": "slave(1)@1.2.3.12:5051"},
        {"id": f"{AGENT}-3", "hostname": "d", "pid": "slave(1)@[2001:db8::1]:5051"},
    ],
    "frameworks": [
        {
            "name": "ipv6-framework",
            "pid": "scheduler(1)@[2001:db8::1]:25501",
            "tasks": [
                _task(
                    "toy-store",
                    "toy-store.b8db9f73-562f-11e4-a088-c20493233aa5",
                    "3",
                    resources=_ports((31354, 31354), (31355, 31355)),
                    statuses=[
                        _status(
                            "TASK_RUNNING",
                            1.0,
                            container_status={
                                "network_infos": [
                                    {"ip_addresses": [{"ip_address": "12.0.1.3"}]},
                                    {"ip_addresses": [{"ip_address": "12.0.1.2"}, {"ip_address": "fd01:b::1:8000:2"}]},
                                ]
                            },
                        )
                    ],
                )
            ],
        },
        {
            "name": "chronos with a space AND MIXED CASE-2.0.1",
            "pid": "scheduler(2)@1.2.3.12:25501",
            "tasks": [
                _task(
                    "some-box", "some-box.b8db9f73-562f-11e4-a088-c20493233aa5", "0", resources=_ports((31354, 31354))
                )
            ],
        },
        {"name": "no pid", "hostname": "localhost", "tasks": []},
        {
            "name": "marathon",
            "pid": "scheduler(1)@1.2.3.11:25501",
            "hostname": "google.com",
            "tasks": [
                _task(
                    "poseidon",
                    "poseidon.bc4e3796-e8b5-11e4-b4c5-3e9d9b99a2b1",
                    "0",
                    "TASK_KILLED",
                    resources=_ports((31112, 31112)),
                ),
                _task(
                    "liquor.store",
                    LIQUOR_ID,
                    "0",
                    resources=_ports((31354, 31354), (31355, 31355)),
                    discovery=LIQUOR_DISCOVERY,
                    statuses=[
                        _status("TASK_STARTING", 0.5),
                        _status("TASK_RUNNING", 1.0, labels=_docker("10.3.0.4")),
                        _status("TASK_RUNNING", 3.0, labels=_docker("10.3.0.1")),
                        _status("TASK_RUNNING", 2.0, labels=[]),
                    ],
                ),
                _task(
                    "big.dog2",
                    LIQUOR_ID,
                    "0",
                    resources=_ports((31354, 31354), (31355, 31355)),
                    discovery={**LIQUOR_DISCOVERY, "name": "big.dog"},
                    statuses=[_status("TASK_RUNNING", 3.0, labels=_docker("10.3.0.1"))],
                ),
                _task(
                    "non-human-readable-liquor-store",
                    "liquor-store.b71166c1-562f-11e4-a088-c20493233aa5",
                    "1",
                    resources=_ports((31737, 31738)),
                    discovery=LIQUOR_DISCOVERY,
                    statuses=[_status("TASK_RUNNING", 1.0, labels=_docker("10.3.0.2"))],
                ),
                _task(
                    "car.store",
                    "car-store.43758382-562f-11e4-a088-c20493233aa5",
                    "0",
                    resources=_ports((31364, 31364), (31365, 31365)),
                ),
                _task("chronos", "chronos.49b91a9a-5621-11e4-a088-c20493233aa5", "0", resources=_ports((31332, 31332))),
                _task(
                    "nginx",
                    "nginx.1bc32344-5693-11e4-a088-c20493233aa5",
                    "0",
                    resources={"cpus": 0.1, "ports": "[]"},
                    statuses=[
                        _status(
                            "TASK_RUNNING",
                            1.0,
                            labels=[{"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": "10.3.0.3"}],
                        )
                    ],
                ),
                _task(
                    "reviewbot", "reviewbot.8c9b3434-5622-11e4-a088-c20493233aa5", "1", resources=_ports((31744, 31744))
                ),
            ],
        },
    ],
}

# The config upstream's generator tests use with this document.
CONFIG = {
    "masters": ["144.76.157.37:5050"],
    "domain": "mesos",
    "SOAMname": "mesos-dns.mesos.",
    "listener": "127.0.0.1",
    "IPSources": ["netinfo", "docker", "mesos", "host"],
    "EnforceRFC952": True,
}


def state() -> dict[str, Any]:
    return copy.deepcopy(STATE)
