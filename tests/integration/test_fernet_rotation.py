"""Rotating the Fernet key (docs/operations.md): the old key decrypts until everything is
re-encrypted with the new one, then it is gone, and every connection and variable still
reads back.

The four steps a user runs: init_secrets.py --rotate, playbooks/rotate_fernet_key.yml,
init_secrets.py --drop-retired, playbooks/master.yml. It restarts every master twice (one
at a time), so it runs with the modules that break something.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from clusterops import runner, secrets
from clusterops.cluster import AirflowAPI
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD, PROJECT_ROOT

from .conftest import lab_host

pytestmark = pytest.mark.lab


def init_secrets(*args: str) -> None:
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts/init_secrets.py"), *args],
        check=True,
        timeout=120,
    )


def read_vault() -> dict[str, str]:
    return secrets.Vault(
        secrets.vault_file(LAB_INVENTORY), secrets.read_password(LAB_VAULT_PASSWORD)
    ).read()


def test_a_rotated_fernet_key_still_decrypts_every_connection_and_variable(
    lab: LabSpec, api: AirflowAPI
) -> None:
    marker, secret = uuid.uuid4().hex, uuid.uuid4().hex
    probe = f"fernet_rotation_{marker[:8]}"
    # Encrypted in the database: the connection's password and extra, the variable's value.
    # (The API masks the password, and every copy of it: the extra holds another value.)
    api.request(
        "POST",
        "/api/v2/connections",
        json={"connection_id": probe, "conn_type": "generic", "password": secret,
              "extra": f'{{"marker": "{marker}"}}'},
    )  # fmt: skip
    api.request("POST", "/api/v2/variables", json={"key": probe, "value": marker})
    old = read_vault()["vault_airflow_fernet_key"]

    init_secrets("--rotate", "vault_airflow_fernet_key")
    rotating = read_vault()
    assert rotating["vault_airflow_fernet_key_retired"] == old
    runner.run_playbook(LAB_INVENTORY, "playbooks/rotate_fernet_key.yml", quiet=True)
    init_secrets("--drop-retired")
    runner.run_playbook(LAB_INVENTORY, "playbooks/master.yml", quiet=True)

    new = read_vault()
    assert "vault_airflow_fernet_key_retired" not in new
    assert new["vault_airflow_fernet_key"] == rotating["vault_airflow_fernet_key"] != old
    for master in lab.group("airflow_master"):
        env = lab_host(lab, master).run(f"sudo cat {LAYOUT.env_file}").stdout
        assert f"AIRFLOW__CORE__FERNET_KEY={new['vault_airflow_fernet_key']}\n" in env, master
        assert old not in env, master
    # Read back through the API servers, which now hold the new key alone.
    connection = api.request("GET", f"/api/v2/connections/{probe}")
    assert marker in connection["extra"]
    assert api.request("GET", f"/api/v2/variables/{probe}")["value"] == marker
    api.request("DELETE", f"/api/v2/connections/{probe}")
    api.request("DELETE", f"/api/v2/variables/{probe}")
