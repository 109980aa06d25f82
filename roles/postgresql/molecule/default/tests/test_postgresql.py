"""A group of one: Patroni's only member is a writable primary serving Airflow's database
on the cluster address, to listed clients only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from testinfra.host import Host

from clusterops.paths import PROJECT_ROOT, ROLES_DIR

SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PASSWORD = (SECRETS / "secret_postgresql").read_text().strip()
CLUSTER = yaml.safe_load((ROLES_DIR / "cluster_defaults/defaults/main.yml").read_text())
PORT = int(CLUSTER["airflow_database_member_port"])
REST_PORT = int(CLUSTER["airflow_patroni_port"])
UNIT = "patroni@15-main"
CONFIG = f"/etc/patroni/{UNIT.split('@')[1]}.yml"


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def psql(host: Host, dsn: str, sql: str = "select 1") -> tuple[int, str]:
    result = host.run("psql %s -XAtc %s", dsn, sql)
    return result.rc, result.stdout.strip() + result.stderr.strip()


def rest(host: Host, path: str) -> tuple[int, dict[str, object]]:
    code = (
        "import json, sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
        "except urllib.error.HTTPError as e:\n"
        "    r = e\n"
        "print(json.dumps({'status': r.status, 'body': json.loads(r.read() or b'{}')}))\n"
    )
    result = host.run("python3 -c %s %s", code, f"http://{address(host)}:{REST_PORT}{path}")
    answer = json.loads(result.stdout)
    return int(answer["status"]), dict(answer["body"])


def test_patroni_runs_and_debian_unit_stays_off(host: Host) -> None:
    unit = host.service(UNIT)
    assert unit.is_running
    assert unit.is_enabled
    debian = host.service("postgresql@15-main")
    assert not debian.is_running
    assert not debian.is_enabled


def test_the_only_member_is_a_writable_primary(host: Host) -> None:
    status, body = rest(host, "/primary")
    assert status == 200, body
    assert body["state"] == "running"
    with host.sudo("postgres"):
        assert psql(host, "dbname=postgres", "select pg_is_in_recovery()") == (0, "f")
        assert psql(host, "dbname=postgres", "create table if not exists probe (v int)")[0] == 0
        assert psql(host, "dbname=postgres", "insert into probe values (1)")[0] == 0


def test_patroni_keeps_the_settings(host: Host) -> None:
    status, config = rest(host, "/config")
    assert status == 200
    assert config["synchronous_mode"] is True
    assert config["synchronous_mode_strict"] is False
    assert config["failsafe_mode"] is True
    assert (config["ttl"], config["loop_wait"], config["retry_timeout"]) == (30, 10, 10)
    assert config["maximum_lag_on_failover"] == 1048576
    with host.sudo("postgres"):
        assert psql(host, "dbname=postgres", "show max_connections") == (0, "60")
        assert psql(host, "dbname=postgres", "show data_checksums") == (0, "on")


def test_listens_on_localhost_and_the_cluster_address_only(host: Host) -> None:
    sockets = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{PORT}")}
    sockets.discard(f"tcp://::1:{PORT}")  # present where the host has IPv6
    assert sockets == {f"tcp://127.0.0.1:{PORT}", f"tcp://{address(host)}:{PORT}"}
    api = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{REST_PORT}")}
    assert api == {f"tcp://{address(host)}:{REST_PORT}"}


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


def test_unsafe_rest_calls_need_the_password(host: Host) -> None:
    result = host.run(
        "python3 -c %s",
        "import urllib.request, urllib.error\n"
        "req = urllib.request.Request("
        f"'http://{address(host)}:{REST_PORT}/restart', data=b'{{}}', method='POST')\n"
        "try:\n    urllib.request.urlopen(req, timeout=5); print(200)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n",
    )
    assert result.stdout.strip() == "401"


def test_config_files_owned_by_postgres(host: Host) -> None:
    with host.sudo():
        for path in ("/etc/postgresql/15/main/pg_hba.conf", CONFIG):
            config = host.file(path)
            assert (config.user, config.group, config.mode) == ("postgres", "postgres", 0o640)
        assert (
            "create_main_cluster = false"
            in host.file("/etc/postgresql-common/createcluster.conf").content_string
        )


def playbook(path: Path, *args: str) -> tuple[int, str]:
    """Run a playbook on the scenario's inventory; its exit code and output, on one line."""
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path), *args],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )  # fmt: skip
    return run.returncode, " ".join((run.stdout + run.stderr).split())


def test_members_playbook_changes_the_clients_by_a_reload(host: Host) -> None:
    """playbooks/members.yml (add_worker.yml, remove_worker.yml): pg_hba.conf follows the
    inventory's Airflow hosts, and PostgreSQL is not restarted."""
    _, before = rest(host, "/patroni")
    members = PROJECT_ROOT / "playbooks" / "members.yml"
    vault = f"@{PROJECT_ROOT / 'molecule' / 'resources' / 'random_vars.yml'}"
    dsn = f"host={address(host)} dbname=airflow user=airflow password={PASSWORD}"
    rc, output = playbook(members, "-e", vault, "-e", '{"members_leaving": ["instance"]}')
    assert rc == 0, output[-3000:]
    refused = psql(host, dsn, "select current_user")
    rc, output = playbook(members, "-e", vault)
    assert rc == 0, output[-3000:]
    assert refused[0] != 0 and "no pg_hba.conf entry" in refused[1]
    assert psql(host, dsn, "select current_user") == (0, "airflow")
    _, after = rest(host, "/patroni")
    assert after["postmaster_start_time"] == before["postmaster_start_time"]


def test_a_cluster_outside_patroni_is_refused(host: Host) -> None:
    """Another cluster on the host (as Debian's package makes one): the role stops."""
    stray = "/etc/postgresql/14/legacy"
    with host.sudo():
        assert host.run(f"mkdir -p {stray} && touch {stray}/postgresql.conf").rc == 0
    try:
        converge = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
        rc, output = playbook(converge, "--tags", "postgresql_install")
    finally:
        with host.sudo():
            host.run("rm -rf /etc/postgresql/14")
    assert rc != 0
    assert "instance has PostgreSQL cluster(s) that Patroni does not manage: 14/legacy" in output
