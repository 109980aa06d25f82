"""The lab's data tier as deployed (three hosts, each with an etcd member, a PostgreSQL
member under Patroni, Redis and its Sentinel): etcd healthy and closed to anonymous
clients; a write on the primary reaches every replica, which refuse writes; the sentinels
agree on the master with the role's settings; every Redis has the same users, each with
only its rights, and answers nothing without a password; the files with secrets are
private. The failovers are test_failover_data_tier.py's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from redis import Redis
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from testinfra.host import Host

from clusterops import datatier
from clusterops.cluster import wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT
from clusterops.release import role_defaults

from .conftest import lab_host

pytestmark = pytest.mark.lab

REDIS = role_defaults("redis")
TIMEOUT = 5.0


@dataclass(frozen=True)
class Login:
    user: str | None = None
    password: str = field(default="", repr=False)  # never in a failure's report


NOBODY = Login()


@contextmanager
def client(address: str, port: int = LAYOUT.redis_port, login: Login = NOBODY) -> Iterator[Redis]:
    connection = Redis(
        host=address, port=port, username=login.user, password=login.password or None,
        socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, decode_responses=True,
    )  # fmt: skip
    try:
        yield connection
    finally:
        connection.close()


def refusal(
    address: str, command: Callable[[Redis], object], login: Login = NOBODY,
    port: int = LAYOUT.redis_port,
) -> type[RedisError] | None:  # fmt: skip
    """The kind of error Redis answers `command` with, as `login`; None if it obeyed.
    (redis-py turns NOAUTH and WRONGPASS into AuthenticationError, NOPERM into
    NoPermissionError, READONLY into ReadOnlyError.)"""
    with client(address, port, login) as connection:
        try:
            command(connection)
        except (AuthenticationError, ResponseError) as error:
            return type(error)
    return None


def ping(connection: Redis) -> object:
    return connection.ping()


def psql(host: Host, sql: str) -> tuple[int, str]:
    result = host.run("sudo -u postgres psql -XAtq -d postgres -c %s", sql)
    return result.rc, (result.stdout.strip() or result.stderr.strip())


@pytest.fixture(scope="module")
def brokers(lab: LabSpec) -> list[str]:
    return [lab.host(name).address for name in lab.group("redis")]


def test_etcd_has_every_member_healthy_and_refuses_anonymous_clients(
    lab: LabSpec, vault: dict[str, str]
) -> None:
    names = lab.group("etcd")
    host = lab_host(lab, names[0])
    endpoint = f"--endpoints=http://127.0.0.1:{LAYOUT.etcd_port}"
    login = f"ETCDCTL_USER=root ETCDCTL_PASSWORD={vault['vault_etcd_root_password']}"
    status = host.run(f"{login} etcdctl {endpoint} endpoint status --cluster -w json")
    assert status.rc == 0, status.stderr.replace(vault["vault_etcd_root_password"], "***")
    statuses = json.loads(status.stdout)
    assert len(statuses) == len(names)
    assert len({s["Status"]["leader"] for s in statuses}) == 1, statuses
    anonymous = host.run(f"etcdctl {endpoint} get --prefix /service/")
    assert anonymous.rc != 0
    assert "user name is empty" in anonymous.stderr


def test_a_write_on_the_primary_reaches_every_replica_which_refuse_writes(lab: LabSpec) -> None:
    members = lab.group("postgres")
    primary = datatier.leader(lab.host(name).address for name in members)
    assert primary is not None
    token = uuid.uuid4().hex
    leader = lab_host(lab, primary.name)
    assert psql(leader, "CREATE TABLE IF NOT EXISTS replication_probe (v text)")[0] == 0
    assert psql(leader, f"INSERT INTO replication_probe VALUES ('{token}')")[0] == 0  # noqa: S608
    try:
        for name in members:
            if name == primary.name:
                continue
            replica = lab_host(lab, name)
            select = f"SELECT count(*) FROM replication_probe WHERE v = '{token}'"  # noqa: S608

            def replicated(host: Host = replica, query: str = select) -> bool | None:
                return True if psql(host, query) == (0, "1") else None

            wait_for(f"the row on {name}", replicated, timeout=30, interval=0.5)
            rc, out = psql(replica, "INSERT INTO replication_probe VALUES ('no')")
            assert rc != 0 and "read-only" in out, (name, out)
    finally:
        psql(leader, "DROP TABLE replication_probe")


def test_the_sentinels_agree_on_the_master_with_the_roles_settings(
    brokers: list[str], vault: dict[str, str]
) -> None:
    password = vault["vault_redis_sentinel_password"]
    master = datatier.sentinel_master(brokers, password)
    assert master in brokers
    quorum = len(brokers) // 2 + 1
    for address in brokers:
        with client(address, LAYOUT.sentinel_port, Login(password=password)) as sentinel:
            view = cast("dict[str, Any]", sentinel.sentinel_master(LAYOUT.redis_master_name))
            known = sentinel.sentinel_slaves(LAYOUT.redis_master_name)
            # An error (raised) unless enough sentinels are reachable to authorise a
            # failover. (redis-py reads the "OK 3 usable Sentinels..." reply as False.)
            sentinel.sentinel_ckquorum(LAYOUT.redis_master_name)
        assert view["ip"] == master, address
        assert view["quorum"] == quorum, address
        assert view["num-other-sentinels"] == len(brokers) - 1, address
        for setting in ("down-after-milliseconds", "failover-timeout", "parallel-syncs"):
            wanted = REDIS["redis_sentinel_" + setting.replace("-", "_")]
            assert view[setting] == int(wanted), (address, setting)
        assert {r["ip"] for r in known} == set(brokers) - {master}, address


def test_every_redis_has_the_same_users_each_with_only_its_rights(
    brokers: list[str], vault: dict[str, str]
) -> None:
    admin = Login(str(REDIS["redis_admin_user"]), vault["vault_redis_admin_password"])
    replica = Login(str(REDIS["redis_replication_user"]), vault["vault_redis_replication_password"])
    sentinel = Login(str(REDIS["redis_sentinel_user"]), vault["vault_redis_sentinel_password"])
    users = []
    for address in brokers:
        with client(address, login=admin) as connection:
            # ACL LIST: one line per user; Redis lists a user's commands in no fixed order.
            lines = [line.split() for line in cast("list[str]", connection.acl_list())]
            users.append({words[1]: frozenset(words[2:]) for words in lines})
            setting = connection.config_get("min-replicas-to-write")
            assert setting == {"min-replicas-to-write": "0"}, address
        assert refusal(address, lambda c: c.get("x"), replica) is NoPermissionError, address
        assert refusal(address, lambda c: c.get("x"), sentinel) is NoPermissionError, address
        with client(address, login=sentinel) as connection:
            assert "role" in connection.info("replication"), address
    assert all(u == users[0] for u in users), "the users or their rules differ between hosts"
    assert set(users[0]) == {
        "default", admin.user, *AIRFLOW_USERS, replica.user, sentinel.user,
    }  # fmt: skip
    assert "off" in users[0]["default"]
    assert users[0][str(replica.user)] >= {"+psync", "+replconf", "+ping", "-@all"}


# What Celery's transport sends, and what a task must not (@admin, @dangerous).
KOMBU_COMMANDS = [
    ["BRPOP", "q", "1"], ["LPUSH", "q", "m"], ["EVALSHA", "0" * 40, "0"], ["PUBLISH", "c", "m"],
    ["SADD", "s", "m"], ["ZADD", "z", "1", "m"], ["HSET", "h", "f", "v"], ["MULTI"],
]  # fmt: skip
FORBIDDEN = [
    ["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "SET", "maxmemory", "1"], ["REPLICAOF", "NO", "ONE"],
    ["SHUTDOWN"], ["KEYS", "*"], ["INFO"], ["CLIENT", "KILL", "ID", "1"], ["CLIENT", "LIST"],
    ["ACL", "SETUSER", "x"], ["DEBUG", "SLEEP", "0"], ["MONITOR"], ["SCRIPT", "FLUSH"],
]  # fmt: skip
WORKER_USER = str(role_defaults("cluster_defaults")["airflow_redis_worker_user"])
AIRFLOW_USERS = (LAYOUT.redis_user, WORKER_USER)


@pytest.mark.parametrize("user", AIRFLOW_USERS)
def test_airflow_users_may_use_the_broker_and_nothing_of_admin_or_dangerous(
    brokers: list[str], vault: dict[str, str], user: str
) -> None:
    admin = Login(str(REDIS["redis_admin_user"]), vault["vault_redis_admin_password"])
    with client(brokers[0], login=admin) as connection:
        # ACL DRYRUN: whether the user's rights allow the command, without running it.
        def allowed(command: list[str]) -> bool:
            answer = connection.execute_command("ACL", "DRYRUN", user, *command)  # type: ignore[no-untyped-call]
            return cast("str", answer) == "OK"

        assert [c for c in KOMBU_COMMANDS if not allowed(c)] == []
        assert [c for c in FORBIDDEN if allowed(c)] == []
    # And for real, with the workers' password: Redis refuses FLUSHALL.
    worker = Login(WORKER_USER, vault["vault_redis_airflow_worker_password"])
    master = datatier.sentinel_master(brokers, vault["vault_redis_sentinel_password"])
    assert master is not None
    assert refusal(master, lambda c: c.flushall(), worker) is NoPermissionError


def test_a_transaction_outlives_a_redis_restart(
    lab: LabSpec, brokers: list[str], vault: dict[str, str]
) -> None:
    """Redis replays its append-only file as the default user and checks MULTI/EXEC against
    that user's rights (redis/redis#14541): the default user is off but keeps them."""
    admin = Login(str(REDIS["redis_admin_user"]), vault["vault_redis_admin_password"])
    master = datatier.sentinel_master(brokers, vault["vault_redis_sentinel_password"])
    assert master is not None
    replica = next(address for address in brokers if address != master)
    key = f"probe:transaction:{uuid.uuid4()}"
    with client(master, login=admin) as connection:
        transaction = connection.pipeline(transaction=True)
        transaction.sadd(key, "m")
        transaction.expire(key, 600)
        transaction.execute()
    with client(replica, login=admin) as connection:
        wait_for(f"{key} on {replica}", lambda: connection.exists(key), timeout=30)
    name = next(host.name for host in lab.hosts if host.address == replica)
    lab_host(lab, name).run_expect([0], "sudo systemctl restart redis-server")
    with client(replica, login=admin) as connection:

        def loaded() -> bool:
            try:
                return bool(connection.info("persistence")["loading"] == 0)
            except RedisError:
                return False

        wait_for(f"Redis on {replica} to load its data", loaded, timeout=60)
        assert connection.exists(key) == 1


