"""A one-member etcd: healthy, with its own data folder, and authentication on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from testinfra.host import Host

from clusterops.paths import ROLES_DIR

SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DEFAULTS = yaml.safe_load((ROLES_DIR / "etcd/defaults/main.yml").read_text())
CLUSTER = yaml.safe_load((ROLES_DIR / "cluster_defaults/defaults/main.yml").read_text())
PORT = int(CLUSTER["airflow_etcd_client_port"])
ENDPOINT = f"http://127.0.0.1:{PORT}"


def etcdctl(host: Host, *args: str, user: str = "", password: str = "") -> tuple[int, str]:
    auth = f"ETCDCTL_USER={user} ETCDCTL_PASSWORD={password} " if user else ""
    command = auth + "etcdctl --endpoints=" + ENDPOINT + " " + " ".join(args)
    result = host.run(command)
    return result.rc, result.stdout + result.stderr


def secret(name: str) -> str:
    return (SECRETS / f"secret_{name}").read_text().strip()


def test_one_healthy_member_with_its_own_data(host: Host) -> None:
    rc, output = etcdctl(
        host, "endpoint", "status", "-w", "json", user="root", password=secret("etcd_root")
    )
    assert rc == 0, output
    [status] = json.loads(output)
    assert status["Status"]["leader"] == status["Status"]["header"]["member_id"]
    with host.sudo():
        assert host.file(f"{DEFAULTS['etcd_data_dir']}/member").is_directory
    assert host.service("etcd").is_enabled


def test_anonymous_requests_are_refused(host: Host) -> None:
    rc, output = etcdctl(host, "get", "--prefix", "/")
    assert rc != 0
    assert "user name is empty" in output


# Each user besides root: its name, the secret it logs in with, its prefix.
USERS = {
    "patroni": ("etcd_patroni", DEFAULTS["etcd_patroni_prefix"]),
    CLUSTER["airflow_etcd_user"]: ("etcd_airflow", CLUSTER["airflow_etcd_prefix"]),
}


@pytest.mark.parametrize("user", sorted(USERS))
def test_each_user_reads_and_writes_its_prefix_only(host: Host, user: str) -> None:
    name, prefix = USERS[user]
    password = secret(name)
    assert etcdctl(host, "put", f"{prefix}probe", "1", user=user, password=password)[0] == 0
    assert etcdctl(host, "get", f"{prefix}probe", user=user, password=password)[0] == 0
    other = next(p for p in (u[1] for u in USERS.values()) if p != prefix)
    for key in ("/elsewhere", f"{other}probe"):
        rc, output = etcdctl(host, "put", key, "1", user=user, password=password)
        assert rc != 0 and "permission denied" in output, key
    rc, output = etcdctl(host, "user", "list", user=user, password=password)
    assert rc != 0 and "permission denied" in output


def test_wrong_password_is_refused(host: Host) -> None:
    wrong = "not-" + secret("etcd_patroni")
    rc, output = etcdctl(host, "get", "/service/", user="patroni", password=wrong)
    assert rc != 0 and "authentication failed" in output


def test_listens_on_localhost_and_the_cluster_address(host: Host) -> None:
    address = str(host.ansible.get_variables()["ansible_host"])
    sockets = {s for s in host.socket.get_listening_sockets() if s.startswith("tcp://")}
    assert f"tcp://127.0.0.1:{PORT}" in sockets
    assert f"tcp://{address}:{PORT}" in sockets
    assert f"tcp://{address}:{CLUSTER['airflow_etcd_peer_port']}" in sockets
    assert not any(s.endswith(f"0.0.0.0:{PORT}") for s in sockets)
