"""The cluster's rules and the logic too big for Jinja, as Ansible filters.

Each rule is written here once. The preflight play, the roles and the Python scripts
(scripts/clusterops/rules.py loads this file) all check against it:

  airflow_secret_problems       {name: value} -> what is wrong with each secret
  airflow_vault_problems        a host's variables -> which vault secrets are missing or weak
  airflow_worker_problems       a worker's queues and concurrency -> what is wrong
  airflow_dag_bundle_problems   one item of airflow_dag_bundles -> what is wrong
  airflow_dag_bundle_set_problems  the whole list -> missing, badly named or clashing names
  airflow_dag_bundle_config     airflow_dag_bundles -> [dag_processor] dag_bundle_config_list
  airflow_database_connections  the masters' and workers' settings -> max_connections
  airflow_etcd_member_problems  etcd's member addresses and this member's -> what is wrong
  airflow_etcd_missing_grants   `etcdctl user get` / `role get` results -> what to grant
                                or revoke
  airflow_vip_problems          the masters' virtual IP, its prefix, the masters' addresses
                                and this master's -> what is wrong
  airflow_address_problems      an Airflow host's cluster_address -> what is wrong (it must
                                be an IP address: pg_hba.conf admits the hosts by it)
  airflow_pg_hba_address        an IP address -> pg_hba.conf's ADDRESS for that host alone
                                (/32 for IPv4, /128 for IPv6)
  airflow_role_defaults         a role's name -> its defaults/main.yml as written, for a
                                play that sizes or checks other hosts by a role's defaults

A "problems" filter returns a list of sentences, empty when all is well; a task asserts
that the list is empty and prints it. No sentence holds a secret's value.
The standard library and PyYAML (which Ansible needs) only: the scripts import this file
without Ansible's plugin loader.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"

# --- The rules -------------------------------------------------------------------------

SECRET_MIN_LENGTH = 16
# Letters, digits, '-', '_', '=': safe unquoted in URLs, systemd environment files and YAML.
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_=-]+$")
SECRET_PLACEHOLDER = re.compile(r"(?i)changeme|placeholder|secret|password")

# The vault entries every inventory needs (<inventory>/group_vars/all/vault.yml), as
# scripts/init_secrets.py generates them. More, generated only for some inventories
# (the DAG deploy key, the lab's AWS emulator), are listed in scripts/clusterops/secrets.py.
VAULT_SECRETS: dict[str, str] = {
    "vault_postgresql_airflow_password": "PostgreSQL role airflow (masters; owns the database)",
    "vault_redis_airflow_password": "Redis ACL password of the airflow user (masters)",
    "vault_postgresql_airflow_worker_password": "PostgreSQL role airflow_worker (workers)",
    "vault_redis_airflow_worker_password": "Redis ACL user airflow-worker (workers)",
    "vault_redis_admin_password": "Redis ACL user admin (Ansible, operators: every command)",
    "vault_airflow_fernet_key": "[core] fernet_key: encrypts connections and variables",
    "vault_airflow_api_secret_key": "[api] secret_key: signs log-server requests",
    "vault_airflow_jwt_secret": "[api_auth] jwt_secret: signs task and UI tokens",
    "vault_airflow_admin_password": "password of the Airflow UI user 'admin'",
    "vault_airflow_flower_password": "password of the Flower UI user 'admin'",
    "vault_postgresql_superuser_password": "PostgreSQL superuser postgres (Patroni, pg_rewind)",
    "vault_postgresql_replication_password": "PostgreSQL role replicator (streaming replication)",
    "vault_patroni_rest_password": "Patroni REST API user patroni (switchover, restart, config)",
    "vault_etcd_root_password": "etcd user root (enables and administers etcd's authentication)",
    "vault_etcd_patroni_password": "etcd user patroni (Patroni's keys only)",
    "vault_etcd_airflow_password": "etcd user airflow (the masters' locks only)",
    "vault_keepalived_password": "VRRP's shared secret of the masters' virtual IP (keepalived)",
    "vault_redis_replication_password": "Redis ACL user replica (replicas of the master)",
    "vault_redis_sentinel_password": "Redis Sentinel's password, and its ACL user sentinel",
}

WORKER_QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
WORKER_CONCURRENCY_MIN = 1
# Task slots of one worker: each is a process and a database connection at times.
WORKER_CONCURRENCY_MAX = 256

DAG_BUNDLE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
DAG_BUNDLE_TYPES = ("git", "local")
SSH_URL_PATTERN = re.compile(r"^(ssh://|git\+ssh://|[^/@:]+@[^/:]+:)")

GIT_BUNDLE_CLASS = "airflow.providers.git.bundles.git.GitDagBundle"
LOCAL_BUNDLE_CLASS = "airflow.dag_processing.bundles.local.LocalDagBundle"

# Database connections: each DB-using process of a master (API server workers, scheduler,
# DAG processor, triggerer) may hold a pool of 5 plus an overflow of 10; each task slot of a
# worker one (Celery's result backend), plus two per worker; 50 for administration.
DB_POOL_PER_PROCESS = 15
DB_PROCESSES_PER_MASTER_BESIDES_API = 3
DB_EXTRA_PER_WORKER = 2
DB_RESERVED = 50
# Rounded up to this multiple, so that adding a worker or two does not restart PostgreSQL.
DB_CONNECTIONS_STEP = 100


# --- Secrets ---------------------------------------------------------------------------


def secret_problem(name: str, value: object) -> str | None:
    """What is wrong with one secret's value, or None."""
    text = "" if value is None else str(value)
    if not text:
        return f"{name} is missing"
    if len(text) < SECRET_MIN_LENGTH:
        return f"{name} is shorter than {SECRET_MIN_LENGTH} characters"
    if not SECRET_PATTERN.match(text):
        return f"{name} has characters other than letters, digits, '-', '_' and '='"
    if SECRET_PLACEHOLDER.search(text):
        return f"{name} looks like a placeholder (it holds a word like 'changeme')"
    return None


