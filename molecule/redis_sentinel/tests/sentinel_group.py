"""The scenario's Redis hosts and what the tests ask them, with redis-cli on the hosts.

Ports, names and users come from the roles' defaults; passwords from the files that
molecule/resources/random_vars.yml made for this run. A password goes to redis-cli in
REDISCLI_AUTH, never as an argument.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import testinfra
from testinfra.host import Host
from testinfra.utils.ansible_runner import AnsibleRunner

from clusterops.release import role_defaults

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
# Where side_effect.yml writes down the master after its switchover.
MASTER_AFTER_SIDE_EFFECT = EPHEMERAL / "master_after_side_effect"

CLUSTER = role_defaults("cluster_defaults")
ROLE = role_defaults("redis")
PORT = int(CLUSTER["airflow_redis_port"])
SENTINEL_PORT = int(CLUSTER["airflow_redis_sentinel_port"])
MASTER_NAME = str(CLUSTER["airflow_redis_master_name"])
AIRFLOW_USER = str(CLUSTER["airflow_redis_user"])
REPLICATION_USER = str(ROLE["redis_replication_user"])
SENTINEL_USER = str(ROLE["redis_sentinel_user"])

T = TypeVar("T")


def secret(name: str) -> str:
    """A password random_vars.yml made for this run."""
    return (EPHEMERAL / f"secret_{name}").read_text().strip()


AIRFLOW_PASSWORD = secret("redis")
REPLICATION_PASSWORD = secret("redis_replication")
SENTINEL_PASSWORD = secret("redis_sentinel")


def cli_command(*args: str, password: str, user: str = "", where: str, port: int) -> str:
    auth = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    login = f"--user {shlex.quote(user)} " if user else ""
    words = " ".join(shlex.quote(a) for a in args)
    return f"{auth}redis-cli --no-auth-warning -h {where} -p {port} {login}{words}"


def fields(text: str) -> dict[str, str]:
    """`key:value` lines (INFO) as a dict."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def pairs(text: str) -> dict[str, str]:
    """A flat key/value reply, one word a line (SENTINEL MASTER), as a dict."""
    words = text.split()
    return dict(zip(words[::2], words[1::2], strict=True))


@dataclass(frozen=True)
class Node:
    name: str
    host: Host
    address: str

    def redis(
        self, *args: str, user: str = AIRFLOW_USER, password: str = AIRFLOW_PASSWORD,
        where: str = "127.0.0.1",
    ) -> str:  # fmt: skip
        """A Redis command (on this host's Redis, unless `where` names another)."""
        command = cli_command(*args, password=password, user=user, where=where, port=PORT)
        result = self.host.run(command)
        return str(result.stdout.strip() + result.stderr.strip())

    def sentinel(self, *args: str, password: str = SENTINEL_PASSWORD) -> str:
        """A command to this host's Sentinel, as its default user."""
        command = cli_command(*args, password=password, where="127.0.0.1", port=SENTINEL_PORT)
        result = self.host.run(command)
        return str(result.stdout.strip() + result.stderr.strip())

    def replication(self) -> dict[str, str]:
        return fields(self.redis("info", "replication"))

    def master_named(self) -> str | None:
        """The master's address this host's Sentinel gives, if any."""
        words = self.sentinel("sentinel", "get-master-addr-by-name", MASTER_NAME).split()
        return words[0] if len(words) == 2 else None

    def sentinel_view(self) -> dict[str, str]:
        return pairs(self.sentinel("sentinel", "master", MASTER_NAME))


@cache
def nodes() -> tuple[Node, ...]:
    """The hosts of the redis group, in inventory order."""
    found = []
    for name in AnsibleRunner(INVENTORY).get_hosts("redis"):
        host = testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
        found.append(Node(name, host, str(host.ansible.get_variables()["ansible_host"])))
    return tuple(found)


def node_at(address: str) -> Node:
    return next(n for n in nodes() if n.address == address)


def wait_for(what: str, check: Callable[[], T | None], timeout: float) -> tuple[T, float]:
    """Poll `check` until it returns a value; that value and the seconds it took."""
    started = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - started
        if value is not None:
            return value, elapsed
        assert elapsed < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.5)


def settled_master() -> Node | None:
    """The master, when every other host replicates it with its link up, else None."""
    group = nodes()
    roles = {n.name: n.replication() for n in group}
    masters = [n for n in group if roles[n.name].get("role") == "master"]
    if len(masters) != 1:
        return None
    master = masters[0]
    if roles[master.name].get("connected_slaves") != str(len(group) - 1):
        return None
    for node in group:
        if node is not master and (
            roles[node.name].get("role") != "slave"
            or roles[node.name].get("master_host") != master.address
            or roles[node.name].get("master_link_status") != "up"
        ):
            return None
    return master


def agreed_master() -> str | None:
    """The master's address when every Sentinel names the same one, knowing all replicas
    and the other Sentinels, else None."""
    group = nodes()
    views = [n.sentinel_view() for n in group]
    addresses = {v.get("ip") for v in views}
    if len(addresses) != 1 or None in addresses:
        return None
    for view in views:
        if (
            view.get("flags") != "master"
            or view.get("num-slaves") != str(len(group) - 1)
            or view.get("num-other-sentinels") != str(len(group) - 1)
        ):
            return None
    return addresses.pop()
