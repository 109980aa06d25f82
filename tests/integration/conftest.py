"""Fixtures for tests against the running lab (`make lab` first; `make integration` does).

Hosts are reached the way Ansible reaches them: over SSH as the lab's sudo user, with the
key and pinned host keys under .lab/.
"""

from __future__ import annotations

import pytest
import testinfra
from testinfra.host import Host

from clusterops.lab import hosts, topology
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY


def _spec() -> LabSpec:
    return topology.lab_spec(LAB_INVENTORY)


def lab_host(spec: LabSpec, name: str) -> Host:
    address = spec.host(name).address
    return testinfra.get_host(
        f"ssh://{spec.user}@{address}",
        ssh_identity_file=str(hosts.SSH_KEY),
        ssh_extra_args=f"-o UserKnownHostsFile={hosts.KNOWN_HOSTS} -o StrictHostKeyChecking=yes",
    )


@pytest.fixture(scope="session")
def lab() -> LabSpec:
    return _spec()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`lab_node` runs a test once per lab host."""
    if "lab_node" in metafunc.fixturenames:
        names = [h.name for h in _spec().hosts]
        metafunc.parametrize("lab_node", names)


@pytest.fixture
def node(lab: LabSpec, lab_node: str) -> Host:
    return lab_host(lab, lab_node)
