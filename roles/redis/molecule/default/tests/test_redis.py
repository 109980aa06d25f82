"""Redis is an authenticated broker on the cluster address that keeps queued messages."""

from __future__ import annotations

import os
from pathlib import Path

from testinfra.host import Host

from clusterops.layout import LAYOUT

PASSWORD = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "redis_password").read_text().strip()


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def cli(host: Host, *args: str, user: str = "airflow", where: str = "127.0.0.1") -> str:
    """redis-cli with the password in REDISCLI_AUTH (never on the command line)."""
    auth = f"REDISCLI_AUTH={PASSWORD} " if user else ""
    login = f"--user {user} " if user else ""
    result = host.run(f"{auth}redis-cli -h {where} {login}" + " ".join(args))
    return str(result.stdout.strip() + result.stderr.strip())


def test_service_is_running_and_enabled(host: Host) -> None:
    assert host.service("redis-server").is_running
    assert host.service("redis-server").is_enabled


def test_listens_on_localhost_and_the_cluster_address_only(host: Host) -> None:
    port = LAYOUT.redis_port
    sockets = {s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")}
    assert sockets == {f"tcp://127.0.0.1:{port}", f"tcp://{address(host)}:{port}"}


def test_no_password_no_access(host: Host) -> None:
    assert "NOAUTH" in cli(host, "ping", user="", where=address(host))


def test_airflow_user_is_served_on_the_cluster_address(host: Host) -> None:
    assert cli(host, "ping", where=address(host)) == "PONG"


def test_broker_settings(host: Host) -> None:
    assert "noeviction" in cli(host, "config", "get", "maxmemory-policy")
    assert "yes" in cli(host, "config", "get", "appendonly")


def test_queued_messages_survive_a_restart(host: Host) -> None:
    cli(host, "del", "molecule-queue")
    cli(host, "lpush", "molecule-queue", "task-1", "task-2")
    with host.sudo():
        # Type=notify: restart returns once Redis has loaded its data and is ready.
        assert host.run("systemctl restart redis-server").rc == 0
    assert cli(host, "llen", "molecule-queue") == "2"


def test_config_is_private_and_holds_no_plain_password(host: Host) -> None:
    with host.sudo():
        config = host.file("/etc/redis/redis.conf")
        assert (config.user, config.group, config.mode) == ("root", "redis", 0o640)
        assert PASSWORD not in config.content_string
