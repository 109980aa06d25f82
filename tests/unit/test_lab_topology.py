"""The lab's hosts come from the lab inventory; resizing edits it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from clusterops.console import Failure
from clusterops.inventory import Inventory
from clusterops.lab import topology

SUBNET = ipaddress.IPv4Network("172.30.89.0/24")


def test_default_topology(lab_inventory: Path) -> None:
    spec = topology.lab_spec(lab_inventory)
    assert spec.name == "airflow-lab"
    assert spec.user == "admin"
    assert spec.subnet == SUBNET
    names = sorted(h.name for h in spec.hosts)
    assert names == [
        "aws-1", "backup-1", "data-1", "data-2", "data-3", "git-1", "master-1", "master-2",
        "scratch-1", "worker-1", "worker-2",
    ]  # fmt: skip
    assert all(ipaddress.IPv4Address(h.address) in SUBNET for h in spec.hosts)


def test_resize_adds_numbered_hosts_at_their_addresses(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    assert topology.resize(hosts, SUBNET, "airflow_worker", 4) == []
    spec = topology.lab_spec(lab_inventory)
    assert spec.host("worker-3").address == "172.30.89.103"
    assert spec.host("worker-4").address == "172.30.89.104"


def test_resize_removes_the_highest_numbers(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    assert topology.resize(hosts, SUBNET, "airflow_worker", 1) == ["worker-2"]
    assert Inventory(hosts).group_hosts("airflow_worker") == ["worker-1"]


@pytest.mark.parametrize(("group", "size"), [("airflow_worker", 0), ("airflow_master", 10)])
def test_resize_rejects_sizes_out_of_range(lab_inventory: Path, group: str, size: int) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_text()
    with pytest.raises(Failure, match=f"{group} size must be between 1 and") as caught:
        topology.resize(hosts, SUBNET, group, size)
    assert caught.value.exit_code == 2
    assert hosts.read_text() == before


def test_unknown_host_is_named_with_the_known_ones(lab_inventory: Path) -> None:
    spec = topology.lab_spec(lab_inventory)
    with pytest.raises(Failure, match=r"unknown lab host .worker-7. .*worker-1, worker-2"):
        spec.host("worker-7")


def test_missing_lab_settings_are_named(lab_inventory: Path) -> None:
    (lab_inventory / "group_vars" / "all" / "lab.yml").write_text("---\nansible_user: admin\n")
    with pytest.raises(Failure, match="does not set 'lab_name'"):
        topology.lab_spec(lab_inventory)
