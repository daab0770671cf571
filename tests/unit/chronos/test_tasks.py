"""Job runs as Mesos TaskInfos: ids, command and Docker translation, resources, constraints."""

from __future__ import annotations

from typing import Any

from mesolite.chronos.jobs import JobDefaults, read_job
from mesolite.chronos.tasks import (
    OfferSpace,
    constraints_match,
    offer_attributes,
    parse_task_id,
    task_id,
    task_info,
)


def offer(cpus: float = 4, mem: float = 4096, disk: float = 10000, **extra: Any) -> dict[str, Any]:
    resources = [
        {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}
        for name, value in (("cpus", cpus), ("mem", mem), ("disk", disk))
    ]
    return {"id": {"value": "o1"}, "agent_id": {"value": "S1"}, "hostname": "node-1", "resources": resources, **extra}


def job(**fields: Any) -> dict[str, Any]:
    return read_job({"name": "report", "command": "echo hi", "schedule": "R//PT1H", **fields}, JobDefaults(), "s")


def info_for(the_job: dict[str, Any], arguments: str | None = None, the_offer: dict | None = None) -> dict[str, Any]:
    tid = task_id(the_job["name"], 1700000000000, 1, arguments or "")
    ref = parse_task_id(tid)
    assert ref is not None
    result = task_info(the_job, tid, ref, arguments, OfferSpace.of(the_offer or offer()))
    assert result is not None
    return result


def test_task_ids_keep_chronos_format_and_strip_semicolons() -> None:
    tid = task_id("nightly.report", 1700000000000, 2, "--since today; rm -rf /")
    assert tid == "ct:1700000000000:2:nightly.report:--since today rm -rf /"
    ref = parse_task_id(tid)
    assert ref is not None and (ref.due_ms, ref.attempt, ref.job) == (1700000000000, 2, "nightly.report")
    assert parse_task_id("marathon-app.1234") is None


def test_command_task() -> None:
    info = info_for(job(owner="ops@example.com", environmentVariables=[{"name": "STAGE", "value": "prod"}]))
    assert info["name"] == "ChronosTask:report"
    assert info["agent_id"] == {"value": "S1"}
    assert info["command"]["shell"] is True and info["command"]["value"] == "echo hi"
    assert info["command"]["user"] == "root"
    env = {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}
    assert env["CHRONOS_JOB_NAME"] == "report" and env["CHRONOS_JOB_OWNER"] == "ops@example.com"
    assert env["mesos_task_id"] == env["MESOS_TASK_ID"] == info["task_id"]["value"]
    assert env["CHRONOS_RESOURCE_CPU"] == "0.1" and env["CHRONOS_RESOURCE_MEM"] == "128.0"
    assert env["CHRONOS_JOB_RUN_ATTEMPT"] == "1" and env["CHRONOS_JOB_RUN_TIME"] == "1700000000000"
    assert env["HOST"] == "node-1" and env["STAGE"] == "prod"
    resources = {r["name"]: r["scalar"]["value"] for r in info["resources"]}
    assert resources == {"cpus": 0.1, "mem": 128.0, "disk": 256.0}
    assert "container" not in info


def test_job_variables_never_override_chronos_ones() -> None:
    info = info_for(job(environmentVariables=[{"name": "CHRONOS_JOB_NAME", "value": "spoof"}]))
    env = {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}
    assert env["CHRONOS_JOB_NAME"] == "report"


def test_run_now_arguments_are_appended_to_a_shell_command() -> None:
    assert info_for(job(), arguments="--full")["command"]["value"] == "echo hi --full"


def test_non_shell_command_passes_arguments_with_argv0() -> None:
    info = info_for(job(shell=False, command="/bin/echo", arguments=["a", "b c"]))
    assert info["command"]["shell"] is False
    assert info["command"]["value"] == "/bin/echo"
    assert info["command"]["arguments"] == ["/bin/echo", "a", "b c"]


def test_fetch_uris() -> None:
    info = info_for(job(fetch=[{"uri": "http://h/tool.tgz", "cache": True, "output_file": "t.tgz"}]))
    assert info["command"]["uris"] == [
        {"value": "http://h/tool.tgz", "executable": False, "extract": True, "cache": True, "output_file": "t.tgz"}
    ]


def test_docker_job_translates_to_a_docker_container_info() -> None:
    info = info_for(
        job(
            shell=False,
            command="date",
            arguments=["-u"],
            container={
                "type": "DOCKER",
                "image": "libmesos/ubuntu",
                "network": "BRIDGE",
                "forcePullImage": True,
                "volumes": [{"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}],
                "parameters": [{"key": "memory-swap", "value": "-1"}],
            },
        )
    )
    assert info["container"] == {
        "type": "DOCKER",
        "volumes": [{"container_path": "/data", "mode": "RO", "host_path": "/srv/data"}],
        "docker": {
            "image": "libmesos/ubuntu",
            "network": "BRIDGE",
            "force_pull_image": True,
            "parameters": [{"key": "memory-swap", "value": "-1"}],
        },
    }
    # A container gets the job's arguments as they are (the image's entrypoint semantics).
    assert info["command"]["arguments"] == ["-u"]


def test_mesos_container_uses_a_docker_image() -> None:
    info = info_for(job(container={"type": "MESOS", "image": "alpine:3", "networkName": "overlay"}))
    assert info["container"]["type"] == "MESOS"
    assert info["container"]["mesos"] == {"image": {"type": "DOCKER", "docker": {"name": "alpine:3"}, "cached": True}}
    assert info["container"]["network_infos"] == [{"name": "overlay"}]


def test_offer_too_small_and_packing() -> None:
    big = job(cpus=3, mem=100)
    space = OfferSpace.of(offer(cpus=4))
    tid = task_id("report", 1, 0, "")
    ref = parse_task_id(tid)
    assert ref is not None
    assert task_info(big, tid, ref, None, space) is not None
    assert task_info(big, tid, ref, None, space) is None  # only 1 cpu left
    assert task_info(job(cpus=1), tid, ref, None, space) is not None


def test_reserved_resources_are_preferred() -> None:
    the_offer = offer()
    the_offer["resources"].append({"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}, "role": "batch"})
    info = info_for(job(), the_offer=the_offer)
    cpus = next(r for r in info["resources"] if r["name"] == "cpus")
    assert cpus["role"] == "batch"


def test_constraints() -> None:
    attrs = offer_attributes(
        offer(
            attributes=[
                {"name": "rack", "type": "TEXT", "text": {"value": "rack-2"}},
                {"name": "gen", "type": "SCALAR", "scalar": {"value": 3}},
            ]
        )
    )
    assert attrs["hostname"] == ["node-1"]
    assert constraints_match([["rack", "EQUALS", "rack-2"]], attrs)
    assert not constraints_match([["rack", "EQUALS", "rack-1"]], attrs)
    assert constraints_match([["rack", "LIKE", "rack-[23]"], ["hostname", "LIKE", "node-.*"]], attrs)
    assert not constraints_match([["rack", "LIKE", "rack"]], attrs)  # a full match, not a search
    assert constraints_match([["rack", "UNLIKE", "rack-1"]], attrs)
    assert constraints_match([["zone", "UNLIKE", "x"]], attrs)  # absent attribute: UNLIKE holds
    assert not constraints_match([["zone", "EQUALS", "x"]], attrs)
    assert constraints_match([["gen", "EQUALS", "3"]], attrs) and constraints_match([["gen", "EQUALS", "3.0"]], attrs)
