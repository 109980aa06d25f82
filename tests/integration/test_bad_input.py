"""Bad input stops site.yml before anything changes, with a message naming the problem."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from clusterops import secrets
from clusterops.cluster import AirflowAPI
from clusterops.inventory import Inventory
from clusterops.lab import hosts, topology
from clusterops.paths import LAB_INVENTORY, LAB_STATE_DIR, PROJECT_ROOT
from tests.integration.conftest import SMOKE_DAG

pytestmark = pytest.mark.lab


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A copy of the lab inventory (vault included) that a test may spoil."""
    copy = tmp_path / "inventory"
    shutil.copytree(LAB_INVENTORY, copy)
    return copy


def git_server_address() -> str:
    spec = topology.lab_spec(LAB_INVENTORY)
    return spec.host(spec.group("git_server")[0]).address


def site(inventory: Path, *extra: str, playbook: str = "site.yml") -> tuple[int, str]:
    """Run site.yml (or `playbook`) against the lab's hosts with `inventory`; return its exit
    code and output."""
    git_server = git_server_address()
    connection = {  # the lab's key, pinned host keys and wheelhouse, wherever the copy lives
        "airflow_wheelhouse_dir": str(LAB_STATE_DIR / "wheelhouse"),
        "ansible_ssh_private_key_file": str(hosts.SSH_KEY),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={hosts.KNOWN_HOSTS} -o StrictHostKeyChecking=yes"
        ),
        "airflow_dags_repo_known_hosts": [
            line
            for line in hosts.KNOWN_HOSTS.read_text().splitlines()
            if git_server in line.split(" ", 1)[0].split(",")
        ],
    }
    result = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(inventory),
            playbook,
            "-e",
            json.dumps(connection),
            *extra,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def assert_stopped_unchanged(rc: int, output: str, message: str) -> None:
    assert rc != 0, output[-3000:]
    assert re.search(message, output), output[-3000:]
    assert not re.search(r"changed=[1-9]", output), output[-3000:]


def test_missing_secret_is_named(inventory: Path) -> None:
    secrets.vault_file(inventory).unlink()
    rc, output = site(inventory)
    assert_stopped_unchanged(
        rc, output, r"the vault of .*: vault_postgresql_airflow_password is missing;.*init_secrets"
    )


def test_wrong_vault_password_stops_at_the_start(inventory: Path, tmp_path: Path) -> None:
    other = secrets.Vault(secrets.vault_file(inventory), b"another password")
    other.write(secrets.complete({})[0])
    rc, output = site(inventory)
    # Ansible's own message; it does not name the file (scripts/init_secrets.py does).
    assert_stopped_unchanged(rc, output, r"Decryption failed")


def test_invalid_queue_name_is_named(inventory: Path) -> None:
    rc, output = site(inventory, "-e", '{"airflow_worker_queues": ["default", "bad queue!"]}')
    assert_stopped_unchanged(rc, output, r"worker-1: airflow_worker_queues: 'bad queue!' must be")


def test_concurrency_over_the_limit_is_refused_as_by_add_worker(inventory: Path) -> None:
    """One rule (plugins/filter/airflow_cluster.py): preflight refuses what add_worker.py does."""
    rc, output = site(inventory, "-e", '{"airflow_worker_concurrency": 512}')
    assert_stopped_unchanged(rc, output, r"worker-1: airflow_worker_concurrency must be .* to 256")


def test_max_connections_of_the_inventory_wins(inventory: Path) -> None:
    """postgresql_max_connections in group_vars beats the size the playbook computes."""
    (inventory / "group_vars" / "postgres.yml").write_text("postgresql_max_connections: 250\n")
    rc, output = site(inventory, "--check", "--diff", playbook="playbooks/postgres.yml")
    assert rc == 0, output[-3000:]
    assert "max_connections = 250" in output, output[-3000:]


