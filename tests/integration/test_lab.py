"""The lab as a user meets it: reachable over SSH, systemd running, `up` idempotent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest
from testinfra.host import Host

from clusterops import runner
from clusterops.lab import hosts
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY, PROJECT_ROOT

pytestmark = pytest.mark.lab
LAB = [sys.executable, str(PROJECT_ROOT / "scripts" / "lab.py")]


def test_ansible_reaches_every_host_over_ssh(lab: LabSpec) -> None:
    results = runner.run_module(LAB_INVENTORY, "all", "ansible.builtin.ping")
    assert sorted(results) == sorted(h.name for h in lab.hosts)
    assert {host: outcome for host, (outcome, _) in results.items()} == {
        h.name: "ok" for h in lab.hosts
    }


def test_systemd_is_running(node: Host) -> None:
    state = node.run("systemctl is-system-running").stdout.strip()
    assert state == "running", node.run("systemctl --failed --no-legend").stdout


def test_login_user_becomes_root(node: Host) -> None:
    assert node.run("sudo -n id -u").stdout.strip() == "0"


def test_hostname_is_the_inventory_name(node: Host, lab_node: str) -> None:
    assert node.run("hostname").stdout.strip() == lab_node


def test_status_reports_every_host_healthy(lab: LabSpec) -> None:
    result = subprocess.run([*LAB, "status"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.hosts:
        assert f"{host.name:<12} {host.address:<15} running    running    ok" in result.stdout


def test_up_again_changes_nothing(lab: LabSpec) -> None:
    client = docker.from_env()
    label = {"label": f"{hosts.LABEL_LAB}={lab.name}"}
    before = {c.name: c.id for c in client.containers.list(filters=label)}
    known_before = hosts.KNOWN_HOSTS.read_text()
    result = subprocess.run([*LAB, "up"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Starting lab host" not in result.stdout
    assert {c.name: c.id for c in client.containers.list(filters=label)} == before
    assert hosts.KNOWN_HOSTS.read_text() == known_before


def test_subnet_clash_is_refused_and_nothing_is_created(lab: LabSpec, tmp_path: Path) -> None:
    clash = tmp_path / "clash"
    (clash / "group_vars" / "all").mkdir(parents=True)
    (clash / "hosts.yml").write_text(
        f"all:\n  hosts:\n    stray-1:\n      ansible_host: {lab.hosts[0].address}\n"
    )
    (clash / "group_vars" / "all" / "lab.yml").write_text(
        f"lab_name: clash-test\nlab_subnet: {lab.subnet}\nansible_user: admin\n"
    )
    result = subprocess.run(
        [*LAB, "-i", str(clash), "up"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 3, result.stderr
    assert f"overlaps {lab.subnet} of Docker network '{lab.name}'" in result.stderr
    client = docker.from_env()
    assert client.networks.list(names=["clash-test"]) == []
    assert (
        client.containers.list(all=True, filters={"label": f"{hosts.LABEL_LAB}=clash-test"}) == []
    )
