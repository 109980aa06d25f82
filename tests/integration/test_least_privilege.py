"""Each host holds only the secrets its components use (docs/security.md).

A worker runs DAG authors' code, which can read whatever the worker's services read: so a
worker holds no Fernet key, no JWT signing secret, none of the masters' database or broker
passwords and none of the data tier's. The database admits each tier's role from that
tier's hosts only. (What a task can do with the worker's own credentials:
test_task_environment.py.)
"""

from __future__ import annotations

import subprocess

import pytest

from clusterops.lab import hosts
from clusterops.lab.hosts import LabSpec
from clusterops.release import role_defaults

from .conftest import lab_host

pytestmark = pytest.mark.lab

# What a worker's services use, and so may hold: its own database and broker passwords, the
# Sentinels' password, [api] secret_key (its log server checks the API server's requests with
# it), the DAG repository's deploy key, and the AWS keys of the connections tasks use.
WORKER_MAY_HOLD = {
    "vault_postgresql_airflow_worker_password",
    "vault_redis_airflow_worker_password",
    "vault_redis_sentinel_password",
    "vault_airflow_api_secret_key",
    "vault_airflow_dags_ssh_key",
    "vault_airflow_dags_ssh_public_key",
    "vault_airflow_aws_access_key_id",
    "vault_airflow_aws_secret_access_key",
    "vault_aws_source_external_id",
    "vault_aws_target_external_id",
}
# Where a secret could be on a worker: configuration, Airflow's home (logs, bundles), the
# environment and command line of every process.
PLACES = "/etc /var/lib/airflow /var/log /run /tmp /proc/[0-9]*/environ /proc/[0-9]*/cmdline"


def files_holding(lab: LabSpec, name: str, values: list[str]) -> list[str]:
    """The files on host `name` that hold any of `values` (sent on stdin, never as arguments)."""
    search = f"grep -rlsF -f /dev/stdin {PLACES} || true"
    found = subprocess.run(
        hosts.ssh_argv(lab, lab.host(name), "sudo", "sh", "-c", f"'{search}'"),
        input="\n".join(values) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [line for line in found.stdout.splitlines() if not line.startswith("/proc/self")]


def test_a_worker_holds_none_of_the_masters_or_the_data_tiers_secrets(
    lab: LabSpec, vault: dict[str, str]
) -> None:
    # Every secret of the vault but those a worker uses (and the PEM keys, line by line).
    forbidden = [
        value
        for name, value in vault.items()
        if name not in WORKER_MAY_HOLD and len(value) >= 16 and "\n" not in value
    ]
    assert {"vault_airflow_fernet_key", "vault_airflow_jwt_secret"} <= vault.keys()
    assert len(forbidden) >= 15
    for worker in lab.group("airflow_worker"):
        assert files_holding(lab, worker, forbidden) == [], worker
    # The check finds what is there: a master holds the Fernet key.
    master = lab.group("airflow_master")[0]
    assert files_holding(lab, master, [vault["vault_airflow_fernet_key"]]) != []


def test_the_database_admits_each_tier_as_its_own_role_only(lab: LabSpec) -> None:
    common = role_defaults("cluster_defaults")
    lines = set()
    for member in lab.group("postgres"):  # Patroni writes pg_hba.conf on every member
        found = lab_host(lab, member).run("sudo cat /etc/postgresql/15/main/pg_hba.conf").stdout
        lines |= {tuple(line.split()) for line in found.splitlines() if line.startswith("host ")}
    database = str(common["airflow_database_name"])
    admitted = {(user, address) for _, db, user, address, _ in lines if db == database}
    masters = {
        (str(common["airflow_database_user"]), f"{lab.host(n).address}/32")
        for n in lab.group("airflow_master")
    }
    workers = {
        (str(common["airflow_database_worker_user"]), f"{lab.host(n).address}/32")
        for n in lab.group("airflow_worker")
    }
    assert admitted == masters | workers