def test_malformed_connection_is_named(inventory: Path) -> None:
    bad = {"airflow_connections": [{"conn_id": "aws_source", "conn_type": "aws", "user": "x"}]}
    rc, output = site(inventory, "-e", json.dumps(bad))
    assert_stopped_unchanged(
        rc, output, r"airflow_connections on master-1: the connection\s+'aws_source' needs"
    )


def test_unsupported_os_names_the_host(inventory: Path) -> None:
    rc, output = site(inventory, "-e", '{"__check_host_os": ["Debian 13"]}')
    assert_stopped_unchanged(rc, output, r"master-1 runs Debian 12\.\d+; supported: Debian 13")


def test_two_hosts_with_one_address_are_named(inventory: Path) -> None:
    edit = Inventory(inventory / "hosts.yml")
    edit.group("airflow_worker")["hosts"]["worker-2"]["ansible_host"] = "172.30.89.101"
    edit.save()
    rc, output = site(inventory)
    assert_stopped_unchanged(
        rc, output, r"172\.30\.89\.101 is the cluster_address of several hosts: worker-1, worker-2"
    )


def test_unreachable_host_stops_everything(inventory: Path) -> None:
    edit = Inventory(inventory / "hosts.yml")
    edit.add_host(
        "airflow_worker", "worker-9", {"ansible_host": "172.30.89.109"}
    )  # no such lab host
    edit.save()
    rc, output = site(inventory)
    assert_stopped_unchanged(rc, output, r"worker-9.*UNREACHABLE")


def test_duplicate_host_name_in_a_group_is_an_error(inventory: Path) -> None:
    hosts_file = inventory / "hosts.yml"
    hosts_file.write_text(
        hosts_file.read_text().replace(
            "            worker-2:\n",
            "            worker-1:\n"
            "              ansible_host: 172.30.89.103\n"
            "            worker-2:\n",
        )
    )
    rc, output = site(inventory)
    assert_stopped_unchanged(rc, output, r"(?i)duplicate.*worker-1")


def test_unreachable_dag_repository_stops_preflight(inventory: Path) -> None:
    url = f"ssh://git-read@{git_server_address()}/srv/git/missing.git"
    rc, output = site(inventory, "-e", json.dumps({"airflow_dags_repo_url": url}))
    assert_stopped_unchanged(
        rc,
        output,
        rf"DAG bundle 'dags': master-1 cannot read {re.escape(url)} .*"
        r"does not appear to be a git repository",
    )


def test_missing_dag_ref_stops_preflight_and_dags_keep_running(
    inventory: Path, api: AirflowAPI
) -> None:
    rc, output = site(inventory, "-e", '{"airflow_dags_repo_ref": "no-such-branch"}')
    assert_stopped_unchanged(
        rc, output, r"DAG bundle 'dags': master-1 cannot find ref no-such-branch in ssh://"
    )
    run_id = api.trigger(SMOKE_DAG)
    assert api.wait_for_run(SMOKE_DAG, run_id, timeout=300)["state"] == "success"


@pytest.mark.parametrize("operation", ["add", "remove"])
def test_worker_operations_name_a_host_missing_from_the_inventory(
    inventory: Path, operation: str
) -> None:
    rc, output = site(
        inventory, "-e", "worker=worker-9", playbook=f"playbooks/{operation}_worker.yml"
    )
    assert_stopped_unchanged(rc, output, rf"name the worker to {operation} .*\(got worker-9\)")


def test_a_fernet_rotation_that_was_not_started_is_refused() -> None:
    """playbooks/rotate_fernet_key.yml without a retired key in the vault re-encrypts nothing
    and names the step that starts a rotation."""
    rc, output = site(LAB_INVENTORY, playbook="playbooks/rotate_fernet_key.yml")
    assert_stopped_unchanged(
        rc, output, r"no vault_airflow_fernet_key_retired, so there is\s+nothing to re-encrypt"
    )
    assert re.search(r"--rotate vault_airflow_fernet_key", output), output[-3000:]
