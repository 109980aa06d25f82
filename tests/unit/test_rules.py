"""The cluster's rules (plugins/filter/airflow_cluster.py), as Ansible and the scripts use them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterops import rules, secrets
from clusterops.paths import PROJECT_ROOT

F = rules._RULES  # the plugin module itself


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "x is missing"),
        (None, "x is missing"),
        ("Ab3" * 5, "shorter than 16"),
        ("A" * 20 + " b", "characters other than"),
        ("A" * 20 + "$", "characters other than"),
        ("xxChangeMe0123456789", "placeholder"),
        ("mysecretvalue0123456", "placeholder"),
    ],
)
def test_a_weak_secret_is_named_not_shown(value: object, problem: str) -> None:
    found = F.airflow_secret_problems({"x": value})
    assert len(found) == 1 and problem in found[0]
    assert not value or str(value) not in found[0]


def test_generated_secrets_pass_the_rule() -> None:
    values, _ = secrets.complete({})
    plain = {s.name: values[s.name] for s in secrets.SECRETS if s.plain}
    assert F.airflow_secret_problems(plain) == []


def test_the_vault_rule_lists_each_missing_secret() -> None:
    values, _ = secrets.complete({})
    assert F.airflow_vault_problems(values) == []
    del values["vault_airflow_jwt_secret"]
    values["vault_airflow_admin_password"] = "short"
    assert F.airflow_vault_problems(values) == [
        "vault_airflow_jwt_secret is missing",
        "vault_airflow_admin_password is shorter than 16 characters",
    ]


def test_molecule_random_vars_cover_the_vault_secrets() -> None:
    """The molecule scenarios stand in for an inventory's vault: every name must be there."""
    random_vars = yaml.safe_load((PROJECT_ROOT / "molecule/resources/random_vars.yml").read_text())
    assert set(rules.VAULT_SECRETS) <= set(random_vars)


@pytest.mark.parametrize(
    ("queues", "concurrency", "problems"),
    [
        (["default", "heavy.io", "a_b-c"], 8, []),
        (["default"], "16", []),
        (["default"], 256, []),
        ([], 8, ["non-empty list"]),
        ("default", 8, ["non-empty list"]),
        (None, 8, ["non-empty list"]),
        (["a b"], 8, ["'a b' must be 1 to 200"]),
        (["q", "q"], 8, ["lists a queue twice"]),
        (["x" * 201], 8, ["must be 1 to 200"]),
        (["default"], 0, ["from 1 to 256 (got 0)"]),
        (["default"], 257, ["from 1 to 256 (got 257)"]),
        (["default"], 512, ["from 1 to 256 (got 512)"]),
        (["default"], "many", ["from 1 to 256 (got 'many')"]),
    ],
)
def test_worker_rule(queues: object, concurrency: object, problems: list[str]) -> None:
    found = F.airflow_worker_problems(queues, concurrency)
    assert len(found) == len(problems)
    for text, expected in zip(found, problems, strict=True):
        assert expected in text


def test_the_scripts_and_the_role_share_the_worker_rule() -> None:
    assert rules.worker_problems(["default"], 512) == F.airflow_worker_problems(["default"], 512)
    assert rules.WORKER_CONCURRENCY_MAX == 256


GIT = {"name": "dags", "repo_url": "https://git.example.com/dags.git", "tracking_ref": "main"}
SSH = {"name": "dags", "repo_url": "git@git.example.com:org/dags.git"}