def airflow_secret_problems(secrets: Mapping[str, object]) -> list[str]:
    """Every problem of the given secrets, by name."""
    found = (secret_problem(name, value) for name, value in secrets.items())
    return [problem for problem in found if problem]


def airflow_vault_problems(variables: Mapping[str, object]) -> list[str]:
    """Which of VAULT_SECRETS a host's variables (hostvars[host]) lack or hold weak."""
    return airflow_secret_problems({name: variables.get(name, "") for name in VAULT_SECRETS})


# --- Workers ---------------------------------------------------------------------------


def airflow_worker_problems(queues: object, concurrency: object) -> list[str]:
    """What is wrong with a worker's airflow_worker_queues and airflow_worker_concurrency."""
    problems = []
    names = [str(queue) for queue in queues] if isinstance(queues, list | tuple) else None
    if not names:
        problems.append(f"airflow_worker_queues must be a non-empty list (got {queues!r})")
    else:
        bad = [name for name in names if not WORKER_QUEUE_PATTERN.match(name)]
        if bad:
            problems.append(
                f"airflow_worker_queues: {', '.join(map(repr, bad))} must be 1 to 200 letters, "
                "digits, '.', '_' or '-'"
            )
        if len(set(names)) != len(names):
            problems.append(f"airflow_worker_queues lists a queue twice ({', '.join(names)})")
    try:
        slots = int(str(concurrency))
    except ValueError:
        slots = 0
    if not WORKER_CONCURRENCY_MIN <= slots <= WORKER_CONCURRENCY_MAX:
        problems.append(
            f"airflow_worker_concurrency must be a whole number from {WORKER_CONCURRENCY_MIN} "
            f"to {WORKER_CONCURRENCY_MAX} (got {concurrency!r})"
        )
    return problems


# --- DAG bundles -----------------------------------------------------------------------


def _bundle_type(bundle: Mapping[str, Any]) -> str:
    return str(bundle.get("type") or "git")


def airflow_dag_bundle_set_problems(bundles: object) -> list[str]:
    """What is wrong with airflow_dag_bundles as a whole (names; each item on its own below)."""
    if not isinstance(bundles, list) or not bundles:
        return ["airflow_dag_bundles must list at least one bundle"]
    names = [
        str(bundle.get("name") or "") if isinstance(bundle, Mapping) else "" for bundle in bundles
    ]
    problems = [
        f"DAG bundle name {name!r} must be letters, digits, '_' and '-'"
        for name in names
        if not DAG_BUNDLE_NAME_PATTERN.match(name)
    ]
    # Each git bundle gets the connection git_<name with '_' for '-'>: those must differ too.
    keys = [name.replace("-", "_").lower() for name in names]
    clashes = [name for name, key in zip(names, keys, strict=True) if keys.count(key) > 1]
    if clashes:
        problems.append(
            f"DAG bundle names {', '.join(clashes)} are alike once '-' counts as '_' and case "
            "is ignored: rename one"
        )
    return problems