def test_replicas_refuse_writes(brokers: list[str], vault: dict[str, str]) -> None:
    master = datatier.sentinel_master(brokers, vault["vault_redis_sentinel_password"])
    airflow = Login(LAYOUT.redis_user, vault["vault_redis_airflow_password"])
    for address in brokers:
        if address != master:
            found = refusal(address, lambda c: c.lpush("probe", "x"), airflow)
            assert found is ReadOnlyError, address


def test_redis_and_sentinel_answer_nothing_without_a_password(
    brokers: list[str], vault: dict[str, str]
) -> None:
    for address in brokers:
        assert refusal(address, ping) is AuthenticationError, address
        assert refusal(address, ping, port=LAYOUT.sentinel_port) is AuthenticationError
        # The default user is off, whatever the password.
        off = Login("default", vault["vault_redis_sentinel_password"])
        assert refusal(address, ping, off) is AuthenticationError, address


def test_the_data_tiers_secret_files_are_private(lab: LabSpec) -> None:
    files = {
        "postgres": [("/etc/patroni/15-main.yml", "postgres", "postgres", 0o640)],
        "redis": [
            ("/etc/redis/redis.conf", "redis", "redis", 0o640),
            ("/etc/redis/sentinel.conf", "redis", "redis", 0o640),
            ("/etc/redis/users.acl", "root", "redis", 0o640),
        ],
    }
    for group, paths in files.items():
        for name in lab.group(group):
            host = lab_host(lab, name)
            with host.sudo():
                for path, user, owner_group, mode in paths:
                    found = host.file(path)
                    assert (found.user, found.group, found.mode) == (user, owner_group, mode), (
                        name,
                        path,
                    )