@pytest.mark.parametrize(
    ("bundle", "problems"),
    [
        (GIT, []),
        ({**GIT, "type": "svn"}, ["type must be 'git' or 'local', not 'svn'"]),
        ({**GIT, "repo_url": ""}, ["repo_url is empty"]),
        ({**GIT, "subdir": "my dags"}, ["may not hold spaces or quotes"]),
        ({**GIT, "tracking_ref": "it's"}, ["may not hold spaces or quotes"]),
        (SSH, ["needs known_hosts", "needs ssh_key"]),
        ({**SSH, "known_hosts": ["git.example.com ssh-ed25519 AAAA"], "ssh_key": "k"}, []),
        ({**GIT, "repo_url": "ssh://git@h/r.git", "known_hosts": ["h k"]}, ["needs ssh_key"]),
        ({**GIT, "repo_url": "http://h/r.git", "token": "t"}, ["https:// only, not to http"]),
        ({**GIT, "token": "t"}, []),
        ({"name": "l", "type": "local"}, []),
        ({"name": "l", "type": "local", "path": "dags"}, ["path must be absolute"]),
        ({"name": "l", "type": "local", "source": "/nowhere/at/all"}, ["not a folder"]),
    ],
)
def test_bundle_rule(bundle: dict[str, Any], problems: list[str]) -> None:
    found = F.airflow_dag_bundle_problems(bundle, "/opt/airflow/dags")
    assert len(found) == len(problems), found
    for text, expected in zip(found, problems, strict=True):
        assert expected in text


def test_a_local_bundle_source_on_the_controller_is_accepted(tmp_path: Path) -> None:
    bundle = {"name": "l", "type": "local", "source": str(tmp_path)}
    assert F.airflow_dag_bundle_problems(bundle, "/srv/dags") == []


@pytest.mark.parametrize(
    ("bundles", "problem"),
    [
        ([], "at least one bundle"),
        ("dags", "at least one bundle"),
        ([{"name": "a b"}], "'a b' must be letters"),
        ([{}], "'' must be letters"),
        ([{"name": "team-a"}, {"name": "Team_A"}], "team-a, Team_A are alike"),
    ],
)
def test_bundle_set_rule(bundles: object, problem: str) -> None:
    found = F.airflow_dag_bundle_set_problems(bundles)
    assert len(found) == 1 and problem in found[0]
    assert F.airflow_dag_bundle_set_problems([{"name": "a"}, {"name": "b-c"}]) == []


def test_bundle_config_for_git_and_local_bundles() -> None:
    bundles = [
        {"name": "team-a", "repo_url": "u", "tracking_ref": "", "subdir": "dags"},
        {"name": "dev", "type": "local", "refresh_interval": "30"},
    ]
    assert F.airflow_dag_bundle_config(bundles, "/opt/airflow/dags", 5) == [
        {
            "name": "team-a",
            "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
            "kwargs": {
                "git_conn_id": "git_team_a",
                "tracking_ref": "main",
                "subdir": "dags",
                "refresh_interval": 5,
            },
        },
        {
            "name": "dev",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": "/opt/airflow/dags", "refresh_interval": 30},
        },
    ]


@pytest.mark.parametrize(
    ("masters", "workers", "expected"),
    [
        # 50 + (2 + 3) * 15 + (8 + 2) * 2 = 145
        ([{}], [{}, {}], 200),
        # 50 + 2 * 5 * 15 + 3 * 10 = 230
        ([{}, {}], [{}, {}, {}], 300),
        # 50 + (4 + 3) * 15 + (64 + 2) = 221
        ([{"airflow_master_api_workers": 4}], [{"airflow_worker_concurrency": "64"}], 300),
        # exactly 100 stays 100: 50 + 0 + 48 + 2
        ([], [{"airflow_worker_concurrency": 48}], 100),
    ],
)
def test_database_connections(
    masters: list[dict[str, Any]], workers: list[dict[str, Any]], expected: int
) -> None:
    assert F.airflow_database_connections(masters, workers, 2, 8) == expected