def airflow_dag_bundle_problems(bundle: Mapping[str, Any], dags_dir: str) -> list[str]:
    """What is wrong with one item of airflow_dag_bundles (dags_dir: a local bundle's path)."""
    kind = _bundle_type(bundle)
    if kind not in DAG_BUNDLE_TYPES:
        return [f"type must be 'git' or 'local', not {kind!r}"]
    if kind == "local":
        return _local_bundle_problems(bundle, dags_dir)
    return _git_bundle_problems(bundle)


def _git_bundle_problems(bundle: Mapping[str, Any]) -> list[str]:
    url = str(bundle.get("repo_url") or "")
    if not url:
        return [
            "repo_url is empty: set airflow_dags_repo_url to your fork of this repository"
            " (or use a local bundle, see docs/dags.md)"
        ]
    problems = []
    fields = url + str(bundle.get("tracking_ref") or "") + str(bundle.get("subdir") or "")
    if re.search(r"[\s']", fields):
        problems.append("repo_url, tracking_ref and subdir may not hold spaces or quotes")
    if SSH_URL_PATTERN.match(url):
        if not bundle.get("known_hosts"):
            problems.append(
                "an SSH repository needs known_hosts: the server host key lines to pin"
                " (host key checking stays on)"
            )
        if not bundle.get("ssh_key"):
            problems.append(
                "an SSH repository needs ssh_key, a deploy key"
                " (scripts/init_secrets.py makes vault_airflow_dags_ssh_key)"
            )
    if bundle.get("token") and not url.startswith("https://"):
        problems.append(f"a token is sent over https:// only, not to {url}")
    return problems


def _local_bundle_problems(bundle: Mapping[str, Any], dags_dir: str) -> list[str]:
    problems = []
    if not str(bundle.get("path") or dags_dir).startswith("/"):
        problems.append("path must be absolute on the hosts")
    source = str(bundle.get("source") or "")
    if source and not os.path.isdir(source):  # noqa: PTH112 - a controller path from YAML
        problems.append(f"source {source} is not a folder on the controller")
    return problems


def airflow_dag_bundle_config(
    bundles: Iterable[Mapping[str, Any]], dags_dir: str, refresh_interval: object
) -> list[dict[str, Any]]:
    """[dag_processor] dag_bundle_config_list for airflow_dag_bundles (still to be JSON-encoded).

    A git bundle reads its repository through the connection git_<name, '-' as '_'>, which
    the role defines; a local bundle's path defaults to dags_dir.
    """
    config = []
    for bundle in bundles:
        name = str(bundle["name"])
        refresh = int(str(bundle.get("refresh_interval") or refresh_interval))
        if _bundle_type(bundle) == "local":
            kwargs: dict[str, Any] = {"path": str(bundle.get("path") or dags_dir)}
            classpath = LOCAL_BUNDLE_CLASS
        else:
            kwargs = {
                "git_conn_id": "git_" + name.replace("-", "_"),
                "tracking_ref": str(bundle.get("tracking_ref") or "main"),
                "subdir": bundle.get("subdir") or None,
            }
            classpath = GIT_BUNDLE_CLASS
        kwargs["refresh_interval"] = refresh
        config.append({"name": name, "classpath": classpath, "kwargs": kwargs})
    return config


# --- Sizing ----------------------------------------------------------------------------


def airflow_database_connections(
    masters: Iterable[Mapping[str, Any]],
    workers: Iterable[Mapping[str, Any]],
    api_workers: object,
    concurrency: object,
) -> int:
    """max_connections for the metadata database of these masters and workers.

    masters and workers are the hosts' variables (hostvars); a host without
    airflow_master_api_workers or airflow_worker_concurrency of its own counts with the
    default given (the roles' default, passed in by the play).
    """
    master_processes = sum(
        int(str(host.get("airflow_master_api_workers", api_workers)))
        + DB_PROCESSES_PER_MASTER_BESIDES_API
        for host in masters
    )
    worker_slots = sum(
        int(str(host.get("airflow_worker_concurrency", concurrency))) + DB_EXTRA_PER_WORKER
        for host in workers
    )
    needed = DB_RESERVED + master_processes * DB_POOL_PER_PROCESS + worker_slots
    return math.ceil(needed / DB_CONNECTIONS_STEP) * DB_CONNECTIONS_STEP


# --- Addresses -------------------------------------------------------------------------


