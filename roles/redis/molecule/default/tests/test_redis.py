"""A group of one: an authenticated broker on the cluster address that keeps queued
messages, and a Sentinel that watches it as the master."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from testinfra.host import Host

from clusterops.release import role_defaults

SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CLUSTER = role_defaults("cluster_defaults")
ROLE = role_defaults("redis")
PORT = int(CLUSTER["airflow_redis_port"])
SENTINEL_PORT = int(CLUSTER["airflow_redis_sentinel_port"])
MASTER_NAME = str(CLUSTER["airflow_redis_master_name"])
USER = str(CLUSTER["airflow_redis_user"])
ADMIN = str(ROLE["redis_admin_user"])


def secret(name: str) -> str:
    """A password random_vars.yml made for this run."""
    return (SECRETS / f"secret_{name}").read_text().strip()


def previous(name: str) -> str | None:
    """The password it replaced (side_effect.yml), if it has been replaced."""
    path = SECRETS / f"secret_{name}.previous"
    return path.read_text().strip() if path.exists() else None


PASSWORD = secret("redis")
ADMIN_PASSWORD = secret("redis_admin")
SENTINEL_PASSWORD = secret("redis_sentinel")
REPLICATION_PASSWORD = secret("redis_replication")


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def cli(
    host: Host, *args: str, user: str = ADMIN, password: str = ADMIN_PASSWORD,
    where: str = "127.0.0.1", port: int = PORT,
) -> str:  # fmt: skip
    """redis-cli with the password in REDISCLI_AUTH (never on the command line)."""
    auth = f"REDISCLI_AUTH={password} " if password else ""
    login = f"--user {user} " if user else ""
    command = f"{auth}redis-cli --no-auth-warning -h {where} -p {port} {login}" + " ".join(args)
    result = host.run(command)
    return str(result.stdout.strip() + result.stderr.strip())


def sentinel(host: Host, *args: str) -> str:
    """A Sentinel command, logged in as its default user."""
    return cli(host, *args, user="", password=SENTINEL_PASSWORD, port=SENTINEL_PORT)


def test_services_are_running_and_enabled(host: Host) -> None:
    for unit in ("redis-server", "redis-sentinel"):
        assert host.service(unit).is_running
        assert host.service(unit).is_enabled


def test_listens_on_localhost_and_the_cluster_address_only(host: Host) -> None:
    for port in (PORT, SENTINEL_PORT):
        sockets = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")}
        assert sockets == {f"tcp://127.0.0.1:{port}", f"tcp://{address(host)}:{port}"}


def test_no_password_no_access(host: Host) -> None:
    assert "NOAUTH" in cli(host, "ping", user="", password="", where=address(host))
    assert "NOAUTH" in cli(host, "ping", user="", password="", port=SENTINEL_PORT)


def test_airflow_user_is_served_on_the_cluster_address(host: Host) -> None:
    assert cli(host, "ping", user=USER, password=PASSWORD, where=address(host)) == "PONG"


def test_airflow_user_may_not_administer(host: Host) -> None:
    for command in ("flushall", "config get maxmemory", "info", "acl list", "keys *"):
        answer = cli(host, command, user=USER, password=PASSWORD)
        assert "NOPERM" in answer, command


def test_the_other_users_have_only_their_rights(host: Host) -> None:
    replica = str(ROLE["redis_replication_user"])
    watcher = str(ROLE["redis_sentinel_user"])
    assert "NOPERM" in cli(host, "get", "x", user=replica, password=REPLICATION_PASSWORD)
    assert "NOPERM" in cli(host, "get", "x", user=watcher, password=SENTINEL_PASSWORD)
    info = cli(host, "info", "replication", user=watcher, password=SENTINEL_PASSWORD)
    assert "role:master" in info


def test_broker_settings(host: Host) -> None:
    assert "noeviction" in cli(host, "config", "get", "maxmemory-policy")
    assert "yes" in cli(host, "config", "get", "appendonly")
    # A group of one has no replica to wait for.
    assert cli(host, "config", "get", "min-replicas-to-write").split()[-1] == "0"


def test_sentinel_watches_this_redis_as_the_master(host: Host) -> None:
    assert sentinel(host, "sentinel", "get-master-addr-by-name", MASTER_NAME).split() == [
        address(host), str(PORT),
    ]  # fmt: skip
    words = sentinel(host, "sentinel", "master", MASTER_NAME).split()
    master = dict(zip(words[::2], words[1::2], strict=True))
    assert master["flags"] == "master"
    assert master["quorum"] == "1"
    assert master["down-after-milliseconds"] == str(ROLE["redis_sentinel_down_after_milliseconds"])
    assert master["failover-timeout"] == str(ROLE["redis_sentinel_failover_timeout"])
    assert sentinel(host, "sentinel", "ckquorum", MASTER_NAME).startswith("OK")


def test_queued_messages_survive_a_restart(host: Host) -> None:
    cli(host, "del", "molecule-queue", "molecule-bindings")
    cli(host, "lpush", "molecule-queue", "task-1", "task-2")
    # kombu writes some keys in transactions, which Redis replays from its append-only file
    # as the default user (redis/redis#14541): one is kept only if that user has the rights.
    transaction = host.run(
        f"printf 'MULTI\\nSADD molecule-bindings queue\\nEXEC\\n' | REDISCLI_AUTH={ADMIN_PASSWORD} "
        f"redis-cli --no-auth-warning -p {PORT} --user {ADMIN}"
    )
    assert transaction.stdout.split()[-1] == "1", transaction.stdout
    with host.sudo():
        # Type=notify: restart returns once Redis has loaded its data and is ready.
        assert host.run("systemctl restart redis-server").rc == 0
    assert cli(host, "llen", "molecule-queue") == "2"
    assert cli(host, "smembers", "molecule-bindings") == "queue"


def test_config_files_are_private(host: Host) -> None:
    with host.sudo():
        for path, owner in (
            ("/etc/redis/redis.conf", "redis"),
            ("/etc/redis/sentinel.conf", "redis"),
            ("/etc/redis/users.acl", "root"),
        ):
            config = host.file(path)
            assert (config.user, config.group, config.mode) == (owner, "redis", 0o640), path
            # Airflow's password is only ever stored as a hash.
            assert PASSWORD not in config.content_string, path


def test_replaced_passwords_no_longer_work(host: Host) -> None:
    old, old_admin, old_replication, old_sentinel = (
        previous(n) for n in ("redis", "redis_admin", "redis_replication", "redis_sentinel")
    )
    if None in (old, old_admin, old_replication, old_sentinel):
        pytest.skip("before the passwords are replaced")
    assert old and old_admin and old_replication and old_sentinel
    replica = str(ROLE["redis_replication_user"])
    assert "WRONGPASS" in cli(host, "ping", user=USER, password=old)
    assert "WRONGPASS" in cli(host, "ping", password=old_admin)
    assert cli(host, "ping", user=USER, password=PASSWORD) == "PONG"
    assert "WRONGPASS" in cli(host, "ping", user=replica, password=old_replication)
    assert "WRONGPASS" in cli(host, "ping", user="", password=old_sentinel, port=SENTINEL_PORT)
    assert cli(host, "ping", user=replica, password=REPLICATION_PASSWORD) == "PONG"
    assert cli(host, "config", "get", "masterauth").split()[-1] == REPLICATION_PASSWORD
    with host.sudo():
        files = host.file("/etc/redis/redis.conf").content_string
        files += host.file("/etc/redis/sentinel.conf").content_string
    assert old_replication not in files
    assert old_sentinel not in files
