"""PostgreSQL serves Airflow's database on the cluster address, to listed clients only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from testinfra.host import Host

from clusterops.layout import LAYOUT

PASSWORD = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pg_password").read_text().strip()


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def psql(host: Host, dsn: str, sql: str = "select 1") -> tuple[int, str]:
    result = host.run("psql %s -XAtc %s", dsn, sql)
    return result.rc, result.stdout.strip() + result.stderr.strip()


def test_service_is_running_and_enabled(host: Host) -> None:
    unit = host.service("postgresql@15-main")
    assert unit.is_running
    assert unit.is_enabled


def test_listens_on_localhost_and_the_cluster_address_only(host: Host) -> None:
    port = LAYOUT.database_port
    sockets = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")}
    sockets.discard(f"tcp://::1:{port}")  # present where the host has IPv6
    assert sockets == {f"tcp://127.0.0.1:{port}", f"tcp://{address(host)}:{port}"}


def test_airflow_role_logs_in_over_the_network_with_scram(host: Host) -> None:
    dsn = f"host={address(host)} dbname=airflow user=airflow password={PASSWORD}"
    assert psql(host, dsn, "select current_user") == (0, "airflow")
    with host.sudo("postgres"):
        rc, stored = psql(
            host, "dbname=postgres", "select rolpassword from pg_authid where rolname='airflow'"
        )
    assert rc == 0
    assert stored.startswith("SCRAM-SHA-256$")


def test_wrong_password_is_refused(host: Host) -> None:
    rc, output = psql(host, f"host={address(host)} dbname=airflow user=airflow password=wrong")
    assert rc != 0
    assert "password authentication failed" in output


@pytest.mark.parametrize(("database", "user"), [("postgres", "airflow"), ("airflow", "postgres")])
def test_other_databases_and_roles_are_not_admitted_remotely(
    host: Host, database: str, user: str
) -> None:
    rc, output = psql(host, f"host={address(host)} dbname={database} user={user} password=x")
    assert rc != 0
    assert "no pg_hba.conf entry" in output


def test_max_connections_comes_from_the_role(host: Host) -> None:
    with host.sudo("postgres"):
        assert psql(host, "dbname=postgres", "show max_connections") == (0, "60")


def test_config_files_owned_by_postgres(host: Host) -> None:
    hba = host.file("/etc/postgresql/15/main/pg_hba.conf")
    assert (hba.user, hba.group, hba.mode) == ("postgres", "postgres", 0o640)