def ip_address(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`value` as an IP address, or None: a DNS name, an IPv6 address with a zone
    (fe80::1%eth0, which pg_hba.conf cannot take) or anything else."""
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return None
    return address


def airflow_address_problems(address: object) -> list[str]:
    """What is wrong with an Airflow host's cluster_address: PostgreSQL's pg_hba.conf admits
    the Airflow hosts by it, and takes IP addresses only."""
    if ip_address(address) is not None:
        return []
    return [
        f"cluster_address '{address}' is not an IPv4 or IPv6 address (pg_hba.conf and the "
        "allow-lists are built from it): set the host's ansible_host, or its cluster_address, "
        "to its IP address"
    ]


def airflow_pg_hba_address(address: object) -> str:
    """pg_hba.conf's ADDRESS admitting this one host: /32 for IPv4, /128 for IPv6.

    The address is kept as written, so an IPv4 line reads as it always did. Anything but an
    IP address is an error: a DNS name would make pg_hba.conf invalid and PostgreSQL would
    not start again (the preflight names the host before: airflow_address_problems).
    """
    found = ip_address(address)
    if found is None:
        raise ValueError(
            f"pg_hba.conf admits hosts by IP address, and '{address}' is not one: set that "
            "host's cluster_address (or ansible_host) to its IPv4 or IPv6 address"
        )
    return f"{address}/{found.max_prefixlen}"


# --- etcd ------------------------------------------------------------------------------

# Sizes of an etcd cluster that tolerate the loss of (size - 1) // 2 members; an even size
# tolerates no more losses than one member fewer, and two members tolerate none.
ETCD_MAX_MEMBERS = 7


def airflow_etcd_member_problems(members: object, address: object) -> list[str]:
    """What is wrong with an etcd cluster of these member addresses, seen from one member."""
    names = [str(member) for member in members] if isinstance(members, list | tuple) else []
    if not names:
        return [
            "the etcd group has no host: add one (e.g. etcd: {children: {postgres: {}}} in the "
            "inventory, which makes the postgres hosts the etcd members)"
        ]
    problems = []
    if len(names) % 2 == 0 or len(names) > ETCD_MAX_MEMBERS:
        problems.append(
            f"the etcd group has {len(names)} members: it needs an odd number from 1 to "
            f"{ETCD_MAX_MEMBERS} (3 survive the loss of one)"
        )
    if len(set(names)) != len(names):
        problems.append(f"etcd members share an address ({', '.join(names)})")
    if str(address) not in names:
        problems.append(f"this member's address {address} is not one of {', '.join(names)}")
    return problems


# A virtual IP moves between masters: it needs two at least.
VIP_MIN_MASTERS = 2


def airflow_vip_problems(
    vip: object, prefix: object, masters: object, address: object
) -> list[str]:
    """What is wrong with a virtual IP for masters at `masters`, seen from `address`."""
    try:
        virtual = ipaddress.IPv4Address(str(vip))
    except ValueError:
        return [f"airflow_vip '{vip}' is not an IPv4 address (keepalived needs one)"]
    try:
        network = ipaddress.IPv4Interface(f"{address}/{prefix}").network
    except ValueError:
        return [f"airflow_vip_prefix '{prefix}' is no prefix length for {address}"]
    names = [str(master) for master in masters] if isinstance(masters, list | tuple) else []
    problems = []
    if str(virtual) in names:
        problems.append(f"airflow_vip {virtual} is a master's own address")
    if virtual not in network:
        problems.append(
            f"airflow_vip {virtual} is outside this master's subnet {network}: every master "
            "must be able to hold it"
        )
    elif virtual in (network.network_address, network.broadcast_address):
        problems.append(f"airflow_vip {virtual} is the subnet's network or broadcast address")
    if len(names) < VIP_MIN_MASTERS:
        problems.append(
            f"a virtual IP needs at least {VIP_MIN_MASTERS} hosts in the airflow_master group "
            "to move between"
        )
    return problems


def airflow_backup_problems(
    repositories: object, members: object, cipher_pass: object
) -> list[str]:
    """What is wrong with the backups' hosts (groups pgbackrest_repo and postgres, by name)
    and the repository's passphrase; nothing while the repository group is empty."""
    repos = [str(host) for host in repositories] if isinstance(repositories, list | tuple) else []
    if not repos:
        return []
    problems = []
    if len(repos) != 1:
        problems.append(
            f"the pgbackrest_repo group has {len(repos)} hosts ({', '.join(repos)}): it takes "
            "exactly one, the backups' repository"
        )
    pg = {str(host) for host in members} if isinstance(members, list | tuple) else set()
    shared = [host for host in repos if host in pg]
    if shared:
        problems.append(
            f"{', '.join(shared)} is in both pgbackrest_repo and postgres: the backups must "
            "live on a host of their own, which survives the database's hosts"
        )
    secret = secret_problem("vault_pgbackrest_cipher_pass", cipher_pass)
    if secret:
        problems.append(secret)
    return problems


def _etcd_permissions(role_output: str) -> list[tuple[str, str]]:
    """(kind, text) of each permission line of `etcdctl role get` (kind: read or write)."""
    found = []
    kind = ""
    for line in role_output.splitlines():
        if line.startswith("KV Read:"):
            kind = "read"
        elif line.startswith("KV Write:"):
            kind = "write"
        elif kind and line.strip():
            found.append((kind, line.strip()))
    return found


def _etcd_revoke(role: str, entry: str) -> dict[str, str]:
    """The step that revokes one permission line of `etcdctl role get`."""
    if not entry.startswith("["):
        return {"kind": "revoke", "role": role, "key": entry, "range_end": ""}
    key, _, end = entry[1:].partition(", ")
    if end.startswith("<open ended>"):
        return {"kind": "revoke", "role": role, "key": key, "range_end": "", "from_key": "true"}
    return {"kind": "revoke", "role": role, "key": key, "range_end": end.split(")", 1)[0]}


def airflow_etcd_missing_grants(
    results: Iterable[Mapping[str, Any]], users: Iterable[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """The etcdctl steps that give root the root role and each user a role of its own name
    that may read and write its prefix and nothing else, given the results of
    `etcdctl user get NAME` and `etcdctl role get NAME` (each result's item: [kind, name]).
    In order: add role, revoke any other permission of the role, grant the prefix, grant
    the role. A revoke step names its key and range_end ("" for a single key) and, for an
    open-ended range, from_key."""
    found = {(str(r["item"][0]), str(r["item"][1])): r for r in results}

    def output(kind: str, name: str) -> str | None:
        result = found.get((kind, name))
        return str(result.get("stdout", "")) if result and result.get("rc") == 0 else None

    def has_role(user: str, role: str) -> bool:
        text = output("user", user) or ""
        lines = [line for line in text.splitlines() if line.startswith("Roles:")]
        return any(role in line.split(":", 1)[1].split() for line in lines)

    steps: list[dict[str, str]] = []
    if not has_role("root", "root"):
        steps.append({"kind": "grant", "user": "root", "role": "root"})
    for user in users:
        name, prefix = str(user["name"]), str(user["prefix"])
        role = output("role", name)
        if role is None:
            steps.append({"kind": "role", "role": name})
        permissions = _etcd_permissions(role or "")
        wanted = f"(prefix {prefix})"
        others = [text for _, text in permissions if not text.endswith(f") {wanted}")]
        steps.extend(_etcd_revoke(name, text) for text in dict.fromkeys(others))
        kinds = {kind for kind, text in permissions if text.endswith(f") {wanted}")}
        if kinds != {"read", "write"}:
            steps.append({"kind": "permission", "role": name, "prefix": prefix})
        if not has_role(name, name):
            steps.append({"kind": "grant", "user": name, "role": name})
    return steps


def airflow_role_defaults(role: str) -> dict[str, Any]:
    """roles/<role>/defaults/main.yml as written (Jinja left for the caller to render)."""
    path = ROLES_DIR / role / "defaults" / "main.yml"
    return dict(yaml.safe_load(path.read_text()) or {})


class FilterModule:
    """The filters above, for Ansible."""

    def filters(self) -> dict[str, Any]:
        return {
            "airflow_secret_problems": airflow_secret_problems,
            "airflow_vault_problems": airflow_vault_problems,
            "airflow_worker_problems": airflow_worker_problems,
            "airflow_dag_bundle_set_problems": airflow_dag_bundle_set_problems,
            "airflow_dag_bundle_problems": airflow_dag_bundle_problems,
            "airflow_dag_bundle_config": airflow_dag_bundle_config,
            "airflow_database_connections": airflow_database_connections,
            "airflow_etcd_member_problems": airflow_etcd_member_problems,
            "airflow_etcd_missing_grants": airflow_etcd_missing_grants,
            "airflow_vip_problems": airflow_vip_problems,
            "airflow_address_problems": airflow_address_problems,
            "airflow_pg_hba_address": airflow_pg_hba_address,
            "airflow_backup_problems": airflow_backup_problems,
            "airflow_role_defaults": airflow_role_defaults,
        }