def test_ansible_loads_the_filters(tmp_path: Path) -> None:
    """Through Ansible's own plugin loader, with the project's ansible.cfg."""
    ansible = Path(sys.executable).parent / "ansible"
    run = subprocess.run(
        [str(ansible), "localhost", "-i", "localhost,", "-c", "local",
         "-m", "ansible.builtin.debug", "-a", "msg={{ ['a b'] | airflow_worker_problems(8) }}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path)},
    )  # fmt: skip
    message = json.loads(run.stdout[run.stdout.index("{") :])["msg"]
    assert len(message) == 1 and "'a b' must be 1 to 200" in message[0]


def _etcd(kind: str, name: str, stdout: str = "", rc: int = 0) -> dict[str, Any]:
    return {"item": [kind, name], "rc": rc, "stdout": stdout}


PATRONI = {"name": "patroni", "password": "p" * 20, "prefix": "/service/"}
GRANTED_ROLE = (
    "Role patroni\nKV Read:\n\t[/service/, /service0) (prefix /service/)\n"
    "KV Write:\n\t[/service/, /service0) (prefix /service/)"
)


def test_etcd_grants_nothing_when_all_is_there() -> None:
    results = [
        _etcd("user", "root", "User: root\nRoles: root"),
        _etcd("user", "patroni", "User: patroni\nRoles: patroni"),
        _etcd("role", "patroni", GRANTED_ROLE),
    ]
    assert F.airflow_etcd_missing_grants(results, [PATRONI]) == []


def test_etcd_grants_everything_on_a_new_cluster() -> None:
    results = [
        _etcd("user", "root", "User: root\nRoles:"),
        _etcd("user", "patroni", "User: patroni\nRoles:"),
        _etcd("role", "patroni", rc=1),
    ]
    assert F.airflow_etcd_missing_grants(results, [PATRONI]) == [
        {"kind": "grant", "user": "root", "role": "root"},
        {"kind": "role", "role": "patroni"},
        {"kind": "permission", "role": "patroni", "prefix": "/service/"},
        {"kind": "grant", "user": "patroni", "role": "patroni"},
    ]


def test_etcd_grants_write_when_only_read_is_there() -> None:
    read_only = "Role patroni\nKV Read:\n\t[/service/, /service0) (prefix /service/)\nKV Write:"
    results = [
        _etcd("user", "root", "User: root\nRoles: root"),
        _etcd("user", "patroni", "User: patroni\nRoles: other patroni"),
        _etcd("role", "patroni", read_only),
    ]
    assert F.airflow_etcd_missing_grants(results, [PATRONI]) == [
        {"kind": "permission", "role": "patroni", "prefix": "/service/"}
    ]


def test_etcd_revokes_what_lies_outside_the_prefix() -> None:
    wider = (
        "Role patroni\nKV Read:\n\t[/service/, /service0) (prefix /service/)\n\t/single\n"
        "\t[/z, <open ended>\nKV Write:\n\t[/a, /c)\n\t[/service/, /service0) (prefix /service/)"
        "\n\t[/z, <open ended>"
    )
    results = [
        _etcd("user", "root", "User: root\nRoles: root"),
        _etcd("user", "patroni", "User: patroni\nRoles: patroni"),
        _etcd("role", "patroni", wider),
    ]
    assert F.airflow_etcd_missing_grants(results, [PATRONI]) == [
        {"kind": "revoke", "role": "patroni", "key": "/single", "range_end": ""},
        {"kind": "revoke", "role": "patroni", "key": "/z", "range_end": "", "from_key": "true"},
        {"kind": "revoke", "role": "patroni", "key": "/a", "range_end": "/c"},
    ]


def test_etcd_a_narrower_prefix_is_not_the_prefix() -> None:
    narrower = (
        "Role patroni\nKV Read:\n\t[/service/x/, /service/x0) (prefix /service/x/)\nKV Write:"
    )
    results = [
        _etcd("user", "root", "User: root\nRoles: root"),
        _etcd("user", "patroni", "User: patroni\nRoles: patroni"),
        _etcd("role", "patroni", narrower),
    ]
    assert F.airflow_etcd_missing_grants(results, [PATRONI]) == [
        {"kind": "revoke", "role": "patroni", "key": "/service/x/", "range_end": "/service/x0"},
        {"kind": "permission", "role": "patroni", "prefix": "/service/"},
    ]


@pytest.mark.parametrize(
    ("members", "address", "problem"),
    [
        ([], "10.0.0.1", "the etcd group has no host"),
        (["10.0.0.1", "10.0.0.2"], "10.0.0.1", "needs an odd number"),
        ([f"10.0.0.{n}" for n in range(1, 10)], "10.0.0.1", "needs an odd number"),
        (["10.0.0.1", "10.0.0.1", "10.0.0.2"], "10.0.0.1", "share an address"),
        (["10.0.0.1", "10.0.0.2", "10.0.0.3"], "10.0.0.9", "10.0.0.9 is not one of"),
    ],
)
def test_etcd_member_problems(members: list[str], address: str, problem: str) -> None:
    found = F.airflow_etcd_member_problems(members, address)
    assert len(found) == 1 and problem in found[0]


@pytest.mark.parametrize("size", [1, 3, 5])
def test_etcd_odd_sizes_pass(size: int) -> None:
    members = [f"10.0.0.{n}" for n in range(1, size + 1)]
    assert F.airflow_etcd_member_problems(members, "10.0.0.1") == []


MASTERS = ["10.0.0.11", "10.0.0.12"]


@pytest.mark.parametrize(
    ("vip", "prefix", "masters", "problem"),
    [
        ("master.example", 24, MASTERS, "is not an IPv4 address"),
        ("10.0.0.10", 99, MASTERS, "is no prefix length"),
        ("10.0.0.11", 24, MASTERS, "is a master's own address"),
        ("10.0.1.10", 24, MASTERS, "is outside this master's subnet 10.0.0.0/24"),
        ("10.0.0.255", 24, MASTERS, "network or broadcast address"),
        ("10.0.0.10", 24, MASTERS[:1], "at least 2 hosts in the airflow_master group"),
    ],
)
def test_vip_problems(vip: str, prefix: int, masters: list[str], problem: str) -> None:
    found = F.airflow_vip_problems(vip, prefix, masters, masters[0])
    assert len(found) == 1 and problem in found[0], found


def test_vip_in_the_masters_subnet_passes() -> None:
    assert F.airflow_vip_problems("10.0.0.10", 24, MASTERS, MASTERS[0]) == []


GOOD_PASSPHRASE = "Q7" * 20


@pytest.mark.parametrize(
    ("repositories", "problem"),
    [
        (["backup-1", "backup-2"], "has 2 hosts (backup-1, backup-2)"),
        (["db-1"], "db-1 is in both pgbackrest_repo and postgres"),
    ],
)
def test_backup_hosts_problems(repositories: list[str], problem: str) -> None:
    found = F.airflow_backup_problems(repositories, ["db-1", "db-2"], GOOD_PASSPHRASE)
    assert len(found) == 1 and problem in found[0], found


def test_backup_passphrase_is_checked_and_not_shown() -> None:
    assert F.airflow_backup_problems(["backup-1"], ["db-1"], "") == [
        "vault_pgbackrest_cipher_pass is missing"
    ]
    found = F.airflow_backup_problems(["backup-1"], ["db-1"], "short$1")
    assert len(found) == 1 and "short$1" not in found[0]


def test_no_backups_no_problem() -> None:
    assert F.airflow_backup_problems([], ["db-1"], "") == []
    assert F.airflow_backup_problems(["backup-1"], ["db-1"], GOOD_PASSPHRASE) == []


ADDRESS_PROBLEM = "is not an IPv4 or IPv6 address (pg_hba.conf and the allow-lists are built"


@pytest.mark.parametrize("address", ["10.0.1.31", "fd00::17", "2001:db8::a:1"])
def test_an_ip_address_is_a_cluster_address(address: str) -> None:
    assert F.airflow_address_problems(address) == []
    assert rules.is_ip_address(address)


@pytest.mark.parametrize(
    "address",
    ["db.example.com", "worker-3", "", None, "10.0.0.300", "10.0.1.0/24", "fe80::1%eth0"],
)
def test_anything_else_is_named(address: object) -> None:
    found = F.airflow_address_problems(address)
    assert found == [
        f"cluster_address '{address}' {ADDRESS_PROBLEM} from it): set the host's ansible_host, "
        "or its cluster_address, to its IP address"
    ]
    assert not rules.is_ip_address(str(address))


@pytest.mark.parametrize(
    ("address", "entry"),
    [("10.0.1.31", "10.0.1.31/32"), ("fd00::17", "fd00::17/128"), ("FD00:0::1", "FD00:0::1/128")],
)
def test_pg_hba_admits_one_host_per_address(address: str, entry: str) -> None:
    assert F.airflow_pg_hba_address(address) == entry


@pytest.mark.parametrize("address", ["db.example.com", "fe80::1%eth0", "10.0.1.0/24"])
def test_pg_hba_refuses_what_is_no_ip_address(address: str) -> None:
    with pytest.raises(ValueError, match=f"'{re.escape(address)}' is not one"):
        F.airflow_pg_hba_address(address)


def ansible_adhoc(tmp_path: Path, host: str, module: str, args: object, *extra: str) -> str:
    """An ad hoc run of `module` on the controller, as inventory host `host`: its output."""
    ansible = Path(sys.executable).parent / "ansible"
    run = subprocess.run(
        [str(ansible), host, "-i", f"{host},", "-c", "local", "-m", module,
         "-a", json.dumps(args), *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path)},
    )  # fmt: skip
    return run.stdout


