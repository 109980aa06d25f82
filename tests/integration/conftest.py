"""Fixtures for tests against the running lab (`make lab` first; `make integration` does).

Hosts are reached the way Ansible reaches them: over SSH as the lab's sudo user, with the
key and pinned host keys under .lab/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import testinfra
from testinfra.host import Host

from clusterops import runner, secrets
from clusterops.cluster import AirflowAPI, Credentials, Endpoints, Flower, wait_for
from clusterops.lab import hosts, topology
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD


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


# The modules that break something (restarts, hosts killed, cut off, failed over) run last, in
# this order, so that the tests before them see a cluster no fault has touched; then the
# backups' tests, whose restore replays the WAL across the failovers; then a re-run of
# site.yml checks that what the faults left changes nothing.
FAULT_MODULES = (
    "test_fernet_rotation",
    "test_rolling_restart",
    "test_chaos_workers",
    "test_chaos_masters",
    "test_failover_data_tier",
    "test_backups",
    "test_redeploy",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = Path(item.nodeid.split("::", 1)[0]).stem
        return FAULT_MODULES.index(module) + 1 if module in FAULT_MODULES else 0

    items.sort(key=rank)  # stable: the order within each rank is kept


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`lab_node` runs a test once per lab host."""
    if "lab_node" in metafunc.fixturenames:
        names = [h.name for h in _spec().hosts]
        metafunc.parametrize("lab_node", names)


@pytest.fixture
def node(lab: LabSpec, lab_node: str) -> Host:
    return lab_host(lab, lab_node)


SMOKE_DAG = "cluster_smoke"


@pytest.fixture(scope="session")
def credentials() -> Credentials:
    return Credentials.from_vault()


@pytest.fixture(scope="session")
def master(lab: LabSpec) -> str:
    return lab.group("airflow_master")[0]


@pytest.fixture(scope="session")
def api(endpoints: Endpoints) -> AirflowAPI:
    """The REST API as users reach it: on the masters' virtual IP."""
    return endpoints.api


@pytest.fixture(scope="session")
def vip() -> str:
    """The masters' virtual IP (inventories/lab/group_vars/all/cluster.yml)."""
    hostvars, groups = runner.inventory_hostvars(LAB_INVENTORY)
    return str(hostvars[groups["airflow_master"][0]]["airflow_vip"])


@pytest.fixture(scope="session")
def masters(lab: LabSpec) -> list[str]:
    found = lab.group("airflow_master")
    if len(found) < 2:  # a virtual IP and a lock need two masters to move between
        pytest.skip("the lab has fewer than 2 masters")
    return found


@pytest.fixture(scope="session")
def endpoints() -> Endpoints:
    return Endpoints.from_inventory(LAB_INVENTORY, LAB_VAULT_PASSWORD)


@pytest.fixture(scope="session")
def flower(endpoints: Endpoints) -> Flower:
    return endpoints.flower


@pytest.fixture(scope="session")
def smoke_run(api: AirflowAPI) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run of the smoke DAG (24 mapped tasks), finished; with its task instances."""
    wait_for(f"DAG {SMOKE_DAG} to be parsed", lambda: api.dag(SMOKE_DAG), timeout=120)
    run_id = api.trigger(SMOKE_DAG)
    run = api.wait_for_run(SMOKE_DAG, run_id, timeout=300)
    return run, api.task_instances(SMOKE_DAG, run_id)


@pytest.fixture(scope="session")
def vault() -> dict[str, str]:
    """The lab inventory's vault, decrypted."""
    return secrets.Vault(
        secrets.vault_file(LAB_INVENTORY), secrets.read_password(LAB_VAULT_PASSWORD)
    ).read()
