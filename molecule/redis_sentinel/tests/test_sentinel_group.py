"""A group of three: one master, two replicas, three Sentinels that agree, one set of
users on every host, and nothing without a password."""

from __future__ import annotations

import pytest
from sentinel_group import (
    AIRFLOW_USER,
    MASTER_AFTER_SIDE_EFFECT,
    MASTER_NAME,
    PORT,
    REPLICATION_PASSWORD,
    REPLICATION_USER,
    ROLE,
    SENTINEL_PASSWORD,
    SENTINEL_PORT,
    SENTINEL_USER,
    Node,
    agreed_master,
    node_at,
    nodes,
    settled_master,
    wait_for,
)
from testinfra.host import Host

SETTLE = 60  # seconds: replicas that were just started or reconfigured


def test_the_group_has_three_hosts() -> None:
    assert len(nodes()) == 3


def test_one_master_and_every_other_host_replicating_it() -> None:
    wait_for("one master, every other host replicating it", settled_master, SETTLE)


def test_the_sentinels_agree_on_the_master() -> None:
    address, _ = wait_for("every Sentinel naming the same master", agreed_master, SETTLE)
    master, _ = wait_for("a settled master", settled_master, SETTLE)
    assert address == master.address
    quorum = len(nodes()) // 2 + 1
    for node in nodes():
        view = node.sentinel_view()
        settings = ("down-after-milliseconds", "failover-timeout", "parallel-syncs")
        assert view["port"] == str(PORT)
        assert view["quorum"] == str(quorum) == "2"
        for setting in settings:
            assert view[setting] == str(ROLE["redis_sentinel_" + setting.replace("-", "_")])
        assert node.sentinel("sentinel", "ckquorum", MASTER_NAME).startswith("OK 3 usable")


def test_the_master_stayed_through_the_second_converge() -> None:
    if not MASTER_AFTER_SIDE_EFFECT.exists():
        pytest.skip("before the side effect's switchover")
    expected = MASTER_AFTER_SIDE_EFFECT.read_text().strip()
    master, _ = wait_for("a settled master", settled_master, SETTLE)
    assert master.address == expected
    assert {n.master_named() for n in nodes()} == {expected}


def _users(node: Node) -> dict[str, frozenset[str]]:
    """ACL LIST: each user's rules (Redis lists a user's commands in no fixed order)."""
    lines = [line.split() for line in node.redis("acl", "list").splitlines()]
    return {words[1]: frozenset(words[2:]) for words in lines if words[:1] == ["user"]}


def test_the_users_are_the_same_on_every_host() -> None:
    users = [_users(n) for n in nodes()]
    same = all(u == users[0] for u in users)
    assert same, "the users or their rules (or passwords) differ between the hosts"
    assert set(users[0]) == {"default", AIRFLOW_USER, REPLICATION_USER, SENTINEL_USER}
    assert "off" in users[0]["default"]
    assert users[0][REPLICATION_USER] >= {"+psync", "+replconf", "+ping", "-@all"}


def test_airflow_queues_and_publishes_on_the_master() -> None:
    master, _ = wait_for("a settled master", settled_master, SETTLE)
    client = next(n for n in nodes() if n is not master)  # over the network
    where = master.address
    client.redis("del", "molecule-queue", where=where)
    assert client.redis("lpush", "molecule-queue", "task-1", where=where) == "1"
    assert client.redis("brpop", "molecule-queue", "5", where=where).split() == [
        "molecule-queue", "task-1",
    ]  # fmt: skip
    assert client.redis("publish", "molecule-channel", "hello", where=where).isdigit()


def test_replicas_refuse_writes() -> None:
    master, _ = wait_for("a settled master", settled_master, SETTLE)
    for node in nodes():
        if node is not master:
            assert "READONLY" in node.redis("lpush", "molecule-queue", "task-x")


def test_the_master_takes_writes_whatever_its_replicas_do() -> None:
    """redis_min_replicas_to_write is 0 by default: during a failover the new master must
    not refuse publishes (NOREPLICAS) while its only replica resynchronises."""
    for node in nodes():
        assert node.redis("config", "get", "min-replicas-to-write").split()[-1] == "0"


def test_nothing_without_a_password() -> None:
    for node in nodes():
        assert "NOAUTH" in node.redis("ping", user="", password="", where=node.address)
        assert "NOAUTH" in node.sentinel("ping", password="")
        assert "WRONGPASS" in node.redis("ping", user="default", password=SENTINEL_PASSWORD)


def test_each_user_has_only_its_rights() -> None:
    for node in nodes():
        for user, password in (
            (REPLICATION_USER, REPLICATION_PASSWORD),
            (SENTINEL_USER, SENTINEL_PASSWORD),
        ):
            assert "NOPERM" in node.redis("get", "x", user=user, password=password)
        info = node.redis("info", "replication", user=SENTINEL_USER, password=SENTINEL_PASSWORD)
        assert "role:" in info


def test_listens_on_localhost_and_the_cluster_address_only(host: Host) -> None:
    address = str(host.ansible.get_variables()["ansible_host"])
    for port in (PORT, SENTINEL_PORT):
        sockets = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")}
        assert sockets == {f"tcp://127.0.0.1:{port}", f"tcp://{address}:{port}"}


def test_config_files_are_private(host: Host) -> None:
    with host.sudo():
        for path, owner in (
            ("/etc/redis/redis.conf", "redis"),
            ("/etc/redis/sentinel.conf", "redis"),
            ("/etc/redis/users.acl", "root"),
        ):
            config = host.file(path)
            assert (config.user, config.group, config.mode) == (owner, "redis", 0o640), path


def test_sentinels_know_every_host() -> None:
    for node in nodes():
        replicas = node.sentinel("sentinel", "replicas", MASTER_NAME)
        master = node_at(node.sentinel_view()["ip"])
        for other in nodes():
            if other is not master:
                assert other.address in replicas
