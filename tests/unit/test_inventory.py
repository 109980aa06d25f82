"""Inventory edits keep comments and order, reject bad names and write atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clusterops.console import Failure
from clusterops.inventory import Inventory, validate_host_name


def test_round_trip_is_byte_identical(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    assert Inventory(hosts).render() == hosts.read_text()


def add_worker_9(hosts: Path) -> None:
    inventory = Inventory(hosts)
    inventory.add_host("airflow_worker", "worker-9", {"ansible_host": "172.30.89.109"})
    inventory.save()


def test_add_host_keeps_comments_and_order(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_text()
    add_worker_9(hosts)
    after = hosts.read_text()
    assert after.startswith(before.split("all:")[0])  # the header comment survived
    assert after.index("worker-2") < after.index("worker-9") < len(after)
    assert Inventory(hosts).group_hosts("airflow_worker") == ["worker-1", "worker-2", "worker-9"]


def test_remove_host_restores_the_original(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_text()
    add_worker_9(hosts)
    inventory = Inventory(hosts)
    inventory.remove_host("airflow_worker", "worker-9")
    inventory.save()
    assert hosts.read_text() == before


def test_duplicate_host_is_rejected(lab_inventory: Path) -> None:
    inventory = Inventory(lab_inventory / "hosts.yml")
    with pytest.raises(Failure, match="worker-1' is already in inventory") as caught:
        inventory.add_host("airflow_master", "worker-1", {})
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["Worker-1", "-w", "w-", "w_1", "w.example", "a" * 64, ""])
def test_invalid_host_names_are_rejected(name: str) -> None:
    with pytest.raises(Failure, match="invalid host name"):
        validate_host_name(name)


def test_unknown_group_is_named(lab_inventory: Path) -> None:
    with pytest.raises(Failure, match="no group 'nope'"):
        Inventory(lab_inventory / "hosts.yml").add_host("nope", "x-1", {})


def test_save_keeps_mode_and_leaves_no_temporary_file(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    hosts.chmod(0o600)
    inventory = Inventory(hosts)
    inventory.add_host("airflow_worker", "worker-3", {"ansible_host": "172.30.89.103"})
    inventory.save()
    assert hosts.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in lab_inventory.iterdir()) == ["group_vars", "hosts.yml"]


def test_failed_write_leaves_the_file_untouched(
    lab_inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_text()
    inventory = Inventory(hosts)
    inventory.add_host("airflow_worker", "worker-3", {"ansible_host": "172.30.89.103"})

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        inventory.save()
    assert hosts.read_text() == before
    assert sorted(p.name for p in lab_inventory.iterdir()) == ["group_vars", "hosts.yml"]


def test_not_an_inventory(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(Failure, match="not a YAML inventory"):
        Inventory(path)


def test_groups_lists_nested_groups(lab_inventory: Path) -> None:
    groups = Inventory(lab_inventory / "hosts.yml").groups()
    assert {"postgres", "airflow", "airflow_master", "airflow_worker", "aws_emulator"} <= groups
    assert "worker-1" not in groups
