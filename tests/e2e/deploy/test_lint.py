"""The deployment files as CI checks them without any container: linters, `vagrant validate`, the systemd units
under `systemd-analyze verify`, and the cluster-wide values each inventory derives (never typed twice)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
UNITS = {
    "zookeeper.service",
    "mesos-master.service",
    "mesos-agent.service",
    "marathon.service",
    "chronos.service",
    "mesos-dns.service",
    "haproxy-bridge.service",
}


def run(*argv: str | Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    environ.update(env or {})
    return subprocess.run(
        [str(a) for a in argv], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"


def test_yamllint_is_clean() -> None:
    assert_ok(run(BIN / "yamllint", "-s", "-c", "deploy/yamllint.yml", "roles", "playbooks", "inventory", "deploy"))


def test_ansible_lint_production_profile_is_clean() -> None:
    result = run(
        BIN / "ansible-lint", "-c", "deploy/ansible-lint.yml", "--profile", "production", "roles", "playbooks",
        "deploy/molecule", "inventory", timeout=900,
    )  # fmt: skip
    assert_ok(result)


@pytest.mark.parametrize("inventory", ["playa", "production"])
def test_site_playbook_syntax(inventory: str) -> None:
    assert_ok(run(BIN / "ansible-playbook", "--syntax-check", "-i", f"inventory/{inventory}", "playbooks/site.yml"))
    assert_ok(run(BIN / "ansible-playbook", "--syntax-check", "-i", f"inventory/{inventory}", "playbooks/demo.yml"))


def derived(inventory: str, host: str) -> dict[str, object]:
    """The values the roles derive from the inventory, as a host of that inventory sees them."""
    names = ["mesolite_zk_url", "mesolite_masters", "mesolite_quorum", "mesolite_master_url", "mesolite_dns_servers"]
    expr = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    result = run(
        BIN / "ansible", host, "-i", f"inventory/{inventory}", "-c", "local", "-m", "ansible.builtin.debug",
        "-a", f"msg={expr}", "-e", "@roles/mesolite/defaults/main.yml", "-e", "@playbooks/group_vars/all.yml",
    )  # fmt: skip
    assert_ok(result)
    out = result.stdout
    body = json.loads(out[out.index("{") :])
    return json.loads(body["msg"]) if isinstance(body["msg"], str) else body["msg"]


def test_production_inventory_derives_quorum_zk_and_masters() -> None:
    values = derived("production", "agent3.example.com")
    zk = "zk://10.0.1.11:2181,10.0.1.12:2181,10.0.1.13:2181/mesos"
    assert values["mesolite_zk_url"] == zk
    assert values["mesolite_masters"] == ["10.0.1.11:5050", "10.0.1.12:5050", "10.0.1.13:5050"]
    assert int(values["mesolite_quorum"]) == 2  # 3 // 2 + 1
    assert values["mesolite_master_url"] == zk
    assert values["mesolite_dns_servers"] == ["10.0.1.11", "10.0.1.12", "10.0.1.13"]


def test_playa_inventory_is_one_node_at_10_141_141_10() -> None:
    values = derived("playa", "playa")
    assert values["mesolite_zk_url"] == "zk://10.141.141.10:2181/mesos"
    assert values["mesolite_masters"] == ["10.141.141.10:5050"]
    assert int(values["mesolite_quorum"]) == 1
    graph = run(BIN / "ansible-inventory", "-i", "inventory/playa", "--list")
    assert_ok(graph)
    groups = json.loads(graph.stdout)
    for group in ["zookeeper", "mesos_masters", "mesos_agents", "marathon", "chronos", "mesos_dns", "haproxy"]:
        members = groups[group].get("hosts", []) + [
            h for c in groups[group].get("children", []) for h in groups[c]["hosts"]
        ]
        assert members == ["playa"], group


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    result = run(
        BIN / "ansible-playbook", "-i", "inventory/production", "tests/e2e/deploy/render_units.yml",
        "-e", "render_host=master1.example.com", "-e", f"render_dir={tmp_path}",
        "-e", f"mesolite_venv={ROOT / '.venv'}", "-e", "@playbooks/group_vars/all.yml",
    )  # fmt: skip
    assert_ok(result)
    units = sorted(tmp_path.glob("*.service"))
    assert {u.name for u in units} == UNITS
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)], capture_output=True, text=True, check=False
    )
    # Units it cannot see (network-online.target deps are fine) show up as "not found" lines: none may be ours.
    problems = [line for line in verify.stderr.splitlines() if any(u.name in line for u in units)]
    assert verify.returncode == 0 and not problems, verify.stderr
    master = (tmp_path / "mesos-master.service").read_text()
    assert "--zk zk://10.0.1.11:2181,10.0.1.12:2181,10.0.1.13:2181/mesos --quorum 2" in master
    assert "Type=notify" in master and "ProtectSystem=strict" in master


@pytest.mark.parametrize("nodes", ["1", "3"])
def test_vagrantfile_validates(nodes: str, tmp_path: Path) -> None:
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed (.ci/run installs Debian's vagrant package)")
    env = {"VAGRANT_NO_PLUGINS": "1", "MESOLITE_NODES": nodes, "VAGRANT_DOTFILE_PATH": str(tmp_path / "dotvagrant")}
    result = run("vagrant", "validate", "--ignore-provider", env=env, timeout=120)
    assert_ok(result)
    assert "Vagrantfile validated successfully" in result.stdout