def test_pg_hba_lines_of_the_airflow_hosts(tmp_path: Path) -> None:
    """roles/postgresql's pg_hba.conf, rendered by Ansible: IPv4 lines as they always were, and
    the workers' role from the workers' addresses."""
    variables = {
        "postgresql_replication_user": "replicator",
        "postgresql_members": ["10.0.0.12", "10.0.0.11"],
        "postgresql_client_addresses": ["10.0.1.31", "fd00::17", "10.0.1.101", "10.0.1.31"],
        "postgresql_worker_client_addresses": ["10.0.1.102"],
        "postgresql_airflow_database": "airflow",
        "postgresql_airflow_user": "airflow",
        "postgresql_airflow_worker_user": "airflow_worker",
    }
    output = ansible_adhoc(
        tmp_path, "localhost", "ansible.builtin.debug", {"msg": "{{ __postgresql_pg_hba }}"},
        "-e", f"@{PROJECT_ROOT / 'roles/postgresql/vars/main.yml'}", "-e", json.dumps(variables),
    )  # fmt: skip
    lines = json.loads(output[output.index("{") :])["msg"]
    assert lines[-4:] == [
        "host airflow airflow 10.0.1.101/32 scram-sha-256",
        "host airflow airflow 10.0.1.31/32 scram-sha-256",
        "host airflow airflow fd00::17/128 scram-sha-256",
        "host airflow airflow_worker 10.0.1.102/32 scram-sha-256",
    ]
    assert "host replication replicator 10.0.0.11/32 scram-sha-256" in lines


def preflight_task(name: str) -> dict[str, Any]:
    plays = yaml.safe_load((PROJECT_ROOT / "playbooks/preflight.yml").read_text())
    tasks = [task for play in plays for task in play.get("tasks", [])]
    found: dict[str, Any] = next(task for task in tasks if task["name"] == name)
    return found


def test_preflight_names_an_airflow_host_whose_address_is_a_dns_name(tmp_path: Path) -> None:
    task = preflight_task(
        "Check that every Airflow host's and PostgreSQL member's address is an IP address"
    )
    assert "inventory_hostname in groups['airflow']" in task["when"]
    assert "groups.get('postgres', [])" in task["when"]
    variables = {**task["vars"], "cluster_address": "worker-9.example.com"}
    output = ansible_adhoc(
        tmp_path, "worker-9", "ansible.builtin.assert", task["ansible.builtin.assert"],
        "-e", json.dumps(variables),
    )  # fmt: skip
    assert "worker-9 | FAILED!" in output
    assert f"worker-9: cluster_address 'worker-9.example.com' {ADDRESS_PROBLEM}" in output
